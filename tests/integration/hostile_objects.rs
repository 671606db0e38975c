//! Objects in the bucket that our stager never writes, through the mount and the CLI:
//! metadata from the Python tool named as the mount's own attributes, metadata keys
//! that cannot be attribute names, a metadata object that is not JSON, saved file names
//! that are not plain names, and saved names of 240 and 255 bytes downloaded with
//! `--filename` (issue 8, defect 5). Never a panic, always an errno or one clear line,
//! never a byte outside the download folder.

use std::process::Command;

use bytes::Bytes;
use startifact::protocol::{python_dumps, Metadata};
use startifact::storage::PutOptions;

use crate::support::files::{getxattr, project};
use crate::support::mount::Mount;
use crate::support::staging::{cli_stage, names_in};
use crate::support::world::{run, run_ok, World, REGIONS};

/// Writes `key` in every region, over what is there.
async fn put_everywhere(world: &World, key: &str, bytes: &[u8]) {
    for region in REGIONS {
        world
            .raw_store(region)
            .put_object(
                &world.buckets[region],
                key,
                Bytes::copy_from_slice(bytes),
                &PutOptions::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("{key} in {region}: {e}"));
    }
}

fn metadata(pairs: &[(&str, &str)]) -> Vec<u8> {
    let metadata: Metadata = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    python_dumps(&metadata).into_bytes()
}

/// Issue 8, defect 5: the download's temporary name once passed 255 bytes.
async fn a_download_with_filename_writes_a_saved_name_of_240_or_255_bytes(world: World) {
    let p = project(&world, "LongName");
    for (version, len) in [("1.0.0", 255), ("2.0.0", 240)] {
        let name = format!("{}.tgz", "n".repeat(len - 4));
        let file = world.file(&format!("{len}/{name}"), b"long named");
        run_ok(
            world
                .cli()
                .args([&p, version, "--stage"])
                .arg(&file)
                .arg("--filename"),
        );
        let folder = world.dir(&format!("out-{len}"));
        run_ok(
            world
                .cli()
                .args([&p, version, "--download"])
                .arg(&folder)
                .arg("--filename"),
        );
        assert_eq!(names_in(&folder), [name.as_str()], "{len} bytes");
        assert_eq!(std::fs::read(folder.join(&name)).unwrap(), b"long named");
    }
}
on_both_backends!(a_download_with_filename_writes_a_saved_name_of_240_or_255_bytes);

/// Issue 8, defect 2, as a user met it: the Python tool takes these keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_metadata_named_as_the_mounts_attributes_does_not_impersonate_them() {
    // The Python tool speaks only to AWS: moto.
    let world = World::moto(Default::default()).await;
    let p = project(&world, "Forged");
    let file = world.file("forged.bin", b"forged metadata");
    run_ok(
        world
            .python()
            .args([&p, "1.0.0", "--stage"])
            .arg(&file)
            .args([
                "--metadata",
                "startifact:region=forged-region",
                "--metadata",
                "startifact:bucket=forged-bucket",
                "--metadata",
                "lang=python",
            ]),
    );
    let mount = Mount::start(&world, &[]);
    let artifact = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    let dumped = run_ok(
        Command::new("getfattr")
            .args(["-d", "--absolute-names"])
            .arg(&artifact),
    );
    for name in [
        "user.startifact:region=",
        "user.startifact:bucket=",
        "user.lang=",
    ] {
        assert_eq!(dumped.matches(name).count(), 1, "{name} once: {dumped}");
    }
    assert!(!dumped.contains("forged"), "{dumped}");
    let region = getxattr(&artifact, "user.startifact:region", 64).unwrap();
    assert!(REGIONS.contains(&std::str::from_utf8(&region).unwrap()));
    assert!(
        mount.log().contains("\"startifact:region\" is not listed"),
        "logged"
    );
    let info: serde_json::Value =
        serde_json::from_str(&run_ok(world.cli().args([&p, "1.0.0", "--info", "--json"]))).unwrap();
    assert_eq!(info["metadata"]["startifact:region"], "forged-region");
}

