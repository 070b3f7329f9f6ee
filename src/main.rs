use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    if let Err(e) = color_eyre::install() {
        eprintln!("error: {e}");
    }
    // A file-size limit (or a full disk on some systems) raises SIGXFSZ, whose default is to
    // kill: here it is only an error from the write, reported, with the data kept in memory.
    let _ = signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let cli = campaign_cockpit::cli::Cli::parse();
    match campaign_cockpit::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let bad_input = e.chain().any(|c| c.is::<campaign_cockpit::cli::BadInput>());
            let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", msg.join(": "));
            ExitCode::from(if bad_input { 2 } else { 1 })
        }
    }
}
