//! Parsing a program's arguments with clap, for both programs (`startifact` and the
//! `startifact-fs` daemon): help and version as clap prints them, an error as one line
//! in the program's own voice and exit 1; and the sizes both take (`16M`, `1G`).

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

/// Parses a size in bytes with an optional K, M, G or T suffix (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let (digits, shift) = match trimmed.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => {
                    return Err(format!(
                        "{text:?} is not a size (a number with K, M, G or T)"
                    ))
                }
            };
            (&trimmed[..i], shift)
        }
        _ => (trimmed, 0),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| format!("{text:?} is not a size (a number with K, M, G or T)"))
}
