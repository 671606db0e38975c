//! The comparison after every step: every folder's listing, every file's size and
//! bytes, every attribute listed and its value (the ETag of the region a version is
//! pinned from among them), where `latest` points, what each region's store holds of
//! every version and names as each project's `latest`, and the spool entries
//! status.json shows awaiting repair or failed.

use super::*;

async fn listing(real: &Real, inode: u64) -> Result<Vec<String>, TestCaseError> {
    let entries = real
        .f
        .fs
        .readdir(inode)
        .await
        .map_err(|e| TestCaseError::fail(format!("readdir {inode}: {e}")))?;
    Ok(entries.into_iter().map(|e| e.name).collect())
}

async fn bytes_of(real: &Real, path: &str) -> Result<Vec<u8>, TestCaseError> {
    let fail = |e: crate::fs::FsError| TestCaseError::fail(format!("{path}: {e}"));
    let inode = real.inode(path).await.map_err(fail)?;
    let opened = real
        .f
        .fs
        .open(inode, false, false, &real.f.caller)
        .await
        .map_err(fail)?;
    let read = real.f.fs.read(opened.handle, 0, 1 << 20).await;
    real.f.fs.release(opened.handle);
    Ok(read.map_err(fail)?.to_vec())
}

/// Every attribute listed, with its value.
async fn attributes_of(real: &Real, path: &str) -> Result<Metadata, TestCaseError> {
    let fail = |e: crate::fs::FsError| TestCaseError::fail(format!("{path}: {e}"));
    let inode = real.inode(path).await.map_err(fail)?;
    let XattrReply::Data(list) = real.f.fs.listxattr(inode, 1 << 16).await.map_err(fail)? else {
        return Err(TestCaseError::fail("listxattr answered a size"));
    };
    let mut attributes = Metadata::new();
    for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let value = match real.f.fs.getxattr(inode, &name, 1 << 16).await {
            Ok(XattrReply::Data(value)) => String::from_utf8_lossy(&value).into_owned(),
            other => return Err(TestCaseError::fail(format!("{path} {name}: {other:?}"))),
        };
        prop_assert!(
            attributes.insert(name.clone(), value).is_none(),
            "{} lists {} twice",
            path,
            name
        );
    }
    Ok(attributes)
}

fn user(metadata: &Metadata) -> Metadata {
    metadata
        .iter()
        .map(|(k, v)| (format!("user.{k}"), v.clone()))
        .collect()
}

/// The region a staged version is served from: the first region, in the session's
/// order, of those holding it that answered when the mount first looked it up, once
/// more than half of all regions answered holding it (until then, a lookup is EIO).
/// And the version listings the mount reads at this look.
fn pin(model: &mut Model) {
    let up: Vec<usize> = model.up().collect();
    for project in model.projects.values_mut() {
        for staged in project.staged.values_mut() {
            let holding: Vec<usize> = up
                .iter()
                .copied()
                .filter(|r| staged.held.contains(r))
                .collect();
            if staged.pinned.is_none() && holding.len() >= MAJORITY {
                staged.pinned = holding.first().copied();
            }
        }
        if project.listing.is_none() {
            project.listing = Some(project.listed(&up));
        }
    }
}

/// Each region's store: every staged version in the regions that hold it (with its
/// bytes), none in the others; a yanked version nowhere but in the regions that were
/// down during its yank.
async fn compare_stores(real: &Real, model: &Model) -> Result<(), TestCaseError> {
    for (name, project) in &model.projects {
        for (v, staged) in &project.staged {
            let key = format!("{name}@{v}");
            let expected: Vec<&str> = model
                .up()
                .filter(|r| staged.held.contains(r))
                .map(|r| REGIONS[r])
                .collect();
            let holding = real.f.regions_holding(&key).await;
            prop_assert_eq!(&holding, &expected, "regions holding {}", key);
            for region in holding {
                let bytes = real.f.object(region, &key).await;
                prop_assert_eq!(&bytes, &staged.bytes, "{} in {}", key, region);
            }
        }
        if crate::protocol::validate_project_name(name).is_ok() {
            for r in model.up() {
                let found = real.f.latest_in(REGIONS[r], name).await;
                prop_assert_eq!(
                    &found,
                    &project.latest_in[r],
                    "latest of {} in {}",
                    name,
                    REGIONS[r]
                );
            }
        }
        for v in project
            .yanked
            .difference(&project.staged.keys().cloned().collect())
        {
            let key = format!("{name}@{v}");
            let left = project.leftovers.get(v);
            let expected: Vec<&str> = model
                .up()
                .filter(|r| left.is_some_and(|l| l.contains(r)))
                .map(|r| REGIONS[r])
                .collect();
            let holding = real.f.regions_holding(&key).await;
            prop_assert_eq!(&holding, &expected, "yanked {} held", key);
        }
    }
    Ok(())
}

