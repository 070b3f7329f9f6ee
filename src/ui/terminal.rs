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

/// What the terminal says: a key, a resize, or that it went away.
pub type Input = std::io::Result<crossterm::event::Event>;

/// Reads the terminal on a thread of its own and hands what it reads to the UI's loop.
///
/// crossterm (0.29) reads a terminal that has hung up again and again without end (a dropped
/// SSH link leaves it readable with nothing to read: crossterm-rs/crossterm#793), inside the
/// call that waits for input. On the UI's loop that call would keep the loop from ever seeing
/// the SIGHUP the hang-up sends; here it can only hold this thread. Before each wait the
/// terminal is checked for a hang-up, which ends the reading with an error the UI takes as
/// "gone"; a hang-up during a wait ends the UI on its SIGHUP.
pub fn spawn_input() -> InputReader {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let gate = std::sync::Arc::new(Gate::default());
    let thread_gate = gate.clone();
    let spawned = std::thread::Builder::new().name("terminal input".into()).spawn(move || {
        let gate = thread_gate;
        let fd = input_fd();
        loop {
            // Stopped for good (`InputReader` dropped): never read another key, which is the
            // next reader's or another program's.
            if tx.is_closed() || !gate.park_if_asked() {
                break;
            }
            let event = match hung_up(fd.as_ref()) {
                Err(e) => Err(e),
                // A short wait, so that a pause is answered quickly (see `InputReader::pause`).
                Ok(()) => match crossterm::event::poll(std::time::Duration::from_millis(250)) {
                    Ok(false) => continue,
                    // A key that came as a pause was asked for is left where it is.
                    Ok(true) if gate.asked() => continue,
                    Ok(true) => crossterm::event::read(),
                    Err(e) => Err(e),
                },
            };
            let failed = event.is_err();
            if tx.blocking_send(event).is_err() || failed {
                break;
            }
        }
        gate.exited();
    });
    if let Err(e) = spawned {
        let (tx, failed) = tokio::sync::mpsc::channel(1);
        let _ = tx.try_send(Err(e));
        gate.exited();
        return InputReader { events: failed, gate };
    }
    InputReader { events: rx, gate }
}

/// The terminal's input as read on its own thread, which can be paused while another program
/// (an editor) has the terminal.
pub struct InputReader {
    pub events: tokio::sync::mpsc::Receiver<Input>,
    gate: std::sync::Arc<Gate>,
}

impl Drop for InputReader {
    /// The reader stops before this returns, so that no key typed next is read (and lost)
    /// by it: a new reader, or another program, has the terminal.
    fn drop(&mut self) {
        self.events.close();
        self.gate.state.lock().unwrap_or_else(|e| e.into_inner()).stopped = true;
        self.pause();
    }
}

impl InputReader {
    /// Stops reading the terminal, and returns once the reader has stopped (within a quarter
    /// of a second): from then on every key is the other program's. A reader held by a
    /// terminal that has hung up (see `spawn_input`) is not waited for past a second.
    pub fn pause(&self) {
        let mut st = self.gate.state.lock().unwrap_or_else(|e| e.into_inner());
        st.asked = true;
        self.gate.cv.notify_all();
        let _ = self
            .gate
            .cv
            .wait_timeout_while(st, std::time::Duration::from_secs(1), |st| !st.parked && !st.exited)
            .unwrap_or_else(|e| e.into_inner());
    }

    /// Reads the terminal again.
    pub fn resume(&self) {
        let mut st = self.gate.state.lock().unwrap_or_else(|e| e.into_inner());
        st.asked = false;
        self.gate.cv.notify_all();
    }
}

#[derive(Default)]
struct Gate {
    state: std::sync::Mutex<GateState>,
    cv: std::sync::Condvar,
}

#[derive(Default)]
struct GateState {
    asked: bool,
    parked: bool,
    exited: bool,
    /// The reader is to end, not wait.
    stopped: bool,
}

impl Gate {
    /// Waits here while a pause is asked for; `false` when the reader is to end instead.
    fn park_if_asked(&self) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.stopped {
            return false;
        }
        if !st.asked {
            return true;
        }
        st.parked = true;
        self.cv.notify_all();
        while st.asked && !st.stopped {
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.parked = false;
        !st.stopped
    }

    fn asked(&self) -> bool {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.asked || st.stopped
    }

    fn exited(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.exited = true;
        self.cv.notify_all();
    }
}

/// Gives the terminal to another program (an editor) while `run` runs, and takes it back:
/// input is not read meanwhile, and the screen is drawn whole after.
pub async fn hand_over<T: Send + 'static>(
    terminal: &mut ratatui::DefaultTerminal,
    input: &InputReader,
    run: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    input.pause();
    restore();
    let out = tokio::task::spawn_blocking(run).await;
    let back = take_back(terminal);
    input.resume();
    back?;
    out.map_err(std::io::Error::other)
}

/// The terminal taken again after another program had it (an editor, a shell after Ctrl-Z):
/// raw mode, the alternate screen, and a blank frame, so that the next frame is drawn whole
/// (`Terminal::clear` would ask the terminal where its cursor is, and wait).
pub fn take_back(terminal: &mut ratatui::DefaultTerminal) -> std::io::Result<()> {
    terminal::enable_raw_mode()?;
    execute!(
        std::io::stdout(),
        terminal::EnterAlternateScreen,
        terminal::Clear(terminal::ClearType::All),
        cursor::Hide
    )?;
    terminal.draw(|f| f.render_widget(ratatui::widgets::Clear, f.area()))?;
    Ok(())
}

/// The descriptor crossterm reads: standard input when it is a terminal, else `/dev/tty`.
fn input_fd() -> Option<std::os::fd::OwnedFd> {
    use std::io::IsTerminal;
    use std::os::fd::AsFd;
    if std::io::stdin().is_terminal() {
        return std::io::stdin().as_fd().try_clone_to_owned().ok();
    }
    std::fs::File::open("/dev/tty").ok().map(std::os::fd::OwnedFd::from)
}

/// Standard input, output and error as far as they are terminals (asked at start: a
/// terminal that has hung up no longer says it is one).
pub fn terminals() -> Vec<std::os::fd::OwnedFd> {
    use std::io::IsTerminal;
    use std::os::fd::AsFd;
    let fds = [
        std::io::stdin().is_terminal().then(|| std::io::stdin().as_fd().try_clone_to_owned()),
        std::io::stdout().is_terminal().then(|| std::io::stdout().as_fd().try_clone_to_owned()),
        std::io::stderr().is_terminal().then(|| std::io::stderr().as_fd().try_clone_to_owned()),
    ];
    fds.into_iter().flatten().flatten().collect()
}

/// Whether one of `terminals` has hung up.
pub fn any_hung_up(terminals: &[std::os::fd::OwnedFd]) -> bool {
    terminals.iter().any(|fd| hung_up(Some(fd)).is_err())
}

/// An error when the terminal has hung up or closed (asked without waiting).
fn hung_up(fd: Option<&std::os::fd::OwnedFd>) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let Some(fd) = fd else { return Err(std::io::Error::from_raw_os_error(libc::ENXIO)) };
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: 0, revents: 0 };
    // SAFETY: one valid pollfd, for the length given; a zero timeout never waits.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    if n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        return Err(std::io::Error::from_raw_os_error(libc::EIO));
    }
    Ok(())
}
