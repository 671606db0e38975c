//! The model side of the reference model: a few maps that say what docs/SEMANTICS.md
//! promises for each step, and the errno of each refusal.

use super::*;

#[derive(Debug, Clone)]
pub(super) struct Staged {
    pub(super) file: String,
    pub(super) bytes: Vec<u8>,
    pub(super) metadata: Metadata,
    /// The regions (indexes into `REGIONS`) whose store holds the artifact.
    pub(super) held: BTreeSet<usize>,
    /// The region the mount serves it from, once it has looked it up.
    pub(super) pinned: Option<usize>,
    /// The regions whose copy was sent in parts: the same bytes under a multipart
    /// ETag (the others' ETag is their MD5).
    pub(super) in_parts: BTreeSet<usize>,
}

impl Staged {
    fn everywhere(file: &str, bytes: &[u8], metadata: Metadata) -> Self {
        Staged {
            file: file.to_string(),
            bytes: bytes.to_vec(),
            metadata,
            held: (0..REGIONS.len()).collect(),
            pinned: None,
            in_parts: BTreeSet::new(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct StagingFile {
    pub(super) name: String,
    pub(super) bytes: Vec<u8>,
    pub(super) attributes: Metadata,
    /// The writer's handle is open.
    pub(super) open: bool,
    /// Published while a region was down, then found absent by a majority at its
    /// repair (yanked meanwhile): `failed` in status.json, the file kept.
    pub(super) failed: bool,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Staging {
    pub(super) attributes: Metadata,
    pub(super) file: Option<StagingFile>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Project {
    pub(super) staged: BTreeMap<Version, Staged>,
    pub(super) staging: BTreeMap<Version, Staging>,
    pub(super) latest: Option<Version>,
    /// Each region's own `latest` parameter (docs/SEMANTICS.md, "`latest`, yanks and
    /// repair"): a stage moves it forward only in the regions that took the artifact,
    /// a move sets it in the regions that answer, and the repair sets the regions that
    /// answer to the value a majority of all regions name.
    pub(super) latest_in: [Option<Version>; REGIONS.len()],
    /// Some region missed a move of `latest` while it was down (`latest.json`): each
    /// repair aligns them, until one runs with every region up. (A stage that missed
    /// a region is aligned by the repair that completes it: see `Model::repair`.)
    pub(super) lagging: bool,
    /// The mount's last read of `latest` had too few answers to say (EIO): what it
    /// shows of `latest`, and whether it lists the project, is not said until it
    /// reads it again or moves it.
    pub(super) latest_unsaid: bool,
    /// The versions the mount's listing holds, kept for its TTL (`None`: read at the
    /// next look, by the majority rule: see `Project::listed`).
    pub(super) listing: Option<BTreeSet<Version>>,
    /// Made by `mkdir` of the project in this mount or a mount before a restart of
    /// the daemon (the spool marks its folder so): it stays until `rmdir`, or until
    /// the last of its versions the spool drops because every region holds it. The
    /// folder the spool made for a project with its first staging version goes with
    /// the last version it held (`rmdir`, a yank, a stage to every region), so the
    /// next start shows no project this mount did not show.
    pub(super) made_here: bool,
    /// Yanked (through this mount or by another tool): held by no region but those
    /// that missed the yank (`leftovers`).
    pub(super) yanked: BTreeSet<Version>,
    /// Yanked through this mount since it started: `rmdir` of the folder (the end of
    /// `rm -r`) succeeds.
    pub(super) yanked_here: BTreeSet<Version>,
    /// Yanks that answered EIO because a region was down, with the file's name: run
    /// again when it is back (docs/SEMANTICS.md, unlink: "run it again").
    pub(super) pending_yanks: BTreeMap<Version, String>,
    /// This mount's spool entries of versions staged while a region was down, as they
    /// were before the stage: kept to repair that region from (`awaiting-repair`).
    pub(super) awaiting: BTreeMap<Version, Staging>,
    /// Versions this mount had pinned that are gone from a majority other than by a
    /// yank through it that succeeded: a pinned version stays visible to lookups by
    /// name (docs/SEMANTICS.md, "Pinned for the life of the mount"), so steps naming
    /// them are not run; listings and `latest` must not show them.
    pub(super) ghosts: BTreeSet<Version>,
    /// Copies of yanked versions kept by the regions that were down during the yank
    /// (which no reader serves and no repair copies).
    pub(super) leftovers: BTreeMap<Version, BTreeSet<usize>>,
    /// Yanks by another tool that a region missed: that tool runs them again.
    pub(super) yanks_elsewhere: BTreeSet<Version>,
}

impl Project {
    pub(super) fn in_store(&self) -> bool {
        !self.staged.is_empty() || self.latest.is_some()
    }

    pub(super) fn visible(&self) -> bool {
        self.in_store() || self.made_here || !self.staging.is_empty()
    }

    /// A version every region holds leaves the spool; the project's folder made by
    /// `mkdir` goes with the last of its versions there.
    pub(super) fn spool_dropped(&mut self, version: &Version) {
        self.awaiting.remove(version);
        if self.staging.is_empty() && self.awaiting.is_empty() {
            self.made_here = false;
        }
    }

    /// The versions a listing shows with the regions `up` answering: those more than
    /// half of all regions list.
    pub(super) fn listed(&self, up: &[usize]) -> BTreeSet<Version> {
        let listing = |s: &Staged| up.iter().filter(|r| s.held.contains(r)).count();
        self.staged
            .iter()
            .filter(|(_, staged)| listing(staged) >= MAJORITY)
            .map(|(v, _)| v.clone())
            .collect()
    }

    /// A yank moves `latest` back to the highest version listed (`up` answering), in
    /// `regions` where it named the yanked one (removed when none is left).
    pub(super) fn move_back(
        &mut self,
        yanked: &Version,
        up: &[usize],
        regions: impl Iterator<Item = usize>,
    ) {
        let remaining = self.listed(up).last().cloned();
        for r in regions {
            if self.latest_in[r].as_ref() == Some(yanked) {
                self.latest_in[r] = remaining.clone();
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Model {
    pub(super) projects: BTreeMap<String, Project>,
    pub(super) allow_delete: bool,
    /// The region that refuses every request, if one does.
    pub(super) down: Option<usize>,
    /// How the mount sends files to each region, as its figures say: in parts (`true`)
    /// or in one request.
    pub(super) parts_in: [bool; REGIONS.len()],
}

pub(super) fn version(name: &str) -> Option<Version> {
    Version::parse(name).ok().filter(|v| v.to_string() == name)
}

impl Model {
    /// The fixture of docs/SEMANTICS.md.
    pub(super) fn new(allow_delete: bool) -> Self {
        let mut sugar = Project::default();
        sugar.staged.insert(
            Version::new(0, 9, 0),
            Staged::everywhere("SugarWater@0.9.0", OLD_BYTES, Metadata::new()),
        );
        let metadata = [("lang", "rust"), ("startifact:filename", "dist.txt")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        sugar.staged.insert(
            Version::new(1, 0, 0),
            Staged::everywhere("dist.txt", CURRENT_BYTES, metadata),
        );
        sugar.latest = Some(Version::new(1, 0, 0));
        sugar.latest_in = std::array::from_fn(|_| Some(Version::new(1, 0, 0)));
        Model {
            projects: [(PROJECT.to_string(), sugar)].into_iter().collect(),
            allow_delete,
            down: None,
            parts_in: [false; REGIONS.len()],
        }
    }

    /// The regions that answer.
    pub(super) fn up(&self) -> impl Iterator<Item = usize> + '_ {
        (0..REGIONS.len()).filter(|r| Some(*r) != self.down)
    }

    /// Whether a step names a version whose yank awaits its second run: what the mount
    /// shows of it meanwhile is not said.
    pub(super) fn yank_pending(&self, project: &str, name: &str) -> bool {
        let (Some(p), Some(v)) = (self.projects.get(project), version(name)) else {
            return false;
        };
        p.pending_yanks.contains_key(&v)
    }

    /// Whether a step naming this version is not run: its yank awaits its second run,
    /// the mount keeps it pinned though it is gone (see `Project::ghosts`), or it is
    /// staged but the mount could not pin it (fewer than a majority of all regions
    /// answer holding it: `mkdir` then makes a staging folder anyway, and the stage
    /// sorts it out with the regions).
    pub(super) fn skipped(&self, project: &str, name: &str) -> bool {
        let (Some(p), Some(v)) = (self.projects.get(project), version(name)) else {
            return false;
        };
        let unpinned = p.staged.get(&v).is_some_and(|s| s.pinned.is_none());
        p.pending_yanks.contains_key(&v) || p.ghosts.contains(&v) || unpinned
    }

    /// A region stops answering; `false` when one already is down (one at a time).
    pub(super) fn stop(&mut self, region: usize) -> bool {
        if self.down.is_some() {
            return false;
        }
        self.down = Some(region);
        true
    }

    /// The region that was down answers again; returns the yanks to run again (each
    /// moves `latest` off the yanked version in every region that still names it).
    ///
    /// A yank whose spool entry a repair ended `failed` meanwhile finds a staging file
    /// there (`true` beside it): `rm` discards it, the region that missed the yank
    /// keeps its copy, and the mount, which did not see its yank through, reads its
    /// listings and `latest` again only once its metadata TTL passed.
    pub(super) fn restart(&mut self) -> Vec<(String, Version, String, bool)> {
        self.down = None;
        let mut again = Vec::new();
        for (name, p) in &mut self.projects {
            for (v, file) in std::mem::take(&mut p.pending_yanks) {
                let discarded = p.staging.contains_key(&v);
                if let Some(staging) = p.staging.get_mut(&v) {
                    staging.file = None;
                    p.ghosts.insert(v.clone());
                } else {
                    let everyone: Vec<usize> = (0..REGIONS.len()).collect();
                    p.move_back(&v, &everyone, 0..REGIONS.len());
                    p.leftovers.remove(&v);
                    p.awaiting.remove(&v);
                    p.yanked_here.insert(v.clone());
                }
                p.yanked.insert(v.clone());
                again.push((name.clone(), v, file, discarded));
            }
        }
        again
    }

    pub(super) fn project(&self, name: &str) -> Option<&Project> {
        self.projects.get(name).filter(|p| p.visible())
    }

    pub(super) fn project_mut(&mut self, name: &str) -> &mut Project {
        self.projects.entry(name.to_string()).or_default()
    }

    /// The file name inside a version folder, if the folder and its file exist.
    pub(super) fn file_of(&self, project: &str, name: &str) -> Option<String> {
        let (p, v) = (self.project(project)?, version(name)?);
        match (p.staged.get(&v), p.staging.get(&v)) {
            (Some(staged), _) => Some(staged.file.clone()),
            (None, Some(staging)) => staging.file.as_ref().map(|f| f.name.clone()),
            _ => None,
        }
    }

    pub(super) fn folder_exists(&self, project: &str, name: &str) -> bool {
        let (Some(p), Some(v)) = (self.project(project), version(name)) else {
            return false;
        };
        p.staged.contains_key(&v) || p.staging.contains_key(&v)
    }

    pub(super) fn mkdir_project(&mut self, name: &str) -> Outcome {
        if crate::protocol::validate_project_name(name).is_err() {
            return Err(libc::EINVAL);
        }
        if self.project(name).is_some() {
            return Err(libc::EEXIST);
        }
        let p = self.project_mut(name);
        p.made_here = true;
        Ok(())
    }

    pub(super) fn mkdir_version(&mut self, project: &str, name: &str) -> Outcome {
        let Some(v) = version(name) else {
            return Err(if name == "latest" {
                libc::EEXIST
            } else {
                libc::EINVAL
            });
        };
        let p = self.project_mut(project);
        if p.staged.contains_key(&v) || p.staging.contains_key(&v) {
            return Err(libc::EEXIST);
        }
        p.staging.insert(v, Staging::default());
        Ok(())
    }

    pub(super) fn create(&mut self, project: &str, name: &str, file: &str) -> Outcome {
        let v = version(name).expect("a folder that exists");
        let Some(staging) = self.project_mut(project).staging.get_mut(&v) else {
            return Err(libc::EPERM); // a staged version is immutable
        };
        match &staging.file {
            Some(existing) if existing.name == file => return Err(libc::EEXIST),
            Some(_) => return Err(libc::EPERM), // one file per version
            None => {}
        }
        staging.file = Some(StagingFile {
            name: file.to_string(),
            open: true,
            ..StagingFile::default()
        });
        Ok(())
    }

    pub(super) fn open_file(&mut self, project: &str, name: &str) -> Option<&mut StagingFile> {
        let v = version(name)?;
        self.projects
            .get_mut(project)?
            .staging
            .get_mut(&v)?
            .file
            .as_mut()
            .filter(|f| f.open)
    }

    pub(super) fn write(&mut self, project: &str, name: &str, offset: u64, data: &[u8]) {
        let file = self.open_file(project, name).expect("an open file");
        let (start, end) = (offset as usize, offset as usize + data.len());
        if file.bytes.len() < end {
            file.bytes.resize(end, 0);
        }
        file.bytes[start..end].copy_from_slice(data);
    }

    /// The writer's close stages the file; `latest` moves only forward, in the regions
    /// that took it, and the mount then reads it again.
    pub(super) fn close(&mut self, project: &str, name: &str) -> Outcome {
        let v = version(name).expect("an open file");
        let held: BTreeSet<usize> = self.up().collect();
        let parts_in = self.parts_in;
        let p = self.project_mut(project);
        let mut staging = p.staging.remove(&v).expect("an open file");
        if held.len() < REGIONS.len() {
            // Kept to repair the regions that missed it from, as it was.
            let mut kept = staging.clone();
            kept.file.as_mut().expect("an open file").open = false;
            p.awaiting.insert(v.clone(), kept);
        } else {
            p.spool_dropped(&v);
        }
        let file = staging.file.take().expect("an open file");
        let in_parts = held
            .iter()
            .copied()
            .filter(|r| parts_in[*r] && !file.bytes.is_empty())
            .collect();
        let mut metadata = staging.attributes;
        metadata.extend(file.attributes);
        metadata.insert("startifact:filename".into(), file.name.clone());
        p.staged.insert(
            v.clone(),
            Staged {
                file: file.name,
                bytes: file.bytes,
                metadata,
                held: held.clone(),
                pinned: None,
                in_parts,
            },
        );
        for r in &held {
            if p.latest_in[*r].as_ref().is_none_or(|latest| *latest < v) {
                p.latest_in[*r] = Some(v.clone());
            }
        }
        p.yanked.remove(&v);
        p.yanked_here.remove(&v);
        // What the mount staged, it reads again.
        self.read_again(project);
        Ok(())
    }

    pub(super) fn setxattr(
        &mut self,
        project: &str,
        name: &str,
        on_file: bool,
        attribute: &str,
        value: &[u8],
        mode: SetMode,
    ) -> Outcome {
        let Some(key) = attribute.strip_prefix("user.") else {
            return Err(libc::EOPNOTSUPP);
        };
        if let Some(own) = key.strip_prefix("startifact:") {
            // The mount's own attributes, copied back: accepted and ignored.
            let shown = ["bucket", "key", "region", "etag", "filename"].contains(&own);
            return if shown { Ok(()) } else { Err(libc::EPERM) };
        }
        let Ok(value) = String::from_utf8(value.to_vec()) else {
            return Err(libc::EINVAL);
        };
        let v = version(name).expect("a folder that exists");
        let Some(staging) = self.project_mut(project).staging.get_mut(&v) else {
            return Err(libc::EPERM); // a staged version is immutable
        };
        let attributes = match (on_file, staging.file.as_mut()) {
            (true, Some(file)) => &mut file.attributes,
            _ => &mut staging.attributes,
        };
        match (mode, attributes.contains_key(key)) {
            (SetMode::Create, true) => Err(libc::EEXIST),
            (SetMode::Replace, false) => Err(libc::ENODATA),
            _ => {
                attributes.insert(key.to_string(), value);
                Ok(())
            }
        }
    }

    pub(super) fn link_latest(&mut self, project: &str, target: &str) -> Outcome {
        let Some(v) = version(target) else {
            return Err(libc::EINVAL);
        };
        let up: Vec<usize> = self.up().collect();
        let p = self.project_mut(project);
        if !p.staged.contains_key(&v) {
            return Err(libc::ENOENT); // a staging version is not staged yet
        }
        for r in &up {
            p.latest_in[*r] = Some(v.clone());
        }
        p.lagging |= up.len() < REGIONS.len();
        p.latest = Some(v);
        p.latest_unsaid = false;
        Ok(())
    }

    /// `rm` of the file of a version folder.
    pub(super) fn rm(&mut self, project: &str, name: &str) -> Outcome {
        let allow_delete = self.allow_delete;
        let v = version(name).expect("a folder that exists");
        let p = self.project_mut(project);
        if let Some(staging) = p.staging.get_mut(&v) {
            staging.file = None;
            return Ok(());
        }
        if !allow_delete {
            return Err(libc::EPERM);
        }
        let Some(staged) = p.staged.remove(&v) else {
            return Err(libc::ENOENT);
        };
        if p.latest.as_ref() == Some(&v) {
            p.latest = p.staged.keys().next_back().cloned();
        }
        let up: Vec<usize> = self.up().collect();
        self.project_mut(project)
            .move_back(&v, &up, up.iter().copied());
        if let Some(down) = self.down {
            // A yank must reach every region: EIO, done where it could be.
            let p = self.project_mut(project);
            if staged.held.contains(&down) {
                p.leftovers.insert(v.clone(), [down].into());
            }
            p.pending_yanks.insert(v, staged.file);
            return Err(libc::EIO);
        }
        let p = self.project_mut(project);
        p.awaiting.remove(&v);
        p.yanked.insert(v.clone());
        p.yanked_here.insert(v);
        // What the mount yanked, it reads again.
        self.read_again(project);
        Ok(())
    }

    pub(super) fn rmdir(&mut self, project: &str, name: &str) -> Outcome {
        let allow_delete = self.allow_delete;
        let Some(v) = version(name) else {
            return Err(libc::EPERM);
        };
        let p = self.project_mut(project);
        if let Some(staging) = p.staging.get(&v) {
            if staging.file.is_some() {
                return Err(libc::ENOTEMPTY);
            }
            p.staging.remove(&v);
            return Ok(());
        }
        if p.staged.contains_key(&v) {
            return Err(if allow_delete {
                libc::ENOTEMPTY
            } else {
                libc::EPERM
            });
        }
        if p.yanked_here.contains(&v) {
            return Ok(());
        }
        Err(libc::EPERM)
    }
}
