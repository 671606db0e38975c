//! Metadata limits that fail early and never hide data: readers accept metadata
//! objects of up to 16 MiB, the mount refuses at `setfattr` what would pass that
//! (so the `cp` after it stages what reads back), and an object over it leaves its
//! artifact readable under `P@V`, its attributes answering E2BIG.

use std::process::Command;

use bytes::Bytes;
use startifact::storage::PutOptions;

use crate::support::files::{errno_of, getxattr, project, setxattr};
use crate::support::mount::Mount;
use crate::support::staging::{cli_stage, names_in};
use crate::support::venv;
use crate::support::world::{run_ok, World, REGIONS};

/// What readers accept, and the mount and the CLI stage at most.
const LIMIT: usize = 16 << 20;
/// The most a value can be through setxattr(2) (the kernel refuses more).
const VALUE: usize = 60_000;

/// The mount once staged 20 attributes of 60,000 bytes, `cp` returned 0, and the
/// version read as ENOENT (readers refused objects over 1 MiB). Now those read back, and
/// what would pass 16 MiB is refused at the `setfattr` (ENOSPC): the `cp` after it
/// stages the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_past_16_mib_is_refused_at_setfattr_and_cp_stages_the_rest() {
    // A limit of the daemon, the same on every backend: the local store.
    let world = World::local(Default::default()).await;
    let p = project(&world, "Attributed");
    let mount = Mount::start(&world, &[]);
    let source = world.file("dist.tar.gz", b"attributed bytes");
    let value = vec![b'v'; VALUE];

    std::fs::create_dir_all(mount.join(&format!("{p}/1.0.0"))).unwrap();
    let folder = mount.join(&format!("{p}/1.0.0"));
    for n in 0..20 {
        setxattr(&folder, &format!("user.a{n:03}"), &value).unwrap();
    }
    std::fs::copy(&source, folder.join("dist.tar.gz")).unwrap();
    let file = folder.join("dist.tar.gz");
    assert_eq!(std::fs::read(&file).unwrap(), b"attributed bytes");
    assert_eq!(getxattr(&file, "user.a019", 1 << 16).unwrap(), value);

    std::fs::create_dir(mount.join(&format!("{p}/2.0.0"))).unwrap();
    let folder = mount.join(&format!("{p}/2.0.0"));
    let mut set = 0;
    let refused = loop {
        match setxattr(&folder, &format!("user.a{set:03}"), &value) {
            Ok(()) => set += 1,
            Err(errno) => break errno,
        }
        assert!(set < 400, "never refused");
    };
    assert_eq!(refused, libc::ENOSPC);
    // The object: "{\n" and "\n}" (4 bytes), the file name's entry counted at its
    // longest (1,557: 255 bytes escaped in six each), and per attribute `  "a000": "…"`
    // (60,012) with the ",\n" that parts it from the one before (2).
    assert_eq!(set, (LIMIT - 4 - 1_557) / (VALUE + 14));
    assert!(
        mount.log().contains("readers accept"),
        "the log says why: {}",
        mount.log()
    );
    std::fs::copy(&source, folder.join("dist.tar.gz")).unwrap();
    let file = folder.join("dist.tar.gz");
    assert_eq!(std::fs::read(&file).unwrap(), b"attributed bytes");
    assert_eq!(getxattr(&file, "user.a000", 1 << 16).unwrap(), value);
    assert_eq!(
        getxattr(&file, &format!("user.a{set:03}"), 0),
        Err(libc::ENODATA),
        "the refused one was never kept"
    );
    let info = run_ok(world.cli().args([p.as_str(), "2.0.0", "--info", "--json"]));
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["metadata"]["startifact:filename"], "dist.tar.gz");
}

/// The Python tool stages whatever metadata it is given; before, a 1 MiB value or
/// 20,000 keys made the version unreadable through the mount. (The Python tool speaks
/// only to AWS: moto.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_the_python_tool_staged_with_megabytes_of_metadata_read_through_the_mount() {
    let world = World::moto(Default::default()).await;
    let p = project(&world, "PyMeta");
    let file = world.file("big.tar", b"one big value");
    // One argument may not pass 128 KiB (MAX_ARG_STRLEN): the library, as a script would.
    let script = r#"
