//! What the daemon keeps on disk is its own: the staging and cache folders are private
//! (`0700` folders, `0600` files, refused when another user could write to them or move
//! them), no planted link is ever followed, the log is opened the same way, and a
//! cached copy is checked against the store, never against its own record.
//!
//! Another user is played by a system user (`startifact-test`, added when missing) and
//! `setpriv`; the daemon runs as root, as it usually does.

use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use md5::{Digest, Md5};

use crate::support::files::project;
use crate::support::mount::{daemon_command, Mount};
use crate::support::unique_id;
use crate::support::world::{run, run_ok, World, WorldOptions};

const OTHER_USER: &str = "startifact-test";

/// The other user's (uid, gid), added as a system user the first time.
fn other_user() -> (u32, u32) {
    static USER: OnceLock<(u32, u32)> = OnceLock::new();
    *USER.get_or_init(|| {
        let id = |flag: &str| {
            Command::new("id")
                .arg(flag)
                .arg(OTHER_USER)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        };
        if id("-u").is_none() {
            run_ok(
                Command::new("useradd")
                    .args(["--system", "--user-group", "--no-create-home"])
                    .args(["--shell", "/usr/sbin/nologin", OTHER_USER]),
            );
        }
        (id("-u").expect("uid"), id("-g").expect("gid"))
    })
}

/// A command run as the other user, with no supplementary groups.
fn as_other(program: &str) -> Command {
    let (uid, gid) = other_user();
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .args(["--clear-groups", "--", program]);
    command
}

