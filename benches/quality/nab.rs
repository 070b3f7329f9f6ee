//! The detector on real series with labelled incidents: the NAB corpus (its `data/` and
//! `score.py`, in `$NAB_DIR` or the `nab` folder beside the project's), each file replayed
//! exactly as `cockpit replay --csv` replays it (the live rules' detector at its defaults), scored by NAB's own rules
//! (its `score.py`: windows, probation, early-detection reward, three cost profiles, one
//! threshold over all files) at the optimised threshold and at the default, beside what NAB's
//! published detectors score on the same files.

use campaign_cockpit::alert::replay::{ReplaySettings, read_csv, run};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn corpus() -> Result<PathBuf, String> {
    let dir = std::env::var_os("NAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("shared").join("nab"));
    if dir.join("score.py").is_file() && dir.join("data").is_dir() {
        Ok(dir)
    } else {
        Err(format!("no NAB corpus at {} (set NAB_DIR to one with data/ and score.py)", dir.display()))
    }
}

pub fn bench_nab() {
    let dir = match corpus() {
        Ok(d) => d,
        Err(why) => {
            println!("nab: skipped: {why}");
            return;
        }
    };
    let out = tempfile::tempdir().expect("temp dir");
    let settings = ReplaySettings::default();
    let (mut files, mut rows_in, t0) = (0, 0, Instant::now());
    let mut categories: Vec<PathBuf> =
        std::fs::read_dir(dir.join("data")).expect("data dir").flatten().map(|e| e.path()).collect();
    categories.sort();
    for cat in categories.iter().filter(|p| p.is_dir()) {
        let name = cat.file_name().expect("category").to_owned();
        std::fs::create_dir_all(out.path().join(&name)).expect("category dir");
        for file in std::fs::read_dir(cat).expect("category").flatten().map(|e| e.path()) {
            let text = std::fs::read_to_string(&file).expect("series");
            let rows = read_csv(&text, &file.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
            let replayed = run(&rows, settings);
            rows_in += rows.len();
            files += 1;
            std::fs::write(out.path().join(&name).join(file.file_name().expect("file")), replayed.csv(&rows))
                .expect("scores");
        }
    }
    let took = t0.elapsed();
    println!(
        "nab: {files} files, {rows_in} rows replayed in {:.2} s ({:.2} µs a row); scored by NAB's rules at the best threshold and at the default ({})",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / rows_in.max(1) as f64,
        settings.threshold
    );
    let scored = Command::new("python3")
        .arg(dir.join("score.py"))
        .arg("--scores")
        .arg(out.path())
        .args(["--threshold", &settings.threshold.to_string(), "--json"])
        .output();
    let json = match scored {
        Ok(o) if o.status.success() => o.stdout,
        Ok(o) => {
            println!("nab: skipped: score.py failed: {}", String::from_utf8_lossy(&o.stderr).trim());
            return;
        }
        Err(e) => {
            println!("nab: skipped: python3 is needed to run NAB's score.py: {e}");
            return;
        }
    };
    let table: serde_json::Value = serde_json::from_slice(&json).expect("score.py JSON");
    println!(
        "  {:24} {:>8} {:>8} {:>8} {:>10} | {:>8} {:>8} {:>8} {:>8}",
        "category", "standard", "low-FP", "low-FN", "at default", "wGauss", "HTM", "ARTime", "best"
    );
    let Some(table) = table.as_object() else { return };
    for (cat, v) in table {
        let y = &v["yours"];
        let p = &v["published"];
        let best = p
            .as_object()
            .and_then(|m| m.values().filter_map(|d| d["standard"].as_f64()).max_by(f64::total_cmp))
            .unwrap_or(f64::NAN);
        let f = |x: &serde_json::Value| x.as_f64().map_or("–".to_string(), |x| format!("{x:.1}"));
        println!(
            "  {:24} {:>8} {:>8} {:>8} {:>10} | {:>8} {:>8} {:>8} {:>8.1}",
            cat,
            f(&y["standard"]),
            f(&y["reward_low_FP_rate"]),
            f(&y["reward_low_FN_rate"]),
            f(&y["at_threshold"]),
            f(&p["windowedGaussian"]["standard"]),
            f(&p["numenta"]["standard"]),
            f(&p["ARTime"]["standard"]),
            best
        );
    }
}
