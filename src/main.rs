//! `hequant`: the command-line front end. `main` is the only exit point.

fn main() {
    let code = match hequant::cli::run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    };
    std::process::exit(code);
}
