//! A staging file in flight: every change to it (resize, rename, unlink, metadata on it
//! or its version folder) from a process outside its writer's tree is EACCES; the stage
//! runs at the close of the last descriptor of any kind the writer holds; and the safe
//! pattern for scripts (copy to a hidden name, then `mv` it into place) stages once, at
//! the rename, while the hidden file alone never stages.
//!
//! The writer is a `bash` this test starts; the test process itself (the writer's
//! parent, not its descendant) and a sibling `sh -c` are the other processes.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::support::files::{errno_of, project, removexattr, setxattr, truncate};
use crate::support::mount::Mount;
use crate::support::staging::{close, in_any_region, object_in, staged_metadata, status_of};
use crate::support::world::{run, run_ok, World, REGIONS};

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display())
}

/// A `bash` that opens `file` for writing, writes `first`, waits for `go_on` to exist,
/// writes `then` and closes it; returned once its first bytes are in.
fn writer_holding(file: &Path, first: &str, go_on: &Path, then: &str) -> Child {
    let writer = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "exec 3>{f}; printf '{first}' >&3; until [ -e {g} ]; do sleep 0.05; done; printf '{then}' >&3; exec 3>&-",
            f = quoted(file),
            g = quoted(go_on)
        ))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(file).map(|m| m.len()).unwrap_or(0) < first.len() as u64 {
        assert!(Instant::now() < deadline, "the writer never wrote");
        std::thread::sleep(Duration::from_millis(20));
    }
    writer
}

async fn changes_from_outside_the_writers_tree_are_eacces(world: World) {
    let p = project(&world, "Flight");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    setxattr(&folder, "user.team", b"core").unwrap();
    let file = folder.join("dist.txt");
    let go_on = world.scratch.path().join("go-on");
    let mut writer = writer_holding(&file, "the ", &go_on, "bytes");

    // Another process (a sibling of the writer): what was reported, refused.
    let (code, _, stderr) = run(Command::new("sh").arg("-c").arg(format!(
        "truncate -s 2M {f} || exit 7; mv {f} {f}.moved",
        f = quoted(&file)
    )));
    assert_eq!(code, 7, "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    // The test process is the writer's parent, not in its tree either.
    assert_eq!(truncate(&file, 2 << 20), Err(libc::EACCES));
    let renamed = folder.join("other.txt");
    assert_eq!(errno_of(std::fs::rename(&file, &renamed)), libc::EACCES);
    assert_eq!(errno_of(std::fs::remove_file(&file)), libc::EACCES);
    assert_eq!(setxattr(&file, "user.lang", b"evil"), Err(libc::EACCES));
    assert_eq!(setxattr(&folder, "user.lang", b"evil"), Err(libc::EACCES));
    assert_eq!(removexattr(&folder, "user.team"), Err(libc::EACCES));
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 4);
    assert!(
        mount.log().contains("not in that process tree"),
        "the refusal is logged with why:\n{}",
        mount.log()
    );

    std::fs::write(&go_on, b"").unwrap();
    assert!(writer.wait().unwrap().success());
    let key = format!("{p}@1.0.0");
    for region in REGIONS {
        let bytes = object_in(&world, region, &key).await;
        assert_eq!(bytes.as_deref(), Some(&b"the bytes"[..]), "{region}");
    }
    let metadata = staged_metadata(&world, &p, "1.0.0").await;
    assert_eq!(metadata.get("team").map(String::as_str), Some("core"));
    assert!(!metadata.contains_key("lang"), "{metadata:?}");
}
on_both_backends!(changes_from_outside_the_writers_tree_are_eacces);

async fn a_writer_holding_a_read_descriptor_stages_at_its_last_close(world: World) {
    let p = project(&world, "ReadToo");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("app.bin");
    let content = b"written with a reader open".to_vec();
    let writing = std::fs::File::create(&path).unwrap();
    let reading = std::fs::File::open(&path).unwrap();
    std::io::Write::write_all(&mut &writing, &content).unwrap();

    assert_eq!(close(writing), Ok(()));
    let key = format!("{p}@1.0.0");
    assert!(!in_any_region(&world, &key).await, "a descriptor remains");
    let entry = status_of(&mount, &p, "1.0.0").unwrap();
    assert_eq!(entry["state"], "writing", "{entry}");
    assert_eq!(entry["size"], content.len(), "{entry}");

    assert_eq!(close(reading), Ok(()), "{}", mount.log());
    for region in REGIONS {
        let bytes = object_in(&world, region, &key).await;
        assert_eq!(bytes.as_deref(), Some(&content[..]), "{region}");
    }
    assert!(status_of(&mount, &p, "1.0.0").is_none());
}
on_both_backends!(a_writer_holding_a_read_descriptor_stages_at_its_last_close);

async fn a_hidden_name_then_mv_stages_once_at_the_rename(world: World) {
    let p = project(&world, "Hidden");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let source = world.file("dist.tar.gz", b"a whole build\n");
    let (hidden, placed) = (folder.join(".dist.tar.gz"), folder.join("dist.tar.gz"));

    // The copy alone (or a script that fails before its `mv`) never stages.
    run_ok(Command::new("cp").arg(&source).arg(&hidden));
    let key = format!("{p}@1.0.0");
    assert!(!in_any_region(&world, &key).await);
    let entry = status_of(&mount, &p, "1.0.0").unwrap();
    assert_eq!(entry["state"], "awaiting-rename", "{entry}");

    run_ok(Command::new("mv").arg(&hidden).arg(&placed));
    for region in REGIONS {
        let bytes = object_in(&world, region, &key).await;
        assert_eq!(bytes.as_deref(), Some(&b"a whole build\n"[..]), "{region}");
    }
    assert_eq!(
        std::fs::read_link(mount.join(&format!("{p}/latest"))).unwrap(),
        Path::new("1.0.0")
    );
    let log = mount.log();
    assert_eq!(log.matches("staged: ").count(), 1, "{log}");
}
on_both_backends!(a_hidden_name_then_mv_stages_once_at_the_rename);