/// The ETag of a copy of `bytes`: its MD5 when sent in one request, else the MD5 of
/// its parts' MD5s and their number (a file under the part size is one part).
fn etag_of(bytes: &[u8], in_parts: bool) -> String {
    use crate::digest::Md5;
    let md5 = Md5::digest(bytes);
    match in_parts {
        false => format!("\"{}\"", hex::encode(md5)),
        true => format!("\"{}-1\"", hex::encode(Md5::digest(md5))),
    }
}

/// The spool entries status.json shows awaiting repair, failed or in conflict: this
/// mount's versions staged while a region was down, until every region holds them,
/// and those found yanked at their repair (the reason says so); never a conflict,
/// whatever way each region was sent its copy.
fn compare_status(real: &Real, model: &Model) -> Result<(), TestCaseError> {
    let Some(staging) = &real.f.staging else {
        return Ok(());
    };
    let path = staging.dir().join("status.json");
    let text = std::fs::read(&path).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let status: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let mut shown = BTreeMap::new();
    for entry in status["versions"].as_array().into_iter().flatten() {
        let state = entry["state"].as_str().unwrap_or_default();
        if ["awaiting-repair", "failed", "conflict"].contains(&state) {
            let reason = entry["reason"].as_str().unwrap_or_default().to_string();
            let (project, version) = (&entry["project"], &entry["version"]);
            let key = format!(
                "{}@{}",
                project.as_str().unwrap_or_default(),
                version.as_str().unwrap_or_default()
            );
            shown.insert(key, (state.to_string(), reason));
        }
    }
    let mut expected = BTreeMap::new();
    for (name, project) in &model.projects {
        for v in project.awaiting.keys() {
            expected.insert(format!("{name}@{v}"), "awaiting-repair");
        }
        for (v, staging) in &project.staging {
            if staging.file.as_ref().is_some_and(|f| f.failed) {
                expected.insert(format!("{name}@{v}"), "failed");
            }
        }
    }
    let states: BTreeMap<&String, &str> = shown.iter().map(|(k, (s, _))| (k, s.as_str())).collect();
    let expected: BTreeMap<&String, &str> = expected.iter().map(|(k, s)| (k, *s)).collect();
    prop_assert_eq!(states, expected, "status.json");
    for (key, (state, reason)) in &shown {
        if state == "failed" {
            prop_assert!(
                reason.contains("it was yanked") && reason.contains("the file is kept"),
                "{} failed: {}",
                key,
                reason
            );
        }
    }
    Ok(())
}

