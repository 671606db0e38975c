//! The read side of the mount, through the real kernel, on moto and on the local store.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use semver::Version;
use startifact::protocol::Metadata;

use crate::support::files::{errno_of, getxattr, project, random_bytes};
use crate::support::mount::{daemon_command, mount_line, Mount};
use crate::support::world::{run_ok, World, WorldOptions};

async fn browse_read_and_refuse(world: World) {
    let p = project(&world, "Mnt");
    let content = random_bytes(6 << 20, 7);
    let file = world.file("dist.bin", &content);
    run_ok(world.cli().args([&p, "1.0.0", "--stage"]).arg(&file).args([
        "--filename",
        "--metadata",
        "lang=rust",
        "--metadata",
        "ключ=значение",
    ]));
    let other = world.file("other", b"second version");
    run_ok(world.cli().args([&p, "1.1.0", "--stage"]).arg(&other));

    let mount = Mount::start(&world, &[]);
    let root: Vec<String> = std::fs::read_dir(&mount.path)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(root.contains(&p), "{root:?}");
    let mut listed: Vec<String> = std::fs::read_dir(mount.join(&p))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    listed.sort();
    assert_eq!(listed, ["1.0.0", "1.1.0", "latest"]);
    assert_eq!(
        std::fs::read_link(mount.join(&format!("{p}/latest"))).unwrap(),
        Path::new("1.1.0")
    );
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/latest/{p}@1.1.0"))).unwrap(),
        b"second version"
    );

    let artifact = mount.join(&format!("{p}/1.0.0/dist.bin"));
    assert_eq!(std::fs::read(&artifact).unwrap(), content);
    let meta = std::fs::metadata(&artifact).unwrap();
    assert_eq!(meta.len(), content.len() as u64);
    assert_eq!(meta.permissions().mode() & 0o777, 0o444);
    assert_eq!(
        std::fs::metadata(mount.join(&format!("{p}/1.0.0")))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o555
    );
    assert_eq!(
        std::fs::metadata(&artifact).unwrap().ino(),
        meta.ino(),
        "inodes are stable"
    );

    // Extended attributes: the metadata, the size probe, and the local answers.
    let dumped = run_ok(Command::new("getfattr").arg("-d").arg(&artifact));
    assert!(dumped.contains("user.lang=\"rust\""), "{dumped}");
    assert!(
        dumped.contains("user.startifact:filename=\"dist.bin\""),
        "{dumped}"
    );
    let folder_attrs = run_ok(
        Command::new("getfattr")
            .args(["-d", "-e", "text"])
            .arg(mount.join(&format!("{p}/1.0.0"))),
    );
    assert!(folder_attrs.contains("user.lang"), "{folder_attrs}");
    assert_eq!(getxattr(&artifact, "user.lang", 0).unwrap().len(), 4);
    assert_eq!(getxattr(&artifact, "user.lang", 64).unwrap(), b"rust");
    assert_eq!(
        getxattr(&artifact, "user.ключ", 64).unwrap(),
        "значение".as_bytes()
    );
    assert_eq!(getxattr(&artifact, "user.lang", 2), Err(libc::ERANGE));
    assert_eq!(getxattr(&artifact, "user.missing", 64), Err(libc::ENODATA));
    assert_eq!(
        getxattr(&artifact, "system.posix_acl_access", 64),
        Err(libc::ENODATA)
    );
    let region =
        String::from_utf8(getxattr(&artifact, "user.startifact:region", 64).unwrap()).unwrap();
    assert!(!region.is_empty());

    // Missing names and names that cannot exist: ENOENT.
    for missing in [
        "NoSuchProject",
        "bad name",
        &format!("{p}/9.9.9"),
        &format!("{p}/not-a-version"),
        &format!("{p}/1.0.0/other.bin"),
    ] {
        assert_eq!(
            errno_of(std::fs::metadata(mount.join(missing))),
            libc::ENOENT,
            "{missing}"
        );
    }

    // Staged versions are immutable: the daemon's own EPERM, even for root.
    let options = std::fs::OpenOptions::new().write(true).open(&artifact);
    assert_eq!(errno_of(options), libc::EPERM);
    assert_eq!(errno_of(std::fs::remove_file(&artifact)), libc::EPERM);
    assert_eq!(
        errno_of(std::fs::set_permissions(
            &artifact,
            std::fs::Permissions::from_mode(0o777)
        )),
        libc::EPERM
    );
    assert_eq!(
        errno_of(std::fs::rename(
            &artifact,
            mount.join(&format!("{p}/1.0.0/moved"))
        )),
        libc::EPERM
    );
    assert_eq!(
        errno_of(
            std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&artifact)
        ),
        libc::EPERM
    );
    assert_eq!(
        errno_of(std::fs::remove_dir_all(mount.join(&format!("{p}/1.1.0")))),
        libc::EPERM
    );
    let truncated = Command::new("truncate")
        .args(["-s", "0"])
        .arg(&artifact)
        .output()
        .unwrap();
    assert!(!truncated.status.success());
    assert!(String::from_utf8_lossy(&truncated.stderr).contains("Operation not permitted"));

    // Tools: rsync, tar, find.
    let copy = world.dir("copy");
    run_ok(
        Command::new("rsync")
            .arg("-a")
            .arg(format!("{}/", mount.join(&p).display()))
            .arg(&copy),
    );
    assert_eq!(std::fs::read(copy.join("1.0.0/dist.bin")).unwrap(), content);
    assert_eq!(
        std::fs::read_link(copy.join("latest")).unwrap(),
        Path::new("1.1.0")
    );
    let tar = run_ok(
        Command::new("tar")
            .arg("-cf")
            .arg(world.scratch.path().join("p.tar"))
            .arg("-C")
            .arg(&mount.path)
            .arg(&p),
    );
    assert!(tar.is_empty());
    let listing = run_ok(
        Command::new("tar")
            .arg("-tf")
            .arg(world.scratch.path().join("p.tar")),
    );
    assert!(
        listing.contains(&format!("{p}/1.0.0/dist.bin")),
        "{listing}"
    );
    let found = run_ok(
        Command::new("find")
            .arg(mount.join(&p))
            .args(["-type", "f"]),
    );
    assert_eq!(found.lines().count(), 2, "{found}");
}
on_both_backends!(browse_read_and_refuse);

