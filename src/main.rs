fn main() -> std::process::ExitCode {
    shopflow::main()
}
