//! The write side of the mount through the real kernel: `mkdir` + `cp`/`rsync`/`dd`
//! stage to every region on close; refusals; killed writers; failed and partial
//! stages; large files with bounded memory; yanking with `--allow-delete`.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::IntoRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use semver::Version;
use startifact::protocol::Error;

use crate::support::files::{errno_of, getxattr, project, random_bytes};
use crate::support::mount::Mount;
use crate::support::world::{run, run_ok, World, WorldOptions, REGIONS};

fn v(text: &str) -> Version {
    Version::parse(text).unwrap()
}

/// `close(2)` of a file, with its errno (Rust's own drop ignores it).
fn close(file: std::fs::File) -> Result<(), i32> {
    let fd = file.into_raw_fd();
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

fn status(mount: &Mount) -> serde_json::Value {
    let text = std::fs::read_to_string(mount.staging_dir().join("status.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The entry of `status.json` for a version.
fn status_of(mount: &Mount, project: &str, version: &str) -> Option<serde_json::Value> {
    status(mount)["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["project"] == project && e["version"] == version)
        .cloned()
}

fn names_in(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The artifact as the protocol library downloads it (MD5 checked), and its metadata.
async fn downloaded(
    world: &World,
    project: &str,
    version: &str,
) -> (Vec<u8>, Vec<(String, String)>) {
    let session = world.session(true);
    let artifact = session.get(project, Some(&v(version))).await.unwrap();
    let path = world.scratch.path().join(format!("dl-{project}-{version}"));
    artifact.download_to_path(&path).await.unwrap();
    let metadata = artifact
        .metadata()
        .await
        .unwrap()
        .clone()
        .into_iter()
        .collect();
    (std::fs::read(&path).unwrap(), metadata)
}

/// Every region holds the artifact.
async fn in_every_region(world: &World, key: &str) -> bool {
    for (region, bucket) in &world.buckets {
        let store = world.raw_store(region);
        if store.head_object(bucket, key).await.is_err() {
            return false;
        }
    }
    true
}

async fn cp_rsync_and_dd_stage_to_every_region(world: World) {
    let p = project(&world, "Cp");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    run_ok(Command::new("mkdir").arg("-p").arg(&folder));
    assert_eq!(names_in(&mount.join(&p)), vec!["1.0.0"]);
    // Metadata on the folder; the file's own wins on a shared key.
    run_ok(
        Command::new("setfattr")
            .args(["-n", "user.lang", "-v", "rust"])
            .arg(&folder),
    );
    run_ok(
        Command::new("setfattr")
            .args(["-n", "user.team", "-v", "folder"])
            .arg(&folder),
    );
    let content = random_bytes(3 << 20, 7);
    let source = world.file("dist.tar.gz", &content);
    run_ok(
        Command::new("setfattr")
            .args(["-n", "user.team", "-v", "file"])
            .arg(&source),
    );
    run_ok(
        Command::new("cp")
            .arg("--preserve=xattr")
            .arg(&source)
            .arg(&folder),
    );

    // An ordinary, immutable version now, in every region.
    let artifact = folder.join("dist.tar.gz");
    assert_eq!(std::fs::read(&artifact).unwrap(), content);
    let mode = std::fs::metadata(&artifact).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o444);
    assert!(in_every_region(&world, &format!("{p}@1.0.0")).await);
    let (bytes, metadata) = downloaded(&world, &p, "1.0.0").await;
    assert_eq!(bytes, content);
    assert_eq!(
        metadata,
        vec![
            ("lang".to_string(), "rust".to_string()),
            ("startifact:filename".to_string(), "dist.tar.gz".to_string()),
            ("team".to_string(), "file".to_string()),
        ]
    );
    assert_eq!(getxattr(&artifact, "user.team", 64).unwrap(), b"file");
    assert_eq!(
        std::fs::read_link(mount.join(&format!("{p}/latest"))).unwrap(),
        Path::new("1.0.0")
    );

    // cp -a from a staged version: its metadata comes along; the attributes the mount
    // shows itself (bucket, key, region, etag, filename) are ignored, not refused.
    let copy = mount.join(&format!("{p}/1.4.0"));
    std::fs::create_dir(&copy).unwrap();
    run_ok(Command::new("cp").arg("-a").arg(&artifact).arg(&copy));
    assert_eq!(
        downloaded(&world, &p, "1.4.0").await,
        (content.clone(), metadata.clone())
    );

    // rsync in each mode: one file per version, no temporary left behind.
    let tree = world.dir("tree");
    let app = random_bytes(700_000, 9);
    std::fs::write(tree.join("app.bin"), &app).unwrap();
    for (i, mode) in ["", "--inplace", "--partial", "--delay-updates"]
        .iter()
        .enumerate()
    {
        let version = format!("1.1.{i}");
        let target = mount.join(&format!("{p}/{version}/"));
        let mut rsync = Command::new("rsync");
        rsync.arg("-a");
        if !mode.is_empty() {
            rsync.arg(mode);
        }
        run_ok(rsync.arg(format!("{}/", tree.display())).arg(&target));
        assert_eq!(names_in(&target), vec!["app.bin"], "rsync {mode}");
        let (bytes, metadata) = downloaded(&world, &p, &version).await;
        assert_eq!(bytes, app, "rsync {mode}");
        assert!(metadata.contains(&("startifact:filename".into(), "app.bin".into())));
    }

    // dd with large blocks, and fsync before close.
    let dd_folder = mount.join(&format!("{p}/1.2.0"));
    std::fs::create_dir(&dd_folder).unwrap();
    run_ok(
        Command::new("dd")
            .arg(format!("if={}", source.display()))
            .arg(format!("of={}", dd_folder.join("dd.bin").display()))
            .args(["bs=4M", "conv=fsync", "status=none"]),
    );
    assert_eq!(downloaded(&world, &p, "1.2.0").await.0, content);

    // latest only moves forward: a 1.x hotfix after 2.0.0 leaves it at 2.0.0.
    for version in ["2.0.0", "1.3.0"] {
        let folder = mount.join(&format!("{p}/{version}"));
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("hot.bin"), version.as_bytes()).unwrap();
    }
    assert_eq!(
        std::fs::read_link(mount.join(&format!("{p}/latest"))).unwrap(),
        Path::new("2.0.0")
    );

    // A shell redirection: open, dup2 onto stdout, close the original (not the last
    // descriptor: nothing staged), write, close stdout (the last: staged).
    let shell = mount.join(&format!("{p}/1.5.0"));
    std::fs::create_dir(&shell).unwrap();
    run_ok(Command::new("sh").arg("-c").arg(format!(
        "printf 'from the shell' > '{}/note.txt'",
        shell.display()
    )));
    assert_eq!(downloaded(&world, &p, "1.5.0").await.0, b"from the shell");

    // Another mount reads all of it; nothing is left in the spool.
    let second = Mount::start(&world, &[]);
    assert_eq!(
        names_in(&second.join(&p)),
        vec![
            "1.0.0", "1.1.0", "1.1.1", "1.1.2", "1.1.3", "1.2.0", "1.3.0", "1.4.0", "1.5.0",
            "2.0.0", "latest"
        ]
    );
    assert_eq!(
        std::fs::read(second.join(&format!("{p}/1.1.3/app.bin"))).unwrap(),
        app
    );
    assert_eq!(status(&mount)["versions"].as_array().unwrap().len(), 0);
}
on_both_backends!(cp_rsync_and_dd_stage_to_every_region);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_tool_reads_what_the_mount_staged() {
    let world = World::moto(WorldOptions::default()).await;
    let p = project(&world, "PyRead");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/0.1.0"));
    std::fs::create_dir_all(&folder).unwrap();
    run_ok(
        Command::new("setfattr")
            .args(["-n", "user.lang", "-v", "rust"])
            .arg(&folder),
    );
    let content = random_bytes(1 << 20, 3);
    run_ok(
        Command::new("cp")
            .arg(world.file("bundle.zip", &content))
            .arg(&folder),
    );

    let info = run_ok(world.python().args([&p, "--info"]));
    assert!(
        info.contains(&format!("The latest version of {p} is 0.1.0.")),
        "{info}"
    );
    assert!(info.contains("lang") && info.contains("rust"), "{info}");
    assert!(info.contains("startifact:filename = bundle.zip"), "{info}");
    let restored = world.dir("restored");
    run_ok(
        world
            .python()
            .args([&p, "0.1.0", "--download"])
            .arg(&restored)
            .arg("--filename"),
    );
    assert_eq!(std::fs::read(restored.join("bundle.zip")).unwrap(), content);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_immediate_and_clear() {
    let world = World::local(WorldOptions::default()).await;
    let p = project(&world, "No");
    run_ok(
        world
            .cli()
            .args([&p, "1.0.0", "--stage"])
            .arg(world.file("f", b"staged")),
    );
    let mount = Mount::start(&world, &[]);

    // Names are checked at mkdir.
    assert_eq!(
        errno_of(std::fs::create_dir(mount.join("bad name"))),
        libc::EINVAL
    );
    for bad in ["not-a-version", "01.0.0", "1.0"] {
        assert_eq!(
            errno_of(std::fs::create_dir(mount.join(&format!("{p}/{bad}")))),
            libc::EINVAL,
            "{bad}"
        );
    }
    assert_eq!(
        errno_of(std::fs::create_dir(mount.join(&format!("{p}/1.0.0")))),
        libc::EEXIST
    );
    assert_eq!(errno_of(std::fs::create_dir(mount.join(&p))), libc::EEXIST);
    // Files go in a version folder; staged versions take none.
    assert_eq!(
        errno_of(std::fs::write(mount.join(&format!("{p}/loose")), b"x")),
        libc::EPERM
    );
    assert_eq!(
        errno_of(std::fs::write(
            mount.join(&format!("{p}/1.0.0/second")),
            b"x"
        )),
        libc::EPERM
    );

    // One file per version: a second is refused while the first is open.
    let folder = mount.join(&format!("{p}/2.0.0"));
    std::fs::create_dir(&folder).unwrap();
    let mut first = std::fs::File::create(folder.join("a.bin")).unwrap();
    first.write_all(b"first").unwrap();
    assert_eq!(
        errno_of(std::fs::File::create(folder.join("b.bin"))),
        libc::EPERM
    );
    // Attributes: user keys under startifact: are Startifact's; the mount's own shown
    // attributes are ignored when copied back; other namespaces are not kept.
    let setfattr = |name: &str, path: &Path| {
        run(Command::new("setfattr")
            .args(["-n", name, "-v", "x"])
            .arg(path))
    };
    let (code, _, err) = setfattr("user.startifact:mine", &folder);
    assert!(
        code != 0 && err.contains("Operation not permitted"),
        "{err}"
    );
    assert_eq!(
        setfattr("user.startifact:bucket", &folder.join("a.bin")).0,
        0
    );
    assert_eq!(
        getxattr(&folder.join("a.bin"), "user.startifact:bucket", 64),
        Err(libc::ENODATA)
    );
    let (code, _, err) = setfattr("trusted.x", &folder);
    assert!(
        code != 0 && err.contains("Operation not supported"),
        "{err}"
    );
    // Those children inherited the open file and closed it at exec: not the writer's
    // close, so nothing was staged yet.
    let session = world.session(true);
    let artifact = session.get(&p, Some(&v("2.0.0"))).await.unwrap();
    assert!(
        artifact.locate().await.is_err(),
        "staged by a child's close"
    );
    assert_eq!(close(first), Ok(()));
    assert_eq!(std::fs::read(folder.join("a.bin")).unwrap(), b"first");
    // Now staged: immutable.
    assert_eq!(
        errno_of(OpenOptions::new().write(true).open(folder.join("a.bin"))),
        libc::EPERM
    );
    assert_ne!(setfattr("user.late", &folder).0, 0);

    // rmdir takes empty staging folders only.
    let busy = mount.join(&format!("{p}/4.0.0"));
    std::fs::create_dir(&busy).unwrap();
    let held = std::fs::File::create(busy.join("held.bin")).unwrap();
    assert_eq!(errno_of(std::fs::remove_dir(&busy)), libc::ENOTEMPTY);
    drop(held);
    let gone = mount.join(&format!("{p}/5.0.0"));
    std::fs::create_dir(&gone).unwrap();
    std::fs::remove_dir(&gone).unwrap();
    assert!(!gone.exists());

    // A staging project is this mount's, kept across restarts, removable while empty.
    let new_project = format!("{p}-new");
    std::fs::create_dir(mount.join(&new_project)).unwrap();
    let second = Mount::start(&world, &[]);
    assert!(!second.join(&new_project).exists());
    drop(second);
    let mount = Mount::restart(&world, &[], mount);
    assert!(mount.join(&new_project).is_dir());
    std::fs::remove_dir(mount.join(&new_project)).unwrap();
    assert!(!mount.join(&new_project).exists());

    // The spool's limit: a write past it is ENOSPC, and nothing is staged.
    let small = Mount::start(&world, &["--staging-size", "1M"]);
    let folder = small.join(&format!("{p}/6.0.0"));
    std::fs::create_dir(&folder).unwrap();
    let (code, _, err) = run(Command::new("cp")
        .arg(world.file("two.bin", &random_bytes(2 << 20, 2)))
        .arg(&folder));
    assert!(
        code != 0 && err.contains("No space left on device"),
        "{err}"
    );
    let session = world.session(true);
    let artifact = session.get(&p, Some(&v("6.0.0"))).await.unwrap();
    assert!(
        artifact.locate().await.is_err(),
        "an incomplete file was staged"
    );
    assert_eq!(
        status_of(&small, &p, "6.0.0").unwrap()["state"],
        "abandoned"
    );
    std::fs::remove_file(folder.join("two.bin")).unwrap();
    drop(small);

    // Every write on a read-only mount: EROFS.
    let read_only = Mount::start(&world, &["--read-only"]);
    assert_eq!(
        errno_of(std::fs::create_dir(read_only.join("Elsewhere"))),
        libc::EROFS
    );
    assert_eq!(
        errno_of(std::fs::create_dir(read_only.join(&format!("{p}/9.0.0")))),
        libc::EROFS
    );
}

/// Runs `cp` from a FIFO into `dest`, feeds it `bytes`, waits until the mount holds
/// them, and kills `cp` with `signal`.
fn kill_cp_mid_copy(dest: &Path, bytes: &[u8], signal: i32, scratch: &Path) {
    let fifo = scratch.join(format!("fifo-{signal}"));
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let mut cp = Command::new("cp")
        .arg(&fifo)
        .arg(dest)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut feed = OpenOptions::new().write(true).open(&fifo).unwrap();
    feed.write_all(bytes).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0) < bytes.len() as u64 {
        assert!(Instant::now() < deadline, "cp did not write");
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(cp.id() as i32, signal) };
    let status = cp.wait().unwrap();
    assert!(!status.success());
    drop(feed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writers_publish_nothing_and_keep_their_spool() {
    let world = World::local(WorldOptions::default()).await;
    let p = project(&world, "Kill");
    let mount = Mount::start(&world, &[]);
    let bytes = random_bytes(1 << 20, 5);
    for (version, signal) in [("1.0.0", libc::SIGINT), ("1.0.1", libc::SIGKILL)] {
        let folder = mount.join(&format!("{p}/{version}"));
        std::fs::create_dir_all(&folder).unwrap();
        kill_cp_mid_copy(
            &folder.join("part.bin"),
            &bytes,
            signal,
            world.scratch.path(),
        );
        let session = world.session(true);
        let artifact = session.get(&p, Some(&v(version))).await.unwrap();
        let err = artifact.locate().await.unwrap_err();
        assert!(matches!(err, Error::ArtifactNotFound { .. }), "{err}");
        let entry = status_of(&mount, &p, version).unwrap();
        assert_eq!(entry["state"], "abandoned");
        assert!(
            entry["reason"]
                .as_str()
                .unwrap()
                .contains(&format!("killed by signal {signal}")),
            "{entry}"
        );
        assert_eq!(std::fs::read(folder.join("part.bin")).unwrap(), bytes);
    }
    assert!(mount.log().contains("not staged, kept in the spool"));

    // The spool survives a restart of the daemon.
    let mount = Mount::restart(&world, &[], mount);
    let kept = mount.join(&format!("{p}/1.0.1/part.bin"));
    assert_eq!(std::fs::read(&kept).unwrap(), bytes);
    // rm discards one; closing the other again (touch) stages what it holds.
    std::fs::remove_file(mount.join(&format!("{p}/1.0.0/part.bin"))).unwrap();
    std::fs::remove_dir(mount.join(&format!("{p}/1.0.0"))).unwrap();
    run_ok(Command::new("touch").arg(&kept));
    assert_eq!(downloaded(&world, &p, "1.0.1").await.0, bytes);
    assert!(status_of(&mount, &p, "1.0.0").is_none());
    assert!(status_of(&mount, &p, "1.0.1").is_none());
    assert!(!mount.join(&format!("{p}/1.0.0")).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_staged_meanwhile_fails_the_close_with_eexist() {
    let world = World::moto(WorldOptions::default()).await;
    let p = project(&world, "Race");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let mut ours = std::fs::File::create(folder.join("ours.bin")).unwrap();
    ours.write_all(b"our bytes").unwrap();
    run_ok(
        world
            .python()
            .args([&p, "1.0.0", "--stage"])
            .arg(world.file("t", b"theirs")),
    );
    assert_eq!(close(ours), Err(libc::EEXIST));
    assert!(mount.log().contains("exists"), "{}", mount.log());

    // Kept: still in its folder, reported; closing again fails the same way.
    assert_eq!(
        std::fs::read(folder.join("ours.bin")).unwrap(),
        b"our bytes"
    );
    assert_eq!(status_of(&mount, &p, "1.0.0").unwrap()["state"], "failed");
    let again = OpenOptions::new()
        .write(true)
        .open(folder.join("ours.bin"))
        .unwrap();
    assert_eq!(close(again), Err(libc::EEXIST));
    // rm discards it; the Python tool's version is what everyone reads.
    std::fs::remove_file(folder.join("ours.bin")).unwrap();
    std::fs::remove_dir(&folder).unwrap();
    assert_eq!(
        std::fs::read(folder.join(format!("{p}@1.0.0"))).unwrap(),
        b"theirs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_partial_stages_keep_the_spool() {
    use crate::support::moto::Moto;
    use crate::support::proxy::{FaultProxy, Mode};
    let mut world = World::moto(WorldOptions::default()).await;
    let (west, london) = (
        FaultProxy::start(&Moto::shared().url),
        FaultProxy::start(&Moto::shared().url),
    );
    world
        .region_endpoints
        .insert("us-west-2".into(), west.url());
    world
        .region_endpoints
        .insert("eu-west-2".into(), london.url());
    let p = project(&world, "Partial");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let content = random_bytes(200_000, 8);
    let source = world.file("app.bin", &content);

    // Two of three regions down: no majority, close() fails with EIO, the file stays.
    west.set_mode(Mode::Refuse);
    london.set_mode(Mode::Refuse);
    let (code, _, err) = run(Command::new("cp").arg(&source).arg(&folder));
    assert!(code != 0 && err.contains("Input/output error"), "{err}");
    assert!(
        mount.log().contains("1 of 3 regions hold it"),
        "{}",
        mount.log()
    );
    assert_eq!(status_of(&mount, &p, "1.0.0").unwrap()["state"], "failed");
    assert_eq!(std::fs::read(folder.join("app.bin")).unwrap(), content);

    // One region back: closing again stages to a majority; the spool is kept for the
    // region that missed it, and reported.
    west.set_mode(Mode::Forward);
    run_ok(Command::new("touch").arg(folder.join("app.bin")));
    let entry = status_of(&mount, &p, "1.0.0").unwrap();
    assert_eq!(entry["state"], "awaiting-repair", "{entry}");
    assert!(
        entry["reason"].as_str().unwrap().contains("eu-west-2"),
        "{entry}"
    );
    assert_eq!(
        std::fs::read(mount.staging_dir().join(&p).join("1.0.0/data")).unwrap(),
        content
    );
    assert_eq!(std::fs::read(folder.join("app.bin")).unwrap(), content);
    london.set_mode(Mode::Forward);
    assert_eq!(downloaded(&world, &p, "1.0.0").await.0, content);
}

fn peak_resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_cp_stages_in_parts_with_bounded_memory() {
    let world = World::moto(WorldOptions::default()).await;
    let p = project(&world, "Big");
    let mount = Mount::start(&world, &["--part-size", "8M"]);
    let content = random_bytes(200 * 1000 * 1000, 21);
    let source = world.file("big.bin", &content);
    let folder = mount.join(&format!("{p}/1.0.0"));
    run_ok(Command::new("mkdir").arg("-p").arg(&folder));
    run_ok(Command::new("cp").arg(&source).arg(&folder));
    let peak = peak_resident_kib(mount.pid().unwrap());
    eprintln!("daemon peak resident memory after a 200 MB cp: {peak} KiB");
    // The bound is the behaviour: far below the file's 200 MB, whatever its size.
    assert!(peak < 160 * 1024, "daemon peak resident memory {peak} KiB");

    let md5 = hex::encode(Md5::digest(&content));
    let key = format!("{p}@1.0.0");
    for region in REGIONS {
        let info = world
            .raw_store(region)
            .head_object(&world.buckets[region], &key)
            .await
            .unwrap();
        assert_eq!(info.size, content.len() as u64);
        // Uploaded in parts, with the whole file's MD5 recorded beside the ETag.
        assert!(
            info.etag.as_deref().unwrap_or("").contains("-24"),
            "{:?}",
            info.etag
        );
        assert_eq!(info.known_md5().as_deref(), Some(md5.as_str()));
    }
    let (bytes, _) = downloaded(&world, &p, "1.0.0").await;
    assert!(bytes == content, "the staged artifact differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_delete_yanks_a_version_from_every_region() {
    let world = World::moto(WorldOptions::default()).await;
    let p = project(&world, "Yank");
    let file = world.file("f", b"yank me");
    run_ok(world.python().args([&p, "1.0.0", "--stage"]).arg(&file));
    run_ok(world.python().args([&p, "2.0.0", "--stage"]).arg(&file));
    let plain = Mount::start(&world, &[]);
    assert_eq!(
        errno_of(std::fs::remove_dir_all(plain.join(&format!("{p}/2.0.0")))),
        libc::EPERM
    );
    drop(plain);

    let mount = Mount::start(&world, &["--allow-delete"]);
    run_ok(
        Command::new("rm")
            .arg("-r")
            .arg(mount.join(&format!("{p}/2.0.0"))),
    );
    for region in REGIONS {
        let store = world.raw_store(region);
        for key in [format!("{p}@2.0.0"), format!("{p}@2.0.0/metadata")] {
            let err = store
                .head_object(&world.buckets[region], &key)
                .await
                .unwrap_err();
            assert!(err.is_not_found(), "{region} {key}: {err}");
        }
    }
    assert_eq!(names_in(&mount.join(&p)), vec!["1.0.0", "latest"]);
    assert_eq!(
        std::fs::read_link(mount.join(&format!("{p}/latest"))).unwrap(),
        Path::new("1.0.0")
    );
    let info = run_ok(world.python().args([&p, "--info"]));
    assert!(
        info.contains(&format!("The latest version of {p} is 1.0.0.")),
        "{info}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsync_temporary_files_upload_at_close_and_complete_at_rename() {
    use crate::support::moto::Moto;
    use crate::support::proxy::FaultProxy;
    let mut world = World::moto(WorldOptions::default()).await;
    let proxy = FaultProxy::start(&Moto::shared().url);
    for region in REGIONS {
        world.region_endpoints.insert(region.into(), proxy.url());
    }
    let p = project(&world, "Ahead");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let content = random_bytes(20 << 20, 4);
    let key = format!("{p}@1.0.0");
    let count = |method: &str, query: &str| {
        proxy
            .requests()
            .iter()
            .filter(|r| {
                r.method == method
                    && r.key_path().ends_with(&key)
                    && r.path_and_query.contains(query)
            })
            .count()
    };

    // As rsync does: written under a temporary name and closed (the parts go up now)...
    std::fs::write(folder.join(".app.bin.Xy12Ab"), &content).unwrap();
    assert_eq!(count("PUT", "partNumber="), 3 * REGIONS.len());
    assert_eq!(count("POST", "uploadId="), 0);
    let session = world.session(true);
    let artifact = session.get(&p, Some(&v("1.0.0"))).await.unwrap();
    assert!(
        artifact.locate().await.is_err(),
        "published before the rename"
    );

    // ...then renamed into place: the rename only completes the uploads.
    std::fs::rename(folder.join(".app.bin.Xy12Ab"), folder.join("app.bin")).unwrap();
    assert_eq!(
        count("PUT", "partNumber="),
        3 * REGIONS.len(),
        "parts sent again"
    );
    assert_eq!(count("POST", "uploadId="), REGIONS.len());
    let (bytes, metadata) = downloaded(&world, &p, "1.0.0").await;
    assert!(bytes == content, "the staged artifact differs");
    assert!(metadata.contains(&("startifact:filename".into(), "app.bin".into())));
}
