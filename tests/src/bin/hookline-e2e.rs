//! The `hookline` CLI under another name, so the end-to-end tests can run it
//! as a separate process.

fn main() -> std::process::ExitCode {
    hookline_api::cli::main()
}
