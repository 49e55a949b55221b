//! The `hookline` binary: see `hookline --help`.

/// jemalloc, with background threads returning freed memory to the system
/// (measured against glibc's and mimalloc's: docs/operations.md, "Memory").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    hookline_api::cli::main()
}
