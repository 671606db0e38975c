fn main() -> std::process::ExitCode {
    // `startifact-fs status [MOUNTPOINT]` asks a running mount; anything else mounts (a
    // mount point named "status" is given as "./status").
    if std::env::args_os().nth(1).is_some_and(|a| a == "status") {
        return startifact::mount::status::main();
    }
    startifact::mount::daemon::main()
}
