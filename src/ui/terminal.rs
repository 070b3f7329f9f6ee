//! Taking the terminal and giving it back. Unlike `ratatui::init`, no panic hook is installed
//! here (the binary's restores the terminal), and giving it back never prints: when the
//! terminal has gone away (a dropped SSH link closes it under us), a message about failing to
//! restore it would go to that same terminal, fail, and turn a clean exit into a crash.

use crossterm::{cursor, execute, terminal};

/// Raw mode and the alternate screen; the terminal as ratatui draws on it.
pub fn init() -> std::io::Result<ratatui::DefaultTerminal> {
    terminal::enable_raw_mode()?;
    if let Err(e) = execute!(std::io::stdout(), terminal::EnterAlternateScreen) {
        restore();
        return Err(e);
    }
    ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))
}

/// Leaves the alternate screen and raw mode and shows the cursor, as far as the terminal is
/// still there.
pub fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(std::io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
}

/// Whether an I/O error says the terminal is gone (hung up, closed).
pub fn gone(e: &std::io::Error) -> bool {
    // EIO and ENXIO on Linux: a read or write on a terminal whose other end has closed.
    e.kind() == std::io::ErrorKind::BrokenPipe || matches!(e.raw_os_error(), Some(5 | 6))
}
