//! `shopflow` with the next release's workflow journal (one more durable step): the
//! second build of the upgrade test (`tests/it/versions.rs`). Not for use otherwise.

fn main() -> std::process::ExitCode {
    shopflow::durable::journal_with_extra_step();
    shopflow::main()
}
