//! A staging file in flight: from an `open` for writing until the close of the last
//! descriptor of any kind its writers' process tree holds. Meanwhile every change to it
//! comes from that tree (`may_change_in_flight`), and each `close()` (FUSE `flush`)
//! asks `/proc` whether it is that last close and how the closing process stands: the
//! last one stages the file, unless a process of the tree is dying by a signal or with
//! a failure status, or a write failed (then the file is kept, abandoned).
//!
//! What cannot be seen from here: a writer that closes the file and only then fails.
//! Linux gives an exit status to the parent alone, and `close()` must answer with the
//! stage's errno before the process can exit (docs/SEMANTICS.md, *What a failed writer
//! publishes*).

use std::sync::atomic::Ordering;

use super::filesystem::ArtifactFs;
use super::handles::{OpenFile, SpooledHandle};
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::host::process::{self, Closer};
use crate::fs::staging::FileStatus;

/// How long the closing process's `/proc` entry is given to answer. Long enough for a
/// busy machine (at 500 ms a loaded one took a writer's close of a duplicate descriptor
/// for its last, and staged under it); a process in the middle of an exec does not
/// answer at all, and costs this once.
const CLOSER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

impl ArtifactFs {
    /// A change (`what`) to a staging version's file, or to the metadata staged with it,
    /// by thread `pid`: while the file is in flight, only its writers' process tree (the
    /// processes that opened it for writing, and their descendants) may make it. Any
    /// other process (another user's, or another of root's) is refused, so no one can
    /// change what its writer is about to publish. A thread the kernel does not name
    /// (pid 0, from another pid namespace) is let through, as its writes are.
    pub(super) fn may_change_in_flight(
        &self,
        project: &str,
        version: &str,
        pid: u32,
        what: &str,
    ) -> FsResult<()> {
        let Some(flight) = self.open_files.in_flight(project, version) else {
            return Ok(());
        };
        if pid == 0 || is_in_tree(&flight.writers, pid) {
            return Ok(());
        }
        let writers = flight
            .writers
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        Err(FsError::new(
            FsErrorKind::AccessDenied,
            format!(
                "{project}/{version}: {what} refused: its file is being written by process {writers}, and pid {pid} is not in that process tree"
            ),
        ))
    }

    /// A handle is closed for good (its opener's last close, or its release without
    /// one): open for writing, it stops counting as a writer.
    pub(super) fn handle_closed(&self, spooled: &SpooledHandle) {
        if !spooled.closed.swap(true, Ordering::Relaxed) {
            self.writer_gone(spooled);
        }
    }

    /// A handle open for writing, just marked closed, stops counting as a writer.
    fn writer_gone(&self, spooled: &SpooledHandle) {
        if let (true, Some(staging)) = (spooled.write, &self.staging) {
            staging.writer_gone(&spooled.project, &spooled.version);
        }
    }

    /// `close(2)` of a descriptor (FUSE `flush`, sent for every one): the stage runs
    /// here when this was the last descriptor of any kind (read or write) that the
    /// file's writers' process tree held, and it was written; its errno is what
    /// `close()` returns. `pid` is the closing thread.
    pub async fn flush(&self, handle: u64, pid: u32) -> FsResult<()> {
        let handle = self.handle(handle)?;
        let OpenFile::Spooled(spooled) = handle.as_ref() else {
            return Ok(());
        };
        let Some(staging) = &self.staging else {
            return Ok(());
        };
        let (project, version) = (&spooled.project, &spooled.version);
        let Some(file) = self.staging_view(project, version).and_then(|v| v.file) else {
            return Ok(());
        };
        // Not opened for writing since it was last closed: a reader's close.
        let Some(flight) = self.open_files.in_flight(project, version) else {
            return Ok(());
        };
        // A child closing the copy it inherited (at exec, or as it exits) is not the
        // opener: its parent still holds the file.
        if spooled.opener != 0 && !process::is_thread_of(spooled.opener, pid) {
            tracing::debug!(project, version, pid, "close of an inherited descriptor");
            return Ok(());
        }
        // A reader outside the writers' tree neither holds the stage back nor runs it.
        if !spooled.write && (spooled.opener == 0 || !is_in_tree(&flight.writers, pid)) {
            return Ok(());
        }
        let (inode, name) = (spooled.inode, file.name.clone());
        let folder = format!("{project}/{version}");
        let look = tokio::task::spawn_blocking(move || process::closer(pid, inode, &folder, &name));
        let closer = match tokio::time::timeout(CLOSER_TIMEOUT, look).await {
            Ok(Ok(closer)) => closer,
            // Its /proc entry waits for an exec that waits for this close.
            _ => Closer::Unknown,
        };
        if closer == Closer::StillHolding {
            staging.show_progress();
            return Ok(());
        }
        // The process holds no descriptor of the file any more: every handle it opened
        // is closed (those a child inherited stay the opener's).
        for closed in self
            .open_files
            .close_opened_by(project, version, spooled.opener)
        {
            if let OpenFile::Spooled(closed) = closed.as_ref() {
                self.writer_gone(closed);
            }
        }
        self.handle_closed(spooled);
        if let Closer::Failed(failed) = closer {
            self.open_files
                .update_flight(project, version, |flight| flight.abandoned = true);
            tracing::warn!(
                project,
                version,
                file = file.name,
                "not staged, kept in the spool: {failed}"
            );
            let reason = failed.to_string();
            return staging.set_status(project, version, FileStatus::Abandoned { reason });
        }
        if self.held_by_writers_tree(project, version, &flight.writers) {
            staging.show_progress();
            return Ok(());
        }
        // The last close: the one that lands the flight decides.
        let Some(flight) = self.open_files.land(project, version) else {
            return Ok(());
        };
        if flight.abandoned {
            return Ok(());
        }
        // A writer that saw a write fail and closed anyway (cp after ENOSPC) wrote an
        // incomplete file: kept, not staged, and close() fails too.
        if let Some(failed) = flight.write_failed {
            let reason = format!("a write failed ({failed}); not staged");
            staging.set_status(project, version, FileStatus::Abandoned { reason })?;
            return Err(FsError::new(
                failed.kind,
                format!(
                    "{project}/{version}/{}: {failed}; kept in the spool, not staged",
                    file.name
                ),
            ));
        }
        if !staging.ready_to_stage(project, version) {
            if !staging.has_final_name(project, version) {
                // A hidden name (rsync's temporary file): upload now, so that the
                // rename (which holds the folder's lock in the kernel) only completes
                // the upload.
                staging.set_status(project, version, FileStatus::Written)?;
                staging.upload_ahead(&self.session, project, version).await;
            }
            return Ok(());
        }
        self.publish(project, version).await
    }

    /// Whether a handle of the file is still open in its writers' tree: any open for
    /// writing, or open for reading by a process of the tree.
    fn held_by_writers_tree(&self, project: &str, version: &str, writers: &[u32]) -> bool {
        self.open_files
            .still_open(project, version)
            .into_iter()
            .any(|(write, opener)| write || (opener != 0 && is_in_tree(writers, opener)))
    }
}

/// Whether thread `pid` is one of `writers` or a descendant of one (a writer the kernel
/// did not name, 0, takes anyone).
fn is_in_tree(writers: &[u32], pid: u32) -> bool {
    writers
        .iter()
        .any(|&writer| writer == 0 || process::is_in_tree_of(writer, pid))
}
