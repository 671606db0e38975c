//! Parsing a program's arguments with clap, for both programs (`startifact` and the
//! `startifact-fs` daemon): help and version as clap prints them, an error as one line
//! in the program's own voice and exit 1.

use std::process::ExitCode;

use clap::Parser;

/// Parses the process's arguments. Help and version print and exit 0; an error prints
/// its first line between `prefix` and `suffix` on stderr and exits 1 (not clap's 2).
pub fn parse_arguments<T: Parser>(prefix: &str, suffix: &str) -> Result<T, ExitCode> {
    T::try_parse().map_err(|e| {
        use clap::error::ErrorKind;
        if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("invalid arguments");
        eprintln!("{prefix}{first}{suffix}");
        ExitCode::FAILURE
    })
}
