//! The `hookline` CLI under another name, so the end-to-end tests can run it
//! as a separate process, with the allocator the `hookline` binary uses.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    hookline_api::cli::main()
}