import sys
from pathlib import Path
from semver import VersionInfo
from startifact import Session
Session().stage(sys.argv[1], VersionInfo.parse("1.0.0"), Path(sys.argv[2]),
                metadata={"big": "b" * (1 << 20), "lang": "python"}, save_filename=True)
"#;
    run_ok(
        Command::new(venv().join("bin/python"))
            .env_clear()
            .envs(world.env())
            .args(["-c", script])
            .arg(&p)
            .arg(&file),
    );
    let many = world.file("many.tar", b"twenty thousand keys");
    let pairs: Vec<String> = (0..20_000)
        .flat_map(|n| ["--metadata".to_string(), format!("key{n:05}=value {n}")])
        .collect();
    run_ok(
        world
            .python()
            .args([p.as_str(), "2.0.0", "--stage"])
            .arg(&many)
            .args(&pairs)
            .arg("--filename"),
    );

    let mount = Mount::start(&world, &[]);
    assert_eq!(
        names_in(&mount.join(&p)),
        ["1.0.0", "2.0.0", "latest"],
        "both versions listed"
    );
    let big = mount.join(&format!("{p}/1.0.0/big.tar"));
    assert_eq!(std::fs::read(&big).unwrap(), b"one big value");
    assert_eq!(getxattr(&big, "user.lang", 64).unwrap(), b"python");
    assert_eq!(getxattr(&big, "user.big", 0), Err(libc::E2BIG));
    let (code, _, err) = crate::support::world::run(
        Command::new("getfattr")
            .args(["-n", "user.big", "--absolute-names"])
            .arg(&big),
    );
    assert_ne!(code, 0);
    assert!(err.contains("Argument list too long"), "{err}");
    assert!(mount.log().contains("over the 64 KiB"), "the log says why");

    let many = mount.join(&format!("{p}/2.0.0/many.tar"));
    assert_eq!(std::fs::read(&many).unwrap(), b"twenty thousand keys");
    assert_eq!(
        getxattr(&many, "user.key19999", 64).unwrap(),
        b"value 19999"
    );
}

/// An object of 20 MiB written raw to the store: never read, never hiding the artifact.
async fn a_metadata_object_of_20_mib_leaves_the_artifact_readable_under_p_at_v(world: World) {
    let p = project(&world, "Oversized");
    cli_stage(
        &world,
        &p,
        "1.0.0",
        b"bytes under P@V",
        &["--metadata", "lang=rust", "--filename"],
    );
    let object = format!("{{\"lang\": \"{}\"}}", "x".repeat(20 << 20));
    for region in REGIONS {
        world
            .raw_store(region)
            .put_object(
                &world.buckets[region],
                &format!("{p}@1.0.0/metadata"),
                Bytes::from(object.clone()),
                &PutOptions::default(),
            )
            .await
            .unwrap();
    }
    let mount = Mount::start(&world, &[]);
    let version = mount.join(&format!("{p}/1.0.0"));
    assert_eq!(names_in(&version), [format!("{p}@1.0.0")]);
    let file = version.join(format!("{p}@1.0.0"));
    assert_eq!(std::fs::read(&file).unwrap(), b"bytes under P@V");
    assert_eq!(getxattr(&file, "user.lang", 64), Err(libc::E2BIG));
    assert_eq!(getxattr(&version, "user.anything", 64), Err(libc::E2BIG));
    assert!(getxattr(&file, "user.startifact:key", 256).is_ok());
    assert_eq!(
        errno_of(std::fs::metadata(version.join("SugarWater@1.0.0"))),
        libc::ENOENT
    );
    let log = mount.log();
    assert!(
        log.contains("over the 16 MiB") && log.contains("default name"),
        "{log}"
    );
}
on_both_backends!(a_metadata_object_of_20_mib_leaves_the_artifact_readable_under_p_at_v);
