//! The `hookline` binary: see `hookline --help`.

fn main() -> std::process::ExitCode {
    hookline_api::cli::main()
}
