//! `startifact-fs status [MOUNTPOINT] [--json]`: what a mount is staging, what failed and
//! why, what awaits repair, and each region's recent health, read from the mount's root
//! attribute `user.startifact:status` (see `crate::fs::calls::status`). Any user who can see the
//! mount can ask; no log is needed. Without a MOUNTPOINT, every startifact-fs mount in
//! `/proc/self/mounts` is shown.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use serde_json::Value;

use crate::fs::xattr::XATTR_SIZE_MAX;
use crate::fs::STATUS_ATTRIBUTE;

#[derive(Debug, Parser)]
#[command(
    name = "startifact-fs status",
    about = "Shows what a startifact-fs mount is staging, what failed, what awaits repair, and each region's health"
)]
struct StatusArgs {
    /// The mount to ask (default: every startifact-fs mount).
    #[arg(value_name = "MOUNTPOINT")]
    mountpoint: Option<PathBuf>,
    /// Print the daemon's JSON document (one per line, with its "mountpoint").
    #[arg(long)]
    json: bool,
}

/// Runs the subcommand; `std::env::args_os()` starts with the program and `status`.
pub fn main() -> ExitCode {
    let args = match StatusArgs::try_parse_from(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let mountpoints = match args.mountpoint {
        Some(path) => vec![path],
        None => mounts_of_this_kind(),
    };
    if mountpoints.is_empty() {
        eprintln!("startifact-fs status: no startifact-fs mount found");
        return ExitCode::FAILURE;
    }
    let mut failed = false;
    for mountpoint in mountpoints {
        match read_status(&mountpoint) {
            Ok(mut document) => {
                if args.json {
                    document["mountpoint"] = Value::String(mountpoint.display().to_string());
                    println!("{document}");
                } else {
                    print!("{}", render(&mountpoint, &document, now()));
                }
            }
            Err(message) => {
                eprintln!("startifact-fs status: {}: {message}", mountpoint.display());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The mount points of `fuse.startifact-fs` filesystems, from `/proc/self/mounts`.
fn mounts_of_this_kind() -> Vec<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    table
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let (_source, mountpoint, kind) = (fields.next()?, fields.next()?, fields.next()?);
            (kind == "fuse.startifact-fs").then(|| PathBuf::from(unescape_octal(mountpoint)))
        })
        .collect()
}

/// `/proc/self/mounts` writes a space as `\040`, a tab `\011`, a backslash `\134`.
fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match escaped {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(value as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_status(mountpoint: &Path) -> Result<Value, String> {
    let path = CString::new(mountpoint.as_os_str().as_bytes())
        .map_err(|_| "the path holds a NUL byte".to_string())?;
    let name = CString::new(STATUS_ATTRIBUTE).map_err(|e| e.to_string())?;
    let mut buffer = vec![0u8; XATTR_SIZE_MAX];
    // SAFETY: both strings are NUL-terminated and the buffer is as long as we say.
    let read = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
        )
    };
    if read < 0 {
        let error = std::io::Error::last_os_error();
        return Err(match error.raw_os_error() {
            Some(libc::ENODATA) => "not a startifact-fs mount (no status attribute)".into(),
            Some(libc::ENOTCONN) => "the mount's daemon is gone (transport endpoint is not \
                                     connected): unmount it and mount again"
                .into(),
            _ => error.to_string(),
        });
    }
    buffer.truncate(read as usize);
    serde_json::from_slice(&buffer).map_err(|e| format!("unreadable status: {e}"))
}

fn ago(now: f64, then: &Value) -> Option<String> {
    let seconds = (now - then.as_f64()?).max(0.0);
    Some(match seconds as u64 {
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s => format!("{} h ago", s / 3600),
    })
}

/// The status as text for people.
fn render(mountpoint: &Path, document: &Value, now: f64) -> String {
    let mut text = format!("{}\n", mountpoint.display());
    let mode = if document["read_only"].as_bool() == Some(true) {
        "read-only"
    } else {
        "read-write"
    };
    let since = ago(now, &document["mounted_at"]).unwrap_or_else(|| "?".into());
    text.push_str(&format!("  mounted {since}, {mode}\n"));
    text.push_str("  regions:\n");
    for region in document["regions"].as_array().into_iter().flatten() {
        let name = region["region"].as_str().unwrap_or("?");
        let breaker = region["breaker"].as_str().unwrap_or("?");
        let mut line = format!("    {name:<16} {:<9}", health_word(breaker));
        if let Some(when) = ago(now, &region["last_success"]) {
            line.push_str(&format!(" last success {when}"));
        } else {
            line.push_str(" no success yet");
        }
        if let Some(retry) = region["retry_in_seconds"].as_f64() {
            line.push_str(&format!("; not asked for {retry:.0} s"));
        }
        if let Some(error) = region["last_error"].as_object() {
            let when = ago(now, &error["at"]).unwrap_or_default();
            let reason = error["reason"].as_str().unwrap_or("");
            line.push_str(&format!("; last error {when}: {reason}"));
        }
        match region["awaiting_repair"].as_u64() {
            Some(0) | None => {}
            Some(1) => line.push_str("; 1 version awaits repair here"),
            Some(n) => line.push_str(&format!("; {n} versions await repair here")),
        }
        text.push_str(&line);
        text.push('\n');
    }
    match document["staging"].as_object() {
        None => text.push_str("  staging: none (read-only mount)\n"),
        Some(staging) => {
            if let Some(error) = staging.get("error").and_then(Value::as_str) {
                text.push_str(&format!("  staging: unknown ({error})\n"));
            }
            let versions = staging
                .get("versions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if versions.is_empty() {
                text.push_str("  staging: nothing\n");
            } else {
                text.push_str("  staging:\n");
            }
            for entry in &versions {
                let mut line = format!(
                    "    {}/{}",
                    entry["project"].as_str().unwrap_or("?"),
                    entry["version"].as_str().unwrap_or("?")
                );
                if let Some(file) = entry["file"].as_str() {
                    line.push_str(&format!("/{file}"));
                }
                line.push_str(&format!(
                    "  {}  {} bytes",
                    entry["state"].as_str().unwrap_or("?"),
                    entry["size"].as_u64().unwrap_or(0)
                ));
                if let Some(reason) = entry["reason"].as_str() {
                    line.push_str(&format!(": {reason}"));
                }
                if let Some(due) = entry["next_try_seconds"].as_f64() {
                    let tried = entry["attempts"].as_u64().unwrap_or(0);
                    let wait = (due - now).max(0.0);
                    line.push_str(&format!(" (repairs tried: {tried}; next in {wait:.0} s)"));
                }
                text.push_str(&line);
                text.push('\n');
            }
            if staging.get("truncated").and_then(Value::as_bool) == Some(true) {
                text.push_str("    (more entries: see status.json in the staging directory)\n");
            }
        }
    }
    // Indexed as a `Value`, not a map: keys that are left out read as null.
    let repair = &document["last_repair"];
    if repair.is_object() {
        let when = ago(now, &repair["at"]).unwrap_or_else(|| "?".into());
        let mut line = format!(
            "  last repair: {}/{} {} {when} (attempt {})",
            repair["project"].as_str().unwrap_or("?"),
            repair["version"].as_str().unwrap_or("?"),
            repair["outcome"].as_str().unwrap_or("?"),
            repair["attempt"].as_u64().unwrap_or(0)
        );
        if let Some(reason) = repair["reason"].as_str() {
            line.push_str(&format!(": {reason}"));
        }
        text.push_str(&line);
        text.push('\n');
    }
    text
}

fn health_word(breaker: &str) -> &'static str {
    match breaker {
        "closed" => "up",
        "open" => "down",
        "half-open" => "probing",
        _ => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mount_table_escapes_are_undone() {
        assert_eq!(unescape_octal(r"/mnt/my\040disk\134x"), r"/mnt/my disk\x");
        assert_eq!(unescape_octal(r"/plain\0"), r"/plain\0");
    }

    #[test]
    fn text_shows_a_region_down_and_a_version_awaiting_repair() {
        let document = json!({
            "mounted_at": 1000.0,
            "read_only": false,
            "regions": [
                {"region": "eu-west-2", "breaker": "closed", "consecutive_failures": 0,
                 "retry_in_seconds": null, "last_success": 1090.0, "last_error": null},
                {"region": "us-east-1", "breaker": "open", "consecutive_failures": 4,
                 "retry_in_seconds": 8.0, "last_success": null,
                 "last_error": {"at": 1095.0, "reason": "unavailable: connection refused"},
                 "awaiting_repair": 1},
            ],
            "staging": {"used_bytes": 5, "limit_bytes": 10, "versions": [
                {"project": "App", "version": "1.1.0", "file": "dist.tar.gz", "size": 5,
                 "state": "awaiting-repair", "reason": "us-east-1", "regions": ["us-east-1"],
                 "attempts": 2, "next_try_seconds": 1130},
            ]},
            "last_repair": {"project": "App", "version": "1.1.0", "attempt": 2, "at": 1090.0,
                            "outcome": "failed", "regions": ["us-east-1"],
                            "reason": "us-east-1: refused"},
        });
        let text = render(Path::new("/mnt/a"), &document, 1100.0);
        assert!(text.contains("mounted 100 s ago, read-write"), "{text}");
        assert!(
            text.contains("eu-west-2        up        last success 10 s ago"),
            "{text}"
        );
        assert!(
            text.contains("us-east-1        down      no success yet; not asked for 8 s; last error 5 s ago: unavailable: connection refused"),
            "{text}"
        );
        assert!(
            text.contains(
                "App/1.1.0/dist.tar.gz  awaiting-repair  5 bytes: us-east-1 (repairs tried: 2; next in 30 s)"
            ),
            "{text}"
        );
        assert!(
            text.contains("unavailable: connection refused; 1 version awaits repair here\n"),
            "{text}"
        );
        assert!(
            text.contains("last repair: App/1.1.0 failed 10 s ago (attempt 2): us-east-1: refused"),
            "{text}"
        );
    }

    #[test]
    fn text_shows_a_repair_that_succeeded_without_a_reason() {
        let document = json!({"mounted_at": 1.0, "read_only": false, "regions": [],
                              "staging": {"versions": []},
                              "last_repair": {"project": "App", "version": "1.1.0",
                                              "attempt": 1, "at": 90.0,
                                              "outcome": "repaired"}});
        let text = render(Path::new("/m"), &document, 100.0);
        assert!(text.contains("staging: nothing"), "{text}");
        assert!(
            text.contains("last repair: App/1.1.0 repaired 10 s ago (attempt 1)\n"),
            "{text}"
        );
    }

    #[test]
    fn text_of_a_read_only_mount_says_it_stages_nothing() {
        let document = json!({"mounted_at": 1.0, "read_only": true, "regions": [],
                              "staging": null});
        let text = render(Path::new("/m"), &document, 2.0);
        assert!(text.contains("read-only"), "{text}");
        assert!(text.contains("staging: none (read-only mount)"), "{text}");
    }
}