pub(super) async fn compare(real: &Real, model: &mut Model) -> Result<(), TestCaseError> {
    pin(model);
    // The mount keeps a `latest` it read, for its TTL; one it found absent, or could
    // not read, it reads again at every look.
    let unheld: Vec<String> = model
        .projects
        .iter()
        .filter(|(_, p)| p.latest.is_none() || p.latest_unsaid)
        .map(|(name, _)| name.clone())
        .collect();
    for name in unheld {
        model.read_latest_again(&name);
    }
    compare_stores(real, model).await?;
    compare_status(real, model)?;
    let model = &*model;
    let projects: Vec<String> = model
        .projects
        .iter()
        .filter(|(_, p)| p.visible())
        .map(|(name, _)| name.clone())
        .collect();
    // Nor is whether a project whose yank failed is listed (its `latest` may be held
    // by a majority still), or one whose `latest` could not be read: the root is
    // compared without those.
    let unsettled: BTreeSet<&String> = model
        .projects
        .iter()
        .filter(|(_, p)| !p.pending_yanks.is_empty() || p.latest_unsaid)
        .map(|(name, _)| name)
        .collect();
    let settled = |names: Vec<String>| -> Vec<String> {
        names
            .into_iter()
            .filter(|n| !unsettled.contains(n))
            .collect()
    };
    prop_assert_eq!(
        settled(listing(real, ROOT_INODE).await?),
        settled(projects.clone()),
        "ls /"
    );
    for name in &projects {
        let project = &model.projects[name];
        let inode = match real.inode(name).await {
            Ok(inode) => inode,
            Err(_) if unsettled.contains(name) => continue,
            Err(e) => return Err(TestCaseError::fail(format!("{name}: {e}"))),
        };
        // What the mount shows of a version whose yank failed, and of `latest`, until
        // the yank is run again is not said; nor `latest` it could not read.
        let unsettled = !project.pending_yanks.is_empty();
        let latest_said = !unsettled && !project.latest_unsaid;
        let mut expected: Vec<String> = (project.in_store() && latest_said)
            .then(|| "latest".into())
            .into_iter()
            .collect();
        let kept = project.listing.as_ref().expect("read by `pin`");
        let versions: BTreeSet<&Version> = kept.iter().chain(project.staging.keys()).collect();
        // A version whose yank awaits its second run may be back as a staging folder
        // meanwhile (its spool entry failed at a repair): not said either.
        let said = |entry: &String| {
            (latest_said || entry != "latest") && !(unsettled && model.yank_pending(name, entry))
        };
        expected.extend(versions.iter().rev().map(|v| v.to_string()));
        expected.retain(said);
        let mut listed = listing(real, inode).await?;
        listed.retain(said);
        prop_assert_eq!(listed, expected, "ls {}", name);
        if latest_said {
            let target = match real.inode(&format!("{name}/latest")).await {
                Ok(inode) => real.f.fs.readlink(inode).await.map_err(|e| e.errno()),
                Err(e) => Err(e.errno()),
            };
            let expected = project
                .latest
                .as_ref()
                .map(|v| v.to_string())
                .ok_or(libc::ENOENT);
            prop_assert_eq!(target, expected, "readlink {}/latest", name);
        }
        for (v, staged) in &project.staged {
            let folder = format!("{name}/{v}");
            if staged.pinned.is_none() {
                let found = real.inode(&folder).await.map(|_| ());
                let found = found.map_err(|e| e.errno());
                prop_assert_eq!(found, Err(libc::EIO), "lookup {} (too few hold it)", folder);
                continue;
            }
            let folder_inode = real
                .inode(&folder)
                .await
                .map_err(|e| TestCaseError::fail(format!("{folder}: {e}")))?;
            prop_assert_eq!(
                listing(real, folder_inode).await?,
                vec![staged.file.clone()],
                "ls {}",
                folder
            );
            let file = format!("{folder}/{}", staged.file);
            prop_assert_eq!(
                bytes_of(real, &file).await?,
                staged.bytes.clone(),
                "cat {}",
                file
            );
            let mut shown = user(&staged.metadata);
            shown.insert(
                "user.startifact:bucket".into(),
                crate::protocol::setup::LOCAL_BUCKET.into(),
            );
            shown.insert("user.startifact:key".into(), format!("{name}@{v}"));
            let pinned = staged.pinned.map_or("none", |r| REGIONS[r]);
            shown.insert("user.startifact:region".into(), pinned.into());
            // The ETag of the copy in the region it is pinned from.
            let in_parts = staged.pinned.is_some_and(|r| staged.in_parts.contains(&r));
            shown.insert(
                "user.startifact:etag".into(),
                etag_of(&staged.bytes, in_parts),
            );
            for path in [&folder, &file] {
                let listed = attributes_of(real, path).await?;
                prop_assert_eq!(&listed, &shown, "getfattr -d {}", path);
            }
        }
        for (v, staging) in &project.staging {
            let folder = format!("{name}/{v}");
            let folder_inode = real
                .inode(&folder)
                .await
                .map_err(|e| TestCaseError::fail(format!("{folder}: {e}")))?;
            let names: Vec<String> = staging.file.iter().map(|f| f.name.clone()).collect();
            prop_assert_eq!(listing(real, folder_inode).await?, names, "ls {}", folder);
            prop_assert_eq!(
                attributes_of(real, &folder).await?,
                user(&staging.attributes),
                "getfattr -d {}",
                folder
            );
            if let Some(file) = &staging.file {
                let path = format!("{folder}/{}", file.name);
                prop_assert_eq!(
                    bytes_of(real, &path).await?,
                    file.bytes.clone(),
                    "cat {}",
                    path
                );
                let mut merged = staging.attributes.clone();
                merged.extend(file.attributes.clone());
                prop_assert_eq!(
                    attributes_of(real, &path).await?,
                    user(&merged),
                    "getfattr -d {}",
                    path
                );
            }
        }
    }
    Ok(())
}
