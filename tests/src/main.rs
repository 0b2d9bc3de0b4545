//! The binary the end-to-end suite runs: the `mvsync` command line itself
//! (`mvsync::main`), built with the testkit's fault connector when built for
//! `cargo test`.

fn main() -> std::process::ExitCode {
    mvsync::main()
}