/// `ln -s target link`, as the other user.
fn plant_as_other(target: &Path, link: &Path) {
    run_ok(as_other("ln").arg("-s").arg(target).arg(link));
    let (uid, _) = other_user();
    assert_eq!(std::fs::symlink_metadata(link).unwrap().uid(), uid);
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A file only root may read or write, with what it held.
struct Secret {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Secret {
    fn new(dir: &Path, name: &str) -> Secret {
        let path = dir.join(name);
        let bytes = format!("root only: {name}\n").into_bytes();
        std::fs::write(&path, &bytes).unwrap();
        chmod(&path, 0o600);
        Secret { path, bytes }
    }

    fn assert_untouched(&self) {
        assert_eq!(
            std::fs::read(&self.path).unwrap(),
            self.bytes,
            "{} was written through a link",
            self.path.display()
        );
        assert_eq!(mode(&self.path), 0o600);
        assert_eq!(std::fs::metadata(&self.path).unwrap().uid(), 0);
    }
}

/// A folder the other user can reach (the worlds' scratch folders are root's `0700`).
fn open_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    dir
}

/// Starts the daemon in the background as a user would; it must refuse. Returns what
/// it said.
fn refused(world: &World, args: &[&OsStr]) -> String {
    let mountpoint = world.dir(&format!("mnt-{}", unique_id()));
    let (code, stdout, stderr) = run(daemon_command(world).args(args).arg(&mountpoint));
    if code == 0 {
        let _ = Command::new("fusermount3")
            .arg("-u")
            .arg(&mountpoint)
            .status();
        panic!("the daemon accepted {args:?}\n{stdout}");
    }
    assert!(stderr.starts_with("startifact-fs: "), "{stderr}");
    stderr
}

/// The cache's name for the artifact of `project@version`, from its ETag in the store.
async fn cache_entry(world: &World, project: &str, version: &str) -> String {
    let (region, bucket) = world.buckets.iter().next().unwrap();
    let key = format!("{project}@{version}");
    let info = world
        .raw_store(region)
        .head_object(bucket, &key)
        .await
        .unwrap();
    // Named by the key and the content's MD5 (the same whichever region's copy, with
    // whatever ETag, the mount pinned), else the ETag.
    let content = match info.known_md5() {
        Some(md5) => format!("md5:{md5}"),
        None => info.etag.unwrap_or_default(),
    };
    let mut hasher = Md5::new();
    hasher.update(key.as_bytes());
    hasher.update([0]);
    hasher.update(content.as_bytes());
    hex::encode(hasher.finalize())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_others_can_write_to_are_refused_and_their_links_never_followed() {
    let world = World::local(WorldOptions::default()).await;
    let p = project(&world, "Shared");
    let file = world.file("f", b"shared");
    run_ok(world.cli().args([&p, "1.0.0", "--stage"]).arg(&file));
    let open = open_folder();
    let shared = open.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o777);
    let secrets: Vec<Secret> = ["status", "part", "log"]
        .iter()
        .map(|name| Secret::new(world.scratch.path(), name))
        .collect();

    // A staging folder others can write to, a link planted in it by another user.
    let staging = shared.join("staging");
    std::fs::create_dir(&staging).unwrap();
    chmod(&staging, 0o777);
    plant_as_other(&secrets[0].path, &staging.join("status.json.new"));
    let said = refused(&world, &["--staging-dir".as_ref(), staging.as_ref()]);
    assert!(said.contains("refusing the staging folder"), "{said}");
    assert!(said.contains("writable by its group or others"), "{said}");

    // The same for a cache folder, and the `.part` of a version the mount would fetch.
    let cache = shared.join("cache");
    std::fs::create_dir(&cache).unwrap();
    chmod(&cache, 0o777);
    let entry = cache_entry(&world, &p, "1.0.0").await;
    plant_as_other(&secrets[1].path, &cache.join(format!("{entry}.part")));
    let said = refused(
        &world,
        &[
            "--read-only".as_ref(),
            "--cache-dir".as_ref(),
            cache.as_ref(),
        ],
    );
    assert!(said.contains("refusing the cache folder"), "{said}");

    // Group-writable is refused too.
    let group = world.scratch.path().join("group-writable");
    std::fs::create_dir(&group).unwrap();
    chmod(&group, 0o770);
    let said = refused(&world, &["--staging-dir".as_ref(), group.as_ref()]);
    assert!(
        said.contains("writable by its group or others (mode 0770)"),
        "{said}"
    );

    // A folder of the other user's, in a folder like /tmp.
    let sticky = open.path().join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    chmod(&sticky, 0o1777);
    let theirs = sticky.join("theirs");
    run_ok(as_other("mkdir").args(["-m", "700"]).arg(&theirs));
    let said = refused(&world, &["--staging-dir".as_ref(), theirs.as_ref()]);
    let (uid, _) = other_user();
    assert!(
        said.contains(&format!(
            "is owned by user {uid}, not by the daemon's user 0"
        )),
        "{said}"
    );

    // A private folder, in a folder others can write to without the sticky bit: they
    // could move it away and put their own in its place.
    let private = shared.join("private");
    std::fs::create_dir(&private).unwrap();
    chmod(&private, 0o700);
    let said = refused(&world, &["--staging-dir".as_ref(), private.as_ref()]);
    assert!(
        said.contains("which is writable by its group or others without the sticky bit"),
        "{said}"
    );
    let said = refused(
        &world,
        &["--staging-dir".as_ref(), shared.join("new").as_ref()],
    );
    assert!(said.contains("without the sticky bit"), "{said}");
    assert!(!shared.join("new").exists(), "nothing is created there");

    // A link to the staging folder that another user made is not followed either.
    let mine = world.dir("mine");
    chmod(&mine, 0o700);
    plant_as_other(&mine, &sticky.join("staging"));
    let said = refused(
        &world,
        &["--staging-dir".as_ref(), sticky.join("staging").as_ref()],
    );
    assert!(said.contains("is a link owned by user"), "{said}");

    // The log, in a folder like /tmp where another user planted a link at its name.
    let log = sticky.join("daemon.log");
    plant_as_other(&secrets[2].path, &log);
    let said = refused(
        &world,
        &[
            "--staging-dir".as_ref(),
            world.scratch.path().join("spool").as_ref(),
            "--log-file".as_ref(),
            log.as_ref(),
        ],
    );
    assert!(said.contains("cannot open the log"), "{said}");
    assert!(said.contains("never writes through"), "{said}");

    for secret in &secrets {
        secret.assert_untouched();
    }
    for link in [
        staging.join("status.json.new"),
        cache.join(format!("{entry}.part")),
        log,
    ] {
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_planted_in_a_private_folder_are_never_followed() {
    let world = World::local(WorldOptions::default()).await;
    let p = project(&world, "Planted");
    let file = world.file("cached.bin", b"fetched through the cache");
    run_ok(world.cli().args([&p, "1.0.0", "--stage"]).arg(&file));
    let spool = world.scratch.path().join("spool");
    let cache = world.scratch.path().join("cache");
    let mount = Mount::start(
        &world,
        &[
            "--staging-dir",
            spool.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
    );
    for version in ["2.0.0", "3.0.0"] {
        std::fs::create_dir_all(mount.join(&format!("{p}/{version}"))).unwrap();
    }
    // Planted by root, who can: the daemon's own opens must still refuse the links
    // (O_NOFOLLOW) and replace stale temporary names (O_EXCL), never write through them.
    let secrets: Vec<Secret> = ["status", "state", "data", "part"]
        .iter()
        .map(|name| Secret::new(world.scratch.path(), name))
        .collect();
    let entry = cache_entry(&world, &p, "1.0.0").await;
    let links = [
        spool.join("status.json.new"),
        spool.join(format!("{p}/2.0.0/state.json.new")),
        spool.join(format!("{p}/3.0.0/data")),
        cache.join(format!("{entry}.part")),
    ];
    for (secret, link) in secrets.iter().zip(&links) {
        std::os::unix::fs::symlink(&secret.path, link).unwrap();
    }

    // Through the cache: the `.part` link is replaced by a file of the daemon's.
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/1.0.0/{p}@1.0.0"))).unwrap(),
        b"fetched through the cache"
    );
    // Staged: `state.json` and `status.json` are replaced, their links never followed.
    std::fs::write(mount.join(&format!("{p}/2.0.0/a.bin")), b"staged").unwrap();
    let downloaded = world.scratch.path().join("downloaded");
    run_ok(
        world
            .cli()
            .args([&p, "2.0.0", "--download"])
            .arg(&downloaded),
    );
    assert_eq!(std::fs::read(&downloaded).unwrap(), b"staged");
    // A link where the spool keeps the bytes: the write fails, nothing is written.
    assert!(std::fs::write(mount.join(&format!("{p}/3.0.0/b.bin")), b"no").is_err());
    assert!(
        mount.log().contains(&format!("{p}/3.0.0/data")),
        "{}",
        mount.log()
    );

    for secret in &secrets {
        secret.assert_untouched();
    }
    assert!(std::fs::symlink_metadata(&links[2]).unwrap().is_symlink());
    assert!(std::fs::symlink_metadata(spool.join("status.json"))
        .unwrap()
        .is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_cache_entry_is_never_served() {
    let world = World::local(WorldOptions::default()).await;
    let p = project(&world, "Tampered");
    let real = b"real artifact!";
    let evil = b"EVIL! artifact";
    assert_eq!(real.len(), evil.len());
    run_ok(
        world
            .cli()
            .args([&p, "1.0.0", "--stage"])
            .arg(world.file("a.bin", real)),
    );
    let cache = world.scratch.path().join("cache");
    let args = ["--cache-dir", cache.to_str().unwrap()];
    let path = format!("{p}/1.0.0/{p}@1.0.0");
    let mount = Mount::start(&world, &args);
    assert_eq!(std::fs::read(mount.join(&path)).unwrap(), real);
    drop(mount);

    // The bytes and a record that vouches for them, as someone who could write to the
    // cache would leave them.
    let entry = cache_entry(&world, &p, "1.0.0").await;
    let record_path = cache.join(format!("{entry}.json"));
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    record["md5"] = hex::encode(Md5::digest(evil)).into();
    std::fs::write(&record_path, serde_json::to_vec(&record).unwrap()).unwrap();
    std::fs::write(cache.join(format!("{entry}.data")), evil).unwrap();

    let mount = Mount::start(&world, &args);
    assert_eq!(std::fs::read(mount.join(&path)).unwrap(), real);
    assert!(mount.log().contains("failed its check"), "{}", mount.log());
    drop(mount);
    // Fetched again: the cache holds the real bytes now.
    assert_eq!(
        std::fs::read(cache.join(format!("{entry}.data"))).unwrap(),
        real
    );
}

/// Every folder under `dir` is `0700` and every file `0600`; returns how many files.
fn assert_private(dir: &Path) -> usize {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.uid(), 0, "{}", path.display());
        if meta.is_dir() {
            files += assert_private(&path);
        } else {
            assert!(meta.is_file(), "{}", path.display());
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            files += 1;
        }
    }
    files
}

/// Loosens every mode under `dir`, as an older daemon left them.
fn loosen(dir: &Path) {
    chmod(dir, 0o755);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            loosen(&path);
        } else {
            chmod(&path, 0o644);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_the_daemon_keeps_is_private() {
    let world = World::local(WorldOptions::default()).await;
    let p = project(&world, "Modes");
    run_ok(
        world
            .cli()
            .args([&p, "1.0.0", "--stage"])
            .arg(world.file("a.bin", b"cached")),
    );
    let spool = world.scratch.path().join("state/spool");
    let cache = world.scratch.path().join("cache");
    let log = world.scratch.path().join("daemon.log");
    let log_option = format!("log_file={}", log.display());
    let args = [
        "--staging-dir",
        spool.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "-o",
        &log_option,
    ];
    let mount = Mount::start(&world, &args);
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/1.0.0/{p}@1.0.0"))).unwrap(),
        b"cached"
    );
    // An empty staging folder, one holding a file under rsync's temporary name (kept
    // in the spool until renamed), and one staged.
    for version in ["2.0.0", "3.0.0", "4.0.0"] {
        std::fs::create_dir_all(mount.join(&format!("{p}/{version}"))).unwrap();
    }
    std::fs::write(mount.join(&format!("{p}/3.0.0/.b.bin.Ab12Cd")), b"spooled").unwrap();
    std::fs::write(mount.join(&format!("{p}/4.0.0/c.bin")), b"staged").unwrap();
    drop(mount);

    assert_eq!(mode(&world.scratch.path().join("state")), 0o700);
    // @lock, @store.txt, status.json, two state.json and a data file.
    assert_eq!(assert_private(&spool), 6);
    // The record and the bytes.
    assert_eq!(assert_private(&cache), 2);
    assert_eq!(mode(&log), 0o600);

    // What an older daemon left readable is tightened at start.
    loosen(&spool);
    loosen(&cache);
    chmod(&log, 0o644);
    let mount = Mount::start(&world, &args);
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/3.0.0/.b.bin.Ab12Cd"))).unwrap(),
        b"spooled"
    );
    drop(mount);
    assert_eq!(assert_private(&spool), 6);
    assert_eq!(assert_private(&cache), 2);
    assert_eq!(mode(&log), 0o600);
}

#[test]
fn a_daemon_without_a_state_folder_says_so_and_stops() {
    // The other user may not reach the build folder: a copy of the binary it can run.
    let open = open_folder();
    let binary = open.path().join("startifact-fs");
    std::fs::copy(env!("CARGO_BIN_EXE_startifact-fs"), &binary).unwrap();
    chmod(&binary, 0o755);
    let mountpoint = open.path().join("mnt");
    std::fs::create_dir(&mountpoint).unwrap();
    let mut command = as_other(binary.to_str().unwrap());
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .arg("local:/nonexistent")
        .arg(&mountpoint);
    let (code, _, stderr) = run(&mut command);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("neither HOME nor XDG_STATE_HOME"),
        "{stderr}"
    );
    assert!(!Path::new("/tmp/.local/state/startifact-fs").exists());
}
