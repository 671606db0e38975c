//! setxattr: metadata set on a staging version or its file is staged with it, the file's
//! value winning; `user.startifact:*` is Startifact's (EPERM, but the five the mount
//! shows are accepted and ignored), other namespaces are EOPNOTSUPP, and a staged
//! version takes no change (EPERM).

use std::io::Write;
use std::path::Path;
use std::process::Command;

use crate::support::files::{getxattr, project, random_bytes, setxattr};
use crate::support::mount::Mount;
use crate::support::staging::{close, downloaded, two_versions};
use crate::support::world::{run, run_ok, World};

fn setfattr(name: &str, path: &Path) -> (i32, String, String) {
    run(Command::new("setfattr")
        .args(["-n", name, "-v", "x"])
        .arg(path))
}

async fn metadata_set_on_the_folder_and_the_file_is_staged_the_files_value_winning(world: World) {
    let p = project(&world, "Meta");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
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
    assert_eq!(
        getxattr(&folder.join("dist.tar.gz"), "user.team", 64).unwrap(),
        b"file"
    );
}
on_both_backends!(metadata_set_on_the_folder_and_the_file_is_staged_the_files_value_winning);

/// The attributes the mount shows itself (bucket, key, region, etag, filename) come
/// along with `cp -a` and are ignored, not refused.
async fn cp_a_from_a_staged_version_stages_its_metadata(world: World) {
    let p = two_versions(&world, "CpA", &random_bytes(1 << 20, 3));
    let mount = Mount::start(&world, &[]);
    let copy = mount.join(&format!("{p}/1.4.0"));
    std::fs::create_dir(&copy).unwrap();
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(mount.join(&format!("{p}/1.0.0/dist.bin")))
            .arg(&copy),
    );
    assert_eq!(
        downloaded(&world, &p, "1.4.0").await,
        downloaded(&world, &p, "1.0.0").await
    );
}
on_both_backends!(cp_a_from_a_staged_version_stages_its_metadata);

async fn a_user_startifact_key_of_its_own_is_eperm(world: World) {
    let p = project(&world, "Own");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let (code, _, err) = setfattr("user.startifact:mine", &folder);
    assert!(
        code != 0 && err.contains("Operation not permitted"),
        "{err}"
    );
}
on_both_backends!(a_user_startifact_key_of_its_own_is_eperm);

async fn a_shown_startifact_attribute_is_accepted_and_ignored(world: World) {
    let p = project(&world, "Shown");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let mut file = std::fs::File::create(folder.join("a.bin")).unwrap();
    file.write_all(b"first").unwrap();
    assert_eq!(
        setfattr("user.startifact:bucket", &folder.join("a.bin")).0,
        0
    );
    assert_eq!(
        getxattr(&folder.join("a.bin"), "user.startifact:bucket", 64),
        Err(libc::ENODATA)
    );
    assert_eq!(close(file), Ok(()));
}
on_both_backends!(a_shown_startifact_attribute_is_accepted_and_ignored);

async fn a_name_outside_user_is_eopnotsupp(world: World) {
    let p = project(&world, "Trusted");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let (code, _, err) = setfattr("trusted.x", &folder);
    assert!(
        code != 0 && err.contains("Operation not supported"),
        "{err}"
    );
}
on_both_backends!(a_name_outside_user_is_eopnotsupp);

async fn a_version_this_mount_staged_takes_no_attribute(world: World) {
    let p = project(&world, "Late");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/2.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("a.bin"), b"first").unwrap();
    assert_eq!(setxattr(&folder, "user.late", b"x"), Err(libc::EPERM));
    assert_eq!(
        setxattr(&folder.join("a.bin"), "user.late", b"x"),
        Err(libc::EPERM)
    );
}
on_both_backends!(a_version_this_mount_staged_takes_no_attribute);
