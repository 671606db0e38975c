fn main() -> std::process::ExitCode {
    startifact::cli::main()
}
