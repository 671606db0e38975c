//! What the daemon tells systemd when it runs as a `Type=notify` service (when
//! `NOTIFY_SOCKET` is set; otherwise nothing is sent): `READY=1` once the mount answers,
//! a `STATUS=` line while it serves (the stages in flight, the regions down), updated
//! when it changes, and `STOPPING=1` at SIGTERM/SIGINT or an unmount from outside.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

use crate::fs::Staging;
use crate::protocol::Session;
use crate::storage::RegionHealth;

/// How often the status line is computed again (it is sent only when it changed).
const STATUS_EVERY: Duration = Duration::from_secs(2);

fn send(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("cannot notify systemd: {e}");
    }
}

/// Sent while the daemon starts, before any region is asked.
pub fn starting(mountpoint: &Path) {
    send(&[NotifyState::Status(&format!(
        "starting: asking the regions, then mounting {}",
        mountpoint.display()
    ))]);
}

/// The mount answers. The process id goes too: in the background mode the process
/// systemd started has forked.
pub fn ready(status: &str) {
    send(&[
        NotifyState::Ready,
        NotifyState::MainPid(std::process::id()),
        NotifyState::Status(status),
    ]);
}

pub fn stopping(why: &str) {
    send(&[NotifyState::Stopping, NotifyState::Status(why)]);
}

/// The daemon fails: `systemctl status` shows why.
pub fn failed(message: &str) {
    send(&[NotifyState::Status(&format!("failed: {message}"))]);
}

/// "serving /mnt; 2 stages in flight; regions down: eu-west-1 (breaker open)".
pub fn status_line(
    mountpoint: &Path,
    in_flight: Option<usize>,
    regions: &[RegionHealth],
) -> String {
    let mut line = format!("serving {}", mountpoint.display());
    match in_flight {
        None => line.push_str("; read-only"),
        Some(1) => line.push_str("; 1 stage in flight"),
        Some(n) => line.push_str(&format!("; {n} stages in flight")),
    }
    let down: Vec<String> = regions
        .iter()
        .filter(|r| r.breaker != "closed")
        .map(|r| format!("{} (breaker {})", r.region, r.breaker))
        .collect();
    if down.is_empty() {
        line.push_str(&format!("; all {} regions answer", regions.len()));
    } else {
        line.push_str(&format!("; regions down: {}", down.join(", ")));
    }
    line
}

/// Watches the mount, sending its status line whenever it changes (never returns).
pub async fn keep_status(mountpoint: PathBuf, session: Session, staging: Option<Arc<Staging>>) {
    let current = || {
        let in_flight = staging.as_ref().map(|s| s.stages_in_flight());
        status_line(&mountpoint, in_flight, &session.health())
    };
    let mut sent = current();
    ready(&sent);
    let mut every = tokio::time::interval(STATUS_EVERY);
    loop {
        every.tick().await;
        let line = current();
        if line != sent {
            send(&[NotifyState::Status(&line)]);
            sent = line;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(name: &str, breaker: &'static str) -> RegionHealth {
        RegionHealth {
            region: name.to_string(),
            breaker,
            consecutive_failures: 0,
            retry_in_seconds: None,
            last_success: None,
            last_error: None,
        }
    }

    #[test]
    fn the_status_line_names_the_stages_in_flight_and_the_regions_down() {
        let mnt = Path::new("/mnt/a");
        let up = [region("a", "closed"), region("b", "closed")];
        assert_eq!(
            status_line(mnt, Some(0), &up),
            "serving /mnt/a; 0 stages in flight; all 2 regions answer"
        );
        let down = [
            region("a", "open"),
            region("b", "closed"),
            region("c", "half-open"),
        ];
        assert_eq!(
            status_line(mnt, Some(1), &down),
            "serving /mnt/a; 1 stage in flight; regions down: a (breaker open), c (breaker half-open)"
        );
        assert_eq!(
            status_line(mnt, None, &up),
            "serving /mnt/a; read-only; all 2 regions answer"
        );
    }
}
