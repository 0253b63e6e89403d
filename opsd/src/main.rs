//! The `opsd` binary: everything is in [`cli`].

mod cli;

/// mimalloc instead of the system allocator: the router (`opsd router`) allocates and frees a
/// few small buffers per proxied request, and measured faster with it (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
