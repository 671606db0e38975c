//! The write side of `ArtifactFs`: staging folders (`mkdir`, `rmdir`), the staging
//! file (`create`, `write`, `fsync`, `truncate`, `rename`, `rm`; its `close` and who may
//! change it while it is written are in `in_flight`), and yanking with
//! `--allow-delete`. What is kept where, and when a stage runs, is in `staging`; this
//! module maps the mount's nodes onto it and tells the namespace what changed (a name
//! made, staged or yanked), which forgets what it must.

use std::sync::Arc;
use std::time::SystemTime;

use crate::protocol::validate_project_name;

use super::filesystem::ArtifactFs;
use super::handles::{OpenFile, SpooledHandle};
use crate::fs::caller::Caller;
use crate::fs::error::{FsError, FsErrorKind, FsResult};
use crate::fs::host::process;
use crate::fs::inode::Node;
use crate::fs::namespace::parse_version_name;
use crate::fs::staging::{CloseEffect, RenameEffect, Staging};
use crate::fs::stat::Entry;
use crate::fs::sync::lock;

/// What `setattr` asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttrChange {
    pub size: Option<u64>,
    pub mtime: Option<SystemTime>,
    /// Modes, owners or access time: accepted on folders and staging files, not kept.
    pub other: bool,
}

impl ArtifactFs {
    pub(super) fn writable_staging(&self, what: &str) -> FsResult<&Arc<Staging>> {
        match &self.staging {
            Some(staging) if !self.options.read_only => Ok(staging),
            _ => Err(self.refuse_change(what)),
        }
    }

    /// The staging version (and subfolder) a folder node is, if it is one.
    fn staging_place(&self, node: &Node) -> Option<(String, String, Option<String>)> {
        match node {
            Node::Version(p, v) if self.is_staging(p, v) => Some((p.clone(), v.clone(), None)),
            Node::Subfolder(p, v, folder) if self.is_staging(p, v) => {
                Some((p.clone(), v.clone(), Some(folder.clone())))
            }
            _ => None,
        }
    }

    // ---- folders ----

