use std::process::ExitCode;

fn main() -> ExitCode {
    install_hooks();
    // A file-size limit (or a full disk on some systems) raises SIGXFSZ, whose default is to
    // kill: here it is only an error from the write, reported, with the data kept in memory.
    let _ = signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    tune_malloc();
    let cli = campaign_cockpit::cli::Cli::from_env();
    match campaign_cockpit::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<campaign_cockpit::cli::Exit>() {
                say(&format!("error: {}\n", exit.message));
                return ExitCode::from(exit.code);
            }
            let bad_input = e.chain().any(|c| c.is::<campaign_cockpit::cli::BadInput>());
            // Each cause once: an error that prints its source already is not followed by it.
            let mut msg: Vec<String> = Vec::new();
            for c in e.chain().map(|c| c.to_string()) {
                if !msg.last().is_some_and(|last| last.ends_with(&c)) {
                    msg.push(c);
                }
            }
            say(&format!("error: {}\n", msg.join(": ")));
            ExitCode::from(if bad_input { 2 } else { 1 })
        }
    }
}

/// Writes to stderr as far as it is there: after a dropped SSH link it is a terminal that has
/// gone, and `eprintln!` would panic on it.
fn say(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// color-eyre's reports, with a panic hook that gives the terminal back first and never
/// panics itself (a panic in a panic hook aborts the process).
fn install_hooks() {
    let (panic_hook, eyre_hook) = color_eyre::config::HookBuilder::default().into_hooks();
    if let Err(e) = eyre_hook.install() {
        say(&format!("error: {e}\n"));
    }
    std::panic::set_hook(Box::new(move |info| {
        campaign_cockpit::ui::terminal::restore();
        say(&format!("{}\n", panic_hook.panic_report(info)));
    }));
}

/// glibc gives each thread that allocates its own heap arena, up to eight per core, and keeps
/// what each has freed: with the runtime's workers and the database's I/O threads that was a
/// third of the resident memory. Two arenas serve a cockpit whose work is mostly one thread,
/// and fixed thresholds keep freed memory from piling up (below).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    // SAFETY: mallopt only sets an allocator parameter; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        // Fixed thresholds (glibc raises them as large blocks are freed, after which sled's
        // megabyte-sized buffers come from the heap and leave it fragmented): large blocks
        // are mapped and unmapped, and free memory at the top of the heap goes back.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}