async fn many_versions_and_parallel_readers(world: World) {
    let p = project(&world, "Many");
    let session = world.session(false);
    let small = world.file("small", b"v");
    for minor in 0..25 {
        session
            .stage(
                &p,
                &Version::new(1, minor, 0),
                &small,
                Metadata::new(),
                false,
            )
            .await
            .unwrap();
    }
    let big = random_bytes(9 << 20, 3);
    let big_file = world.file("big", &big);
    session
        .stage(
            &p,
            &Version::new(2, 0, 0),
            &big_file,
            Metadata::new(),
            false,
        )
        .await
        .unwrap();

    let mount = Mount::start(&world, &[]);
    let ls = run_ok(Command::new("ls").arg("-l").arg(mount.join(&p)));
    assert_eq!(
        ls.lines().filter(|l| l.starts_with('d')).count(),
        26,
        "{ls}"
    );
    assert!(ls.contains("latest -> 2.0.0"), "{ls}");

    let path = mount.join(&format!("{p}/2.0.0/{p}@2.0.0"));
    let expected = format!("{:x}", Md5::digest(&big));
    let readers: Vec<_> = (0..16)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut file = std::fs::File::open(&path).unwrap();
                let mut hasher = Md5::new();
                let mut buffer = vec![0u8; 64 * 1024 + i * 4096];
                loop {
                    let n = file.read(&mut buffer).unwrap();
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buffer[..n]);
                }
                format!("{:x}", hasher.finalize())
            })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.join().unwrap(), expected);
    }
}
on_both_backends!(many_versions_and_parallel_readers);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_argument_dash_o_options_and_sigterm() {
    let world = World::local(WorldOptions::default()).await;
    let p = project(&world, "Opt");
    let file = world.file("f", b"read-only mount");
    run_ok(world.cli().args([&p, "1.0.0", "--stage"]).arg(&file));
    let store = match &world.kind {
        crate::support::world::Kind::Local { dir } => dir.clone(),
        _ => unreachable!(),
    };
    let source = format!("local:{}", store.display());
    let mut mount = Mount::start(&world, &["-o", "ro,uid=1234,gid=4321,_netdev", &source]);
    let line = mount_line(&mount.path).unwrap();
    assert!(line.contains(" fuse.startifact-fs ro,"), "{line}");
    let artifact = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    assert_eq!(std::fs::read(&artifact).unwrap(), b"read-only mount");
    let meta = std::fs::metadata(&artifact).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 4321));
    assert_eq!(errno_of(std::fs::remove_file(&artifact)), libc::EROFS);
    assert_eq!(mount.stop(), Some(0), "{}", mount.log());
    assert!(mount_line(&mount.path).is_none(), "SIGTERM unmounts");
    assert!(
        mount.log().contains("SIGTERM: unmounting"),
        "{}",
        mount.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_mode_returns_once_the_mount_answers() {
    let world = World::local(WorldOptions::default()).await;
    let p = project(&world, "Bg");
    let file = world.file("f", b"background");
    run_ok(world.cli().args([&p, "1.0.0", "--stage"]).arg(&file));
    let mountpoint = world.dir("bg-mnt");
    let log = world.scratch.path().join("bg.log");
    let status = daemon_command(&world)
        .arg("--log-file")
        .arg(&log)
        .arg("--staging-dir")
        .arg(world.scratch.path().join("staging"))
        .arg(&mountpoint)
        .status()
        .unwrap();
    assert!(status.success());
    // Returned only once mounted: no waiting needed.
    assert!(mount_line(&mountpoint).is_some_and(|l| l.contains("fuse.startifact-fs")));
    assert_eq!(
        std::fs::read(mountpoint.join(format!("{p}/latest/{p}@1.0.0"))).unwrap(),
        b"background"
    );
    run_ok(Command::new("fusermount3").arg("-u").arg(&mountpoint));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&log)
        .unwrap_or_default()
        .matches("was unmounted")
        .count()
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the daemon did not notice the unmount"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A mount point that is no folder, and an unknown option: a clear error, exit 1.
    let output = daemon_command(&world)
        .arg(world.file("plain", b"x"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a folder"));
    let output = daemon_command(&world)
        .args(["-o", "bogus"])
        .arg(&mountpoint)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown mount option"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_staged_artifacts_appear() {
    let world = World::moto(WorldOptions::default()).await;
    let p = project(&world, "Py");
    let file = world.file("from-python.tar.gz", b"staged by the Python tool");
    run_ok(
        world
            .python()
            .args([&p, "3.0.0", "--stage"])
            .arg(&file)
            .args(["--metadata", "team=py", "--filename"]),
    );
    let mount = Mount::start(&world, &[]);
    let artifact = mount.join(&format!("{p}/latest/from-python.tar.gz"));
    assert_eq!(
        std::fs::read(&artifact).unwrap(),
        b"staged by the Python tool"
    );
    assert_eq!(getxattr(&artifact, "user.team", 64).unwrap(), b"py");
}

/// Ranged GETs of `key` seen by the proxy, as (count, bytes asked for).
fn ranged_gets(proxy: &crate::support::proxy::FaultProxy, key: &str) -> (usize, u64) {
    let mut count = 0;
    let mut bytes = 0;
    for request in proxy.requests() {
        if request.method != "GET" || !request.key_path().ends_with(key) {
            continue;
        }
        count += 1;
        if let Some((start, end)) = request
            .header("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.split_once('-'))
        {
            bytes += end.parse::<u64>().unwrap() - start.parse::<u64>().unwrap() + 1;
        }
    }
    (count, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_lean_and_a_hung_region_blocks_nothing() {
    use crate::support::moto::Moto;
    use crate::support::proxy::{FaultProxy, Mode};
    let mut world = World::moto(WorldOptions::default()).await;
    let proxy = FaultProxy::start(&Moto::shared().url);
    world
        .region_endpoints
        .insert("us-east-1".into(), proxy.url());
    let p = project(&world, "Lean");
    let session = world.session_in(&["us-east-1"], false);
    let big = random_bytes(200 * 1000 * 1000, 11);
    let big_file = world.file("big", &big);
    session
        .stage(
            &p,
            &Version::new(1, 0, 0),
            &big_file,
            Metadata::new(),
            false,
        )
        .await
        .unwrap();
    drop(big);
    let small = random_bytes(20 << 20, 5);
    let small_file = world.file("small", &small);
    session
        .stage(
            &p,
            &Version::new(0, 9, 0),
            &small_file,
            Metadata::new(),
            false,
        )
        .await
        .unwrap();
    let other = project(&world, "Other");
    session
        .stage(
            &other,
            &Version::new(1, 0, 0),
            &small_file,
            Metadata::new(),
            false,
        )
        .await
        .unwrap();

    let mount = Mount::start(&world, &["--regions", "us-east-1", "-o", "metadata_ttl=60"]);
    let big_path = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    let key = format!("{p}@1.0.0");

    // The head of a large artifact costs well under 8 MiB.
    proxy.clear();
    run_ok(Command::new("head").args(["-c", "4096"]).arg(&big_path));
    let (_, bytes) = ranged_gets(&proxy, &key);
    assert!(bytes < 8 << 20, "head -c 4096 fetched {bytes} bytes");

    // A sequential read of 200 MB takes at most 64 GETs, and is exact.
    proxy.clear();
    let started = Instant::now();
    let output = Command::new("md5sum").arg(&big_path).output().unwrap();
    let elapsed = started.elapsed();
    let (gets, bytes) = ranged_gets(&proxy, &key);
    assert!(gets <= 64, "{gets} GETs");
    assert!(
        bytes >= 200 * 1000 * 1000 - (4 << 20),
        "{bytes} bytes fetched"
    );
    let expected = format!("{:x}", Md5::digest(std::fs::read(&big_file).unwrap()));
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with(&expected),
        "read {elapsed:?}"
    );

    // Pin what the second half needs, then hang the region mid-read.
    let small_path = mount.join(&format!("{p}/0.9.0/{p}@0.9.0"));
    std::fs::metadata(&small_path).unwrap();
    let listed = std::fs::read_dir(&mount.path).unwrap().count();
    assert!(listed >= 2);
    proxy.set_mode(Mode::Hang);
    let reader = {
        let small_path = small_path.clone();
        std::thread::spawn(move || std::fs::read(small_path))
    };
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        let started = Instant::now();
        std::fs::metadata(&small_path).unwrap();
        std::fs::read_dir(&mount.path).unwrap().count();
        std::fs::metadata(mount.join(&p)).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?} while a region hangs",
            started.elapsed()
        );
    }
    // With the only region refusing, `latest` of a project not yet read is EIO, not ENOENT.
    proxy.set_mode(Mode::Refuse);
    assert_eq!(
        errno_of(std::fs::read_link(mount.join(&format!("{other}/latest")))),
        libc::EIO
    );
    proxy.set_mode(Mode::Forward);
    let read = reader.join().unwrap();
    // Released from the hang, the reader either retried to the end or got EIO: never
    // wrong bytes.
    if let Ok(bytes) = read {
        assert_eq!(bytes, small);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_mount_point_is_cleaned_up_and_big_attributes_refused() {
    let world = World::local(WorldOptions::default()).await;
    let p = project(&world, "Stale");
    let file = world.file("f", b"stale");
    let huge: Metadata = [("huge".to_string(), "x".repeat(70 * 1024))].into();
    world
        .session(false)
        .stage(&p, &Version::new(1, 0, 0), &file, huge, false)
        .await
        .unwrap();

    let mut mount = Mount::start(&world, &[]);
    let artifact = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    assert_eq!(getxattr(&artifact, "user.huge", 0), Err(libc::E2BIG));
    assert!(
        run_ok(Command::new("getfattr").arg("-d").arg(&artifact)).contains("user.startifact:key")
    );

    mount.kill();
    assert_eq!(
        errno_of(std::fs::read_dir(&mount.path).map(|_| ())),
        libc::ENOTCONN
    );
    let mount = Mount::restart(&world, &[], mount);
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/1.0.0/{p}@1.0.0"))).unwrap(),
        b"stale"
    );
}

fn cached_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_cache_serves_reads_when_every_region_is_down() {
    use crate::support::moto::Moto;
    use crate::support::proxy::{FaultProxy, Mode};
    let mut world = World::moto(WorldOptions::default()).await;
    let proxy = FaultProxy::start(&Moto::shared().url);
    for region in crate::support::world::REGIONS {
        world
            .region_endpoints
            .insert(region.to_string(), proxy.url());
    }
    let p = project(&world, "Cache");
    let (first, second) = (random_bytes(3 << 20, 1), random_bytes(3 << 20, 2));
    let session = world.session(false);
    session
        .stage(
            &p,
            &Version::new(1, 0, 0),
            &world.file("a.bin", &first),
            Metadata::new(),
            true,
        )
        .await
        .unwrap();
    session
        .stage(
            &p,
            &Version::new(2, 0, 0),
            &world.file("b.bin", &second),
            Metadata::new(),
            true,
        )
        .await
        .unwrap();
    let cache_dir = world.dir("cache");
    let cache = format!("cache_dir={}", cache_dir.display());

    let mut mount = Mount::start(&world, &["-o", &cache]);
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/1.0.0/a.bin"))).unwrap(),
        first
    );
    assert_eq!(mount.stop(), Some(0));
    assert_eq!(cached_files(&cache_dir).len(), 1);

    // Every region down: the cached version still reads by its path; others are EIO.
    proxy.set_mode(Mode::Refuse);
    let mut mount = Mount::start(&world, &["-o", &cache]);
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/1.0.0/a.bin"))).unwrap(),
        first
    );
    assert_eq!(
        errno_of(std::fs::read(mount.join(&format!("{p}/2.0.0/b.bin")))),
        libc::EIO
    );
    assert!(mount.log().contains("from the cache"), "{}", mount.log());
    mount.stop();

    // Past the size limit the least recently used artifact goes.
    proxy.set_mode(Mode::Forward);
    let mut mount = Mount::start(&world, &["-o", &format!("{cache},cache_size=4M")]);
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/2.0.0/b.bin"))).unwrap(),
        second
    );
    mount.stop();
    let files = cached_files(&cache_dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(std::fs::read(&files[0]).unwrap(), second);

    // A cached copy that fails its check is fetched again, never served.
    let mut damaged = std::fs::read(&files[0]).unwrap();
    damaged[0] ^= 0xff;
    std::fs::write(&files[0], &damaged).unwrap();
    let mount = Mount::start(&world, &["-o", &cache]);
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/2.0.0/b.bin"))).unwrap(),
        second
    );
    assert!(mount.log().contains("failed its check"), "{}", mount.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_versions_read_without_listing_permissions() {
    use crate::support::moto::Moto;
    use crate::support::proxy::FaultProxy;
    let mut world = World::moto(WorldOptions {
        bucket_key_prefix: "team/".into(),
        parameter_name_prefix: "/team".into(),
    })
    .await;
    let proxy = FaultProxy::start(&Moto::shared().url);
    for region in crate::support::world::REGIONS {
        world
            .region_endpoints
            .insert(region.to_string(), proxy.url());
    }
    let p = project(&world, "Denied");
    let file = world.file("d.bin", b"no listing needed");
    world
        .session(false)
        .stage(&p, &Version::new(1, 0, 0), &file, Metadata::new(), true)
        .await
        .unwrap();

    // A reader without s3:ListBucket and ssm:GetParametersByPath.
    proxy.set_deny_listing(true);
    proxy.set_denied_ssm_actions(&["GetParametersByPath"]);
    let mount = Mount::start(&world, &[]);
    assert_eq!(
        std::fs::read_dir(&mount.path).unwrap().count(),
        0,
        "nothing can be listed"
    );
    assert!(
        mount
            .log()
            .contains("lists only what the granted permissions can list"),
        "{}",
        mount.log()
    );
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/1.0.0/d.bin"))).unwrap(),
        b"no listing needed"
    );
    assert_eq!(
        std::fs::read_link(mount.join(&format!("{p}/latest"))).unwrap(),
        Path::new("1.0.0")
    );
    // 403 from every region for a version that is not there: ENOENT.
    assert_eq!(
        errno_of(std::fs::metadata(mount.join(&format!("{p}/9.9.9")))),
        libc::ENOENT
    );
    assert!(proxy.requests().iter().any(|r| r.status == Some(403)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ln_sfn_moves_latest_in_every_region() {
    let world = World::moto(WorldOptions::default()).await;
    let p = project(&world, "Ln");
    let file = world.file("f", b"ln");
    run_ok(world.python().args([&p, "1.0.0", "--stage"]).arg(&file));
    run_ok(world.python().args([&p, "2.0.0", "--stage"]).arg(&file));
    let mount = Mount::start(&world, &[]);
    let latest = mount.join(&format!("{p}/latest"));
    assert_eq!(std::fs::read_link(&latest).unwrap(), Path::new("2.0.0"));

    // GNU ln -sfn: a symlink at a temporary name, renamed over latest.
    run_ok(Command::new("ln").arg("-sfn").arg("1.0.0").arg(&latest));
    assert_eq!(std::fs::read_link(&latest).unwrap(), Path::new("1.0.0"));
    let theirs = run_ok(world.python().args([&p, "--info"]));
    assert!(
        theirs.contains(&format!("The latest version of {p} is 1.0.0.")),
        "{theirs}"
    );
    let second = Mount::start(&world, &[]);
    assert_eq!(
        std::fs::read_link(second.join(&format!("{p}/latest"))).unwrap(),
        Path::new("1.0.0")
    );

    // The unlink-then-symlink form.
    std::fs::remove_file(&latest).unwrap();
    std::os::unix::fs::symlink("2.0.0", &latest).unwrap();
    assert_eq!(std::fs::read_link(&latest).unwrap(), Path::new("2.0.0"));

    // Only a staged version of the project; other links and renames are refused.
    let missing = Command::new("ln")
        .arg("-sfn")
        .arg("9.9.9")
        .arg(&latest)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert_eq!(std::fs::read_link(&latest).unwrap(), Path::new("2.0.0"));
    assert_eq!(
        errno_of(std::os::unix::fs::symlink(
            "../elsewhere",
            mount.join(&format!("{p}/x"))
        )),
        libc::EINVAL
    );
    assert_eq!(
        errno_of(std::os::unix::fs::symlink("1.0.0", mount.join("top-level"))),
        libc::EPERM
    );
    drop(second);
    drop(mount);

    let read_only = Mount::start(&world, &["--read-only"]);
    let latest = read_only.join(&format!("{p}/latest"));
    let refused = Command::new("ln")
        .arg("-sfn")
        .arg("1.0.0")
        .arg(&latest)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Read-only file system"),
        "{refused:?}"
    );
    assert_eq!(errno_of(std::fs::remove_file(&latest)), libc::EROFS);
}