/// Issue 8, defect 3: `rsync -aX` out of the mount exited 23 on names it could not read.
async fn rsync_copies_the_attributes_of_metadata_keys_that_cannot_be_names(world: World) {
    let p = project(&world, "Unnamed");
    cli_stage(&world, &p, "1.0.0", b"odd keys", &[]);
    let long_key = "k".repeat(251);
    let huge = "v".repeat(64 * 1024 + 1);
    let object = metadata(&[
        ("with\0nul", "a"),
        (&long_key, "b"),
        ("huge", &huge),
        ("lang", "rust"),
    ]);
    put_everywhere(&world, &format!("{p}@1.0.0/metadata"), &object).await;
    let mount = Mount::start(&world, &[]);
    let copy = world.dir("copy");
    let (code, out, err) = run(Command::new("rsync")
        .arg("-aX")
        .arg(mount.join(&format!("{p}/1.0.0/")))
        .arg(&copy));
    assert_eq!(code, 0, "{out}{err}");
    let copied = copy.join(format!("{p}@1.0.0"));
    assert_eq!(std::fs::read(&copied).unwrap(), b"odd keys");
    assert_eq!(getxattr(&copied, "user.lang", 64).unwrap(), b"rust");
    let info: serde_json::Value =
        serde_json::from_str(&run_ok(world.cli().args([&p, "1.0.0", "--info", "--json"]))).unwrap();
    assert_eq!(info["metadata"]["with\0nul"], "a", "{info}");
    assert_eq!(info["metadata"][long_key.as_str()], "b");
    assert_eq!(
        info["metadata"]["huge"].as_str().map(str::len),
        Some(huge.len())
    );
}
on_both_backends!(rsync_copies_the_attributes_of_metadata_keys_that_cannot_be_names);

async fn a_metadata_object_that_is_not_json_leaves_the_bytes_readable(world: World) {
    let p = project(&world, "NotJson");
    cli_stage(
        &world,
        &p,
        "1.0.0",
        b"bytes intact",
        &["--metadata", "lang=rust", "--filename"],
    );
    put_everywhere(&world, &format!("{p}@1.0.0/metadata"), b"{\"lang\": 1").await;
    let mount = Mount::start(&world, &[]);
    let file = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    assert_eq!(std::fs::read(&file).unwrap(), b"bytes intact");
    assert_eq!(getxattr(&file, "user.lang", 64), Err(libc::ENODATA));
    assert!(mount.log().contains("is shown without metadata"), "logged");
    let (code, _, err) = run(world.cli().args([&p, "1.0.0", "--info"]));
    assert_eq!(code, 1);
    assert!(err.contains("metadata"), "{err}");
}
on_both_backends!(a_metadata_object_that_is_not_json_leaves_the_bytes_readable);

async fn a_saved_name_that_is_a_path_never_leaves_the_download_folder(world: World) {
    let p = project(&world, "Escape");
    cli_stage(&world, &p, "1.0.0", b"contained", &[]);
    let mount = Mount::start(&world, &[]);
    for (i, name) in ["../escaped", "/tmp/escaped", "..", "a/b", ""]
        .iter()
        .enumerate()
    {
        let version = format!("1.0.{}", i + 1);
        cli_stage(&world, &p, &version, b"contained", &[]);
        let object = metadata(&[("startifact:filename", name)]);
        put_everywhere(&world, &format!("{p}@{version}/metadata"), &object).await;
        let outer = world.dir(&format!("outer-{i}"));
        let folder = outer.join("in");
        std::fs::create_dir(&folder).unwrap();
        run_ok(
            world
                .cli()
                .args([&p, &version, "--download"])
                .arg(&folder)
                .arg("--filename"),
        );
        let fallback = format!("{p}@{version}");
        assert_eq!(names_in(&folder), [fallback.as_str()], "{name:?}");
        assert_eq!(names_in(&outer), ["in"], "{name:?}");
        let listed = std::fs::read_dir(mount.join(&format!("{p}/{version}")))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect::<Vec<_>>();
        assert_eq!(listed, [fallback], "{name:?}");
    }
    assert!(!std::path::Path::new("/tmp/escaped").exists());
}
on_both_backends!(a_saved_name_that_is_a_path_never_leaves_the_download_folder);
