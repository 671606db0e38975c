fn main() -> std::process::ExitCode {
    startifact::mount::daemon::main()
}
