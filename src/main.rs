//! The `dmoe` binary: all the work is in the library's `cli` module.

fn main() -> std::process::ExitCode {
    // Die quietly on a closed pipe (`dmoe ... | head`), as Unix tools do, instead of panicking on
    // the next write.
    // SAFETY: setting a signal's disposition to the default is async-signal-safe and done before
    // any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    dmoe::cli::main()
}
