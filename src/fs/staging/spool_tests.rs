//! The spool on disk: what is kept, taken up at a start, and refused.

use super::*;

#[test]
fn state_survives_a_reopen_and_sizes_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, versions, _) = Spool::open(dir.path(), 100).unwrap();
    assert!(versions.is_empty());
    let mut state = VersionState::default();
    state.attributes.insert("lang".into(), "rust".into());
    spool.create_project("P").unwrap();
    spool.create_version("P", "1.0.0", &state).unwrap();
    let file = spool.open_data("P", "1.0.0", true).unwrap();
    spool.reserve(60).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &[7u8; 60], 0).unwrap();
    assert_eq!(spool.reserve(41).unwrap_err().errno(), libc::ENOSPC);
    state.file = Some(FileState {
        name: "dist.bin".into(),
        folder: None,
        attributes: BTreeMap::new(),
        mtime_seconds: 5,
        status: FileStatus::Failed {
            reason: "no region".into(),
        },
        by: Some(Caller::daemon()),
    });
    spool.save("P", "1.0.0", &state).unwrap();
    drop(spool);

    let (spool, versions, projects) = Spool::open(dir.path(), 100).unwrap();
    assert_eq!(projects, vec!["P".to_string()]);
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].state, state);
    assert_eq!(versions[0].size, 60);
    assert_eq!(spool.used(), 60);
    spool.remove_version("P", "1.0.0").unwrap();
    assert_eq!(spool.used(), 0);
}

#[test]
fn only_project_folders_made_by_mkdir_are_taken_up_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _, _) = Spool::open(dir.path(), 100).unwrap();
    spool.create_project("Made").unwrap();
    spool.create_project("Made").unwrap();
    spool
        .create_version("Made", "1.0.0", &VersionState::default())
        .unwrap();
    spool
        .create_version("Implicit", "1.0.0", &VersionState::default())
        .unwrap();
    std::fs::create_dir(dir.path().join("Older")).unwrap();
    drop(spool);

    let (spool, versions, mut projects) = Spool::open(dir.path(), 100).unwrap();
    projects.sort();
    assert_eq!(projects, ["Made", "Older"]);
    assert_eq!(versions.len(), 2, "{versions:?}");
    spool.remove_version("Made", "1.0.0").unwrap();
    spool.remove_project("Made").unwrap();
    assert!(!dir.path().join("Made").exists());
}

#[test]
fn links_in_the_spool_are_never_followed() {
    let scratch = tempfile::tempdir().unwrap();
    let target = scratch.path().join("target");
    std::fs::write(&target, b"precious").unwrap();
    let root = scratch.path().join("spool");
    let (spool, _, _) = Spool::open(&root, 100).unwrap();
    spool
        .create_version("P", "1.0.0", &VersionState::default())
        .unwrap();
    for link in ["status.json.new", "P/1.0.0/state.json.new", "P/1.0.0/data"] {
        std::os::unix::fs::symlink(&target, root.join(link)).unwrap();
    }
    spool.save("P", "1.0.0", &VersionState::default()).unwrap();
    spool.write_status(&[]);
    assert!(spool.open_data("P", "1.0.0", true).is_err());
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    assert!(std::fs::read(root.join("status.json")).is_ok());
}

#[test]
fn a_repair_saved_by_an_older_daemon_is_read_with_its_reason() {
    let old = r#"{"name": "a.bin", "state": "awaiting-repair", "failed": "c: down"}"#;
    let file: FileState = serde_json::from_str(old).unwrap();
    let FileStatus::AwaitingRepair(repair) = file.status else {
        panic!("{:?}", file.status);
    };
    assert_eq!(repair.last_error, "c: down");
    assert!(repair.regions.is_empty() && repair.attempts == 0);
}

#[test]
fn a_stage_in_flight_and_a_conflict_survive_a_reopen() {
    for status in [
        FileStatus::Staging,
        FileStatus::Conflict {
            regions: vec!["c".into()],
            reason: "other bytes".into(),
        },
    ] {
        let file = FileState {
            name: "a.bin".into(),
            folder: None,
            attributes: BTreeMap::new(),
            mtime_seconds: 1,
            by: None,
            status: status.clone(),
        };
        let text = serde_json::to_string(&file).unwrap();
        let back: FileState = serde_json::from_str(&text).unwrap();
        assert_eq!(back.status, status, "{text}");
    }
}
