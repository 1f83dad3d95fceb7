//! Signals that end the process leave every destination with its complete old content or its
//! complete new one, and no temporary or lock file.
//!
//! SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGALRM are blocked in every thread (the
//! mask is set before any thread exists, and threads inherit it) and received by one thread that
//! waits for them with `sigwait`: it runs ordinary code, not an async-signal handler, so it may take
//! locks and delete folders (`destination::abandon_all`). SIGPIPE (a closed stdout, met after the
//! outputs are committed) and SIGABRT (a failed allocation) arrive in the thread that caused them;
//! their handler unlinks the lock files and lets the signal end the process.

/// The signals received; each ends the process cleanly.
const SIGNALS: [i32; 7] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGALRM];

/// Exit status of a process stopped by signal `sig`: 128 + sig, as a shell reports it.
fn exit_code(sig: i32) -> i32 {
    128 + sig
}

/// SIGPIPE (a closed stdout or stderr) and SIGABRT (a failed allocation) arrive in the thread that
/// caused them, so they cannot wait for the signal thread: their handler unlinks the lock files
/// (`destination::lock_cleanup`, async-signal-safe) and lets the signal end the process as before.
extern "C" fn on_fatal(sig: libc::c_int) {
    crate::destination::lock_cleanup::unlink_all();
    // SAFETY: signal and raise are async-signal-safe.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Blocks the signals and starts the thread that receives them. Call first in `main`, before any
/// other thread is started.
pub fn install() {
    // SAFETY: plain libc calls on a local, initialised signal set.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    // SAFETY: installing a handler that only calls async-signal-safe functions.
    unsafe {
        for sig in [libc::SIGPIPE, libc::SIGABRT] {
            libc::signal(sig, on_fatal as *const () as libc::sighandler_t);
        }
    }
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: `set` is initialised and its signals are blocked in this thread.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            return;
        }
        // A second signal ends the process at once, should the clean-up below get stuck.
        std::thread::spawn(move || {
            let mut again = 0;
            // SAFETY: as above.
            if unsafe { libc::sigwait(&set, &mut again) } == 0 {
                // SAFETY: _exit is always safe to call.
                unsafe { libc::_exit(exit_code(again)) };
            }
        });
        let written = crate::destination::abandon_all();
        let name = match sig {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            libc::SIGHUP => "SIGHUP",
            libc::SIGQUIT => "SIGQUIT",
            libc::SIGUSR1 => "SIGUSR1",
            libc::SIGUSR2 => "SIGUSR2",
            _ => "SIGALRM",
        };
        let outcome = match written.is_empty() {
            true => "nothing written".to_string(),
            false => {
                let paths: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
                format!("complete before the signal: {}; nothing else was written or changed", paths.join(", "))
            }
        };
        // One line: the progress bars are erased, and on a terminal the line the shell echoed `^C`
        // on is overwritten.
        crate::cli::progress::clear_bars();
        let erase = if std::io::IsTerminal::is_terminal(&std::io::stderr()) { "\r\x1b[2K" } else { "" };
        tell!("{erase}interrupted by {name}: {outcome}");
        std::process::exit(exit_code(sig));
    });
}
