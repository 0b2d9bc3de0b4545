//! The `mvsync` binary: everything lives in the library (`src/lib.rs`).

/// mimalloc: the engine allocates and frees many small objects (decoded
/// records, values, sled's nodes); glibc's allocator spent a fifth of a
/// full sync in `malloc_consolidate` and `unlink_chunk` (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mvsync::main()
}