    pub async fn mkdir(&self, parent: u64, name: &str) -> FsResult<Entry> {
        let staging = self.writable_staging("creating a folder")?;
        match self.node(parent)? {
            Node::Root => {
                validate_project_name(name)
                    .map_err(|e| FsError::new(FsErrorKind::Invalid, e.to_string()))?;
                match self.lookup(parent, name).await {
                    Ok(_) => {
                        return Err(FsError::new(
                            FsErrorKind::Exists,
                            format!("project {name} exists"),
                        ))
                    }
                    Err(e) if e.kind == FsErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                staging.create_project(name)?;
                self.namespace.project_made(name);
                self.entry(Node::Project(name.to_string())).await
            }
            Node::Project(project) => {
                if parse_version_name(name).is_none() {
                    return Err(if name == "latest" {
                        FsError::new(FsErrorKind::Exists, format!("{project}/latest exists"))
                    } else {
                        FsError::new(
                            FsErrorKind::Invalid,
                            format!("{name:?} is not a version (Semantic Versioning 2.0, canonical form)"),
                        )
                    });
                }
                if self.is_staging(&project, name) {
                    return Err(FsError::new(
                        FsErrorKind::Exists,
                        format!("{project}/{name} is being staged here"),
                    ));
                }
                match self.namespace.pinned(&project, name).await {
                    Ok(_) => {
                        return Err(FsError::new(
                            FsErrorKind::Exists,
                            format!("{project}@{name} is staged already"),
                        ))
                    }
                    Err(e) if e.kind == FsErrorKind::NotFound => {}
                    // The stage checks every region again (and cannot overwrite): a
                    // region down now must not stop the copy into the spool.
                    Err(e) => tracing::warn!(
                        "cannot tell whether {project}@{name} exists ({e}); staging folder made anyway"
                    ),
                }
                staging.create_version(&project, name)?;
                self.namespace.version_made(&project, name);
                self.entry(Node::Version(project, name.to_string())).await
            }
            node => match self.staging_place(&node) {
                Some((project, version, None)) => {
                    staging.create_subfolder(&project, &version, name)?;
                    self.entry(Node::Subfolder(project, version, name.to_string()))
                        .await
                }
                _ => Err(self.refuse_change("creating a folder")),
            },
        }
    }

    pub async fn rmdir(&self, parent: u64, name: &str) -> FsResult<()> {
        if self.options.read_only {
            return Err(self.refuse_change("removing a folder"));
        }
        match self.node(parent)? {
            Node::Root => match &self.staging {
                Some(staging) if staging.has_project(name) => {
                    staging.remove_project(name)?;
                    self.namespace.projects_changed();
                    Ok(())
                }
                _ => Err(self.refuse_change("removing a project folder")),
            },
            Node::Project(project) => {
                if let Some(staging) = &self.staging {
                    if self.is_staging(&project, name) {
                        return staging.remove_version(&project, name);
                    }
                }
                let key = (project.clone(), name.to_string());
                if lock(&self.yanked_here).contains(&key) {
                    return Ok(());
                }
                if self.options.allow_delete && self.namespace.pinned(&project, name).await.is_ok()
                {
                    return Err(FsError::new(
                        FsErrorKind::NotEmpty,
                        format!("{project}/{name} holds its artifact (rm -r yanks it)"),
                    ));
                }
                Err(self.refuse_change("removing a version folder"))
            }
            node => match (self.staging_place(&node), &self.staging) {
                (Some((project, version, None)), Some(staging)) => {
                    staging.remove_subfolder(&project, &version, name)
                }
                _ => Err(self.refuse_change("removing a folder")),
            },
        }
    }

    // ---- the staging file ----

    /// `open(O_CREAT)` of a name that is not there (or `O_EXCL`): the handle writes,
    /// whatever access it asked for, since it made the file.
    pub async fn create(&self, parent: u64, name: &str, caller: &Caller) -> FsResult<(Entry, u64)> {
        let staging = self.writable_staging("creating a file")?;
        let parent_node = self.node(parent)?;
        let Some((project, version, folder)) = self.staging_place(&parent_node) else {
            return Err(match parent_node {
                Node::Root | Node::Project(_) => FsError::new(
                    FsErrorKind::Immutable,
                    "files go in a version folder: mkdir MOUNT/PROJECT/VERSION first",
                ),
                _ => self.refuse_change("creating a file"),
            });
        };
        let by = caller.clone().named();
        let file = staging.create_file(&project, &version, folder.as_deref(), name, &by)?;
        let node = Node::File(project.clone(), version.clone());
        let inode = self.namespace.inode_of(&node);
        tracing::info!(project, version, name, "staging file created");
        let opener = process::process_of(caller.pid).unwrap_or(0);
        self.open_files.start_writing(&project, &version, opener);
        let handle = self.add_handle(OpenFile::Spooled(SpooledHandle {
            project,
            version,
            inode,
            file,
            write: true,
            closed: Default::default(),
            opener,
        }));
        Ok((self.entry(node).await?, handle))
    }

    /// `mknod` of a regular file: made as `create` makes it, with no handle left open
    /// (the writer opens it next; its close stages it).
    pub async fn mknod_file(&self, parent: u64, name: &str, caller: &Caller) -> FsResult<Entry> {
        let (entry, handle) = self.create(parent, name, caller).await?;
        self.release(handle);
        Ok(entry)
    }

    pub(super) fn open_spooled(
        &self,
        inode: u64,
        project: String,
        version: String,
        write: bool,
        truncate: bool,
        caller: &Caller,
    ) -> FsResult<u64> {
        let staging = match (&self.staging, write) {
            (Some(staging), false) => staging,
            _ => self.writable_staging("opening for writing")?,
        };
        if write {
            self.may_change_in_flight(&project, &version, caller.pid, "opening for writing")?;
        }
        let writer = write.then(|| caller.clone().named());
        let file = staging.open_file(&project, &version, writer.as_ref(), truncate)?;
        let opener = process::process_of(caller.pid).unwrap_or(0);
        if write {
            self.open_files.start_writing(&project, &version, opener);
        }
        Ok(self.add_handle(OpenFile::Spooled(SpooledHandle {
            project,
            version,
            inode,
            file,
            write,
            closed: Default::default(),
            opener,
        })))
    }

    /// A write by thread `pid` (0 when the kernel does not say).
    pub async fn write(&self, handle: u64, offset: u64, data: &[u8], pid: u32) -> FsResult<u32> {
        let handle = self.handle(handle)?;
        let OpenFile::Spooled(spooled) = handle.as_ref() else {
            return Err(self.refuse_change("writing"));
        };
        if !spooled.write {
            return Err(FsError::new(FsErrorKind::BadHandle, "not open for writing"));
        }
        // A descriptor handed to a process outside the opener's tree writes nothing.
        if spooled.opener != 0 && pid != 0 && !process::is_in_tree_of(spooled.opener, pid) {
            return Err(FsError::new(
                FsErrorKind::AccessDenied,
                format!(
                    "{}/{}: pid {pid} is not in the tree of process {}, which opened the file",
                    spooled.project, spooled.version, spooled.opener
                ),
            ));
        }
        let staging = self.writable_staging("writing")?;
        let written = staging
            .write(
                &spooled.project,
                &spooled.version,
                &spooled.file,
                offset,
                data,
            )
            .map_err(|e| match e.kind {
                // Staged through another descriptor meanwhile.
                FsErrorKind::NotFound if !self.is_staging(&spooled.project, &spooled.version) => {
                    self.refuse_change("writing")
                }
                _ => e,
            });
        if let Err(e) = &written {
            let failed = e.clone();
            self.open_files
                .update_flight(&spooled.project, &spooled.version, |flight| {
                    flight.write_failed.get_or_insert(failed);
                });
        }
        written
    }

    /// Stages a version's file and tells the namespace.
    pub(super) async fn publish(&self, project: &str, version: &str) -> FsResult<()> {
        let Some(staging) = &self.staging else {
            return Ok(());
        };
        match staging.stage(&self.session, project, version).await? {
            CloseEffect::Nothing => Ok(()),
            CloseEffect::Staged { .. } => {
                self.namespace.staged(project, version);
                // Yanked earlier and staged again: it holds an artifact once more.
                lock(&self.yanked_here).remove(&(project.to_string(), version.to_string()));
                lock(&self.staged_here).insert((project.to_string(), version.to_string()));
                Ok(())
            }
        }
    }

    pub async fn fsync(&self, handle: u64) -> FsResult<()> {
        let handle = self.handle(handle)?;
        match (handle.as_ref(), &self.staging) {
            (OpenFile::Spooled(spooled), Some(staging)) => {
                staging.sync(&spooled.project, &spooled.version)
            }
            _ => Ok(()),
        }
    }

    /// `setattr` by thread `pid` (`truncate`, `ftruncate`, `touch`, `chmod`).
    pub async fn setattr(&self, inode: u64, change: AttrChange, pid: u32) -> FsResult<Entry> {
        let node = self.node(inode)?;
        if self.options.read_only {
            return Err(self.refuse_change("changing attributes"));
        }
        match &node {
            Node::File(project, version) if self.is_staging(project, version) => {
                let staging = self.writable_staging("changing attributes")?;
                if let Some(size) = change.size {
                    self.may_change_in_flight(project, version, pid, "resizing")?;
                    staging.truncate(project, version, size)?;
                }
                if let Some(mtime) = change.mtime {
                    staging.set_mtime(project, version, mtime)?;
                }
            }
            // rsync --inplace sets times and modes after the close that staged the file.
            Node::File(project, version)
                if change.size.is_none()
                    && lock(&self.staged_here).contains(&(project.clone(), version.clone())) => {}
            Node::Root | Node::Project(_) | Node::Version(..) | Node::Subfolder(..)
                if change.size.is_none() => {}
            _ => return Err(self.refuse_change("changing attributes")),
        }
        self.entry(node).await
    }

    /// `rename(2)` of the staging file inside its version folder, by thread `pid`: a
    /// hidden name to the final one stages it (and a failed stage leaves the old name).
    pub(super) async fn rename_in_version(
        &self,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
        pid: u32,
    ) -> FsResult<()> {
        let staging = self.writable_staging("renaming")?;
        let (from, to) = (self.node(parent)?, self.node(new_parent)?);
        let (Some((project, version, from_folder)), Some((to_project, to_version, to_folder))) =
            (self.staging_place(&from), self.staging_place(&to))
        else {
            return Err(self.refuse_change("renaming"));
        };
        if (&project, &version) != (&to_project, &to_version) {
            return Err(FsError::new(
                FsErrorKind::Immutable,
                format!(
                    "the file of {project}/{version} can only be renamed within its version folder"
                ),
            ));
        }
        self.may_change_in_flight(&project, &version, pid, "renaming")?;
        let effect = staging.rename_file(
            &project,
            &version,
            (from_folder.as_deref(), name),
            (to_folder.as_deref(), new_name),
        )?;
        if effect == RenameEffect::StageNow {
            if let Err(e) = self.publish(&project, &version).await {
                let _ = staging.rename_file(
                    &project,
                    &version,
                    (to_folder.as_deref(), new_name),
                    (from_folder.as_deref(), name),
                );
                return Err(e);
            }
        }
        Ok(())
    }

    /// `unlink(2)` in a version folder, by thread `pid`: a staging file is discarded; a
    /// staged artifact is yanked from every region with `--allow-delete`, else refused.
    pub(super) async fn unlink_in_version(
        &self,
        parent: u64,
        name: &str,
        pid: u32,
    ) -> FsResult<()> {
        if self.options.read_only {
            return Err(self.refuse_change("removing a file"));
        }
        let parent_node = self.node(parent)?;
        if let Some((project, version, folder)) = self.staging_place(&parent_node) {
            let staging = self.writable_staging("removing a file")?;
            let view = self.staging_view(&project, &version);
            if !view
                .and_then(|v| v.file)
                .is_some_and(|f| f.name == name && f.folder == folder)
            {
                return Err(FsError::not_found(format!(
                    "{project}/{version} holds no {name:?}"
                )));
            }
            self.may_change_in_flight(&project, &version, pid, "removing the file")?;
            if let Some(ahead) = staging.discard_file(&project, &version)? {
                self.session.abandon_ahead(ahead).await;
            }
            return Ok(());
        }
        let Node::Version(project, version) = parent_node else {
            return Err(self.refuse_change("removing a file"));
        };
        if !self.options.allow_delete {
            return Err(
                self.refuse_change("removing a file (mount with --allow-delete to yank versions)")
            );
        }
        let pinned = self.namespace.pinned(&project, &version).await?;
        if pinned.file_name != name {
            return Err(FsError::not_found(format!(
                "{project}@{version} holds no {name:?}"
            )));
        }
        self.session
            .yank(&project, &pinned.version)
            .await
            .map_err(|e| match e {
                crate::protocol::Error::ReadOnly => self.refuse_change("yanking"),
                e => FsError::unavailable(e.to_string()),
            })?;
        tracing::info!(project, version, "yanked through the mount");
        if let Some(staging) = &self.staging {
            staging.forget_published(&project, &version)?;
        }
        lock(&self.yanked_here).insert((project.clone(), version.clone()));
        lock(&self.staged_here).remove(&(project.clone(), version.clone()));
        self.namespace.yanked(&project, &version);
        Ok(())
    }
}
