//! `hequant`: the command-line front end. `main` is the only exit point.

fn main() {
    // Rust ignores SIGPIPE, which turns a closed pipe (`hequant estimate | head`) into a
    // panic on the next print; the default action ends the program quietly, as other
    // command-line tools do.
    #[cfg(unix)]
    // SAFETY: called once at start, before any thread exists; SIG_DFL is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let code = match hequant::cli::run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    };
    std::process::exit(code);
}
