//! The comparison after every step: every folder's listing, every file's size and
//! bytes, every attribute listed and its value, where `latest` points, and what each
//! region's store holds of every version and names as each project's `latest`.

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
/// order, of those holding it that answered when the mount first looked it up.
fn pin(model: &mut Model) {
    let up: BTreeSet<usize> = model.up().collect();
    for project in model.projects.values_mut() {
        for staged in project.staged.values_mut() {
            if staged.pinned.is_none() {
                staged.pinned = staged.held.intersection(&up).next().copied();
            }
        }
    }
}

/// Each region's store: every staged version in the regions that hold it (with its
/// bytes), none in the others; a yanked version nowhere.
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
            let holding = real.f.regions_holding(&key).await;
            prop_assert!(holding.is_empty(), "yanked {} held in {:?}", key, holding);
        }
    }
    Ok(())
}

pub(super) async fn compare(real: &Real, model: &mut Model) -> Result<(), TestCaseError> {
    pin(model);
    compare_stores(real, model).await?;
    let model = &*model;
    let projects: Vec<String> = model
        .projects
        .iter()
        .filter(|(_, p)| p.visible())
        .map(|(name, _)| name.clone())
        .collect();
    // Nor is whether a project whose yank failed is listed (its `latest` may be held
    // by a majority still): the root is compared without those.
    let unsettled: BTreeSet<&String> = model
        .projects
        .iter()
        .filter(|(_, p)| !p.pending_yanks.is_empty())
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
        // the yank is run again is not said.
        let unsettled = !project.pending_yanks.is_empty();
        let mut expected: Vec<String> = (project.in_store() && !unsettled)
            .then(|| "latest".into())
            .into_iter()
            .collect();
        let versions: BTreeSet<&Version> = project
            .staged
            .keys()
            .chain(project.staging.keys())
            .collect();
        expected.extend(versions.iter().rev().map(|v| v.to_string()));
        let mut listed = listing(real, inode).await?;
        listed
            .retain(|entry| !(unsettled && (entry == "latest" || model.yank_pending(name, entry))));
        prop_assert_eq!(listed, expected, "ls {}", name);
        if !unsettled {
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
            for path in [&folder, &file] {
                let mut listed = attributes_of(real, path).await?;
                let etag = listed.remove("user.startifact:etag").unwrap_or_default();
                prop_assert_eq!(etag.len(), 34, "{} etag {:?}", path, etag);
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
