//! Metadata changes through extended attributes: before the stage, `removexattr` on
//! the staging folder or its file takes the key out of what is staged; once staged, a
//! version's attributes are immutable: `setxattr` and `removexattr` answer EPERM.

use std::io::Write;
use std::process::Command;

use semver::Version;

use crate::support::files::{getxattr, project};
use crate::support::files::{removexattr, setxattr};
use crate::support::mount::Mount;
use crate::support::staging::close;
use crate::support::world::{run_ok, World};

/// The metadata staged for `P 1.0.0`, as the library reads it.
async fn staged_metadata(world: &World, project: &str) -> Vec<(String, String)> {
    let session = world.session(true);
    let artifact = session
        .get(project, Some(&Version::new(1, 0, 0)))
        .await
        .unwrap();
    artifact
        .metadata()
        .await
        .unwrap()
        .clone()
        .into_iter()
        .collect()
}

async fn removexattr_on_a_staging_folder_unsets_the_key(world: World) {
    let p = project(&world, "RmFolder");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    setxattr(&folder, "user.team", b"core").unwrap();
    setxattr(&folder, "user.lang", b"rust").unwrap();
    assert_eq!(removexattr(&folder, "user.team"), Ok(()));
    assert_eq!(getxattr(&folder, "user.team", 64), Err(libc::ENODATA));

    run_ok(
        Command::new("cp")
            .arg(world.file("dist.txt", b"x"))
            .arg(&folder),
    );
    let metadata = staged_metadata(&world, &p).await;
    assert!(
        metadata.contains(&("lang".into(), "rust".into())),
        "{metadata:?}"
    );
    assert!(!metadata.iter().any(|(k, _)| k == "team"), "{metadata:?}");
}
on_both_backends!(removexattr_on_a_staging_folder_unsets_the_key);

async fn removexattr_on_a_staging_file_unsets_the_key(world: World) {
    let p = project(&world, "RmFile");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("dist.txt");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(b"x").unwrap();
    setxattr(&path, "user.team", b"core").unwrap();
    setxattr(&path, "user.lang", b"rust").unwrap();
    assert_eq!(removexattr(&path, "user.team"), Ok(()));
    assert_eq!(getxattr(&path, "user.team", 64), Err(libc::ENODATA));
    assert_eq!(close(file), Ok(()));

    let metadata = staged_metadata(&world, &p).await;
    assert!(
        metadata.contains(&("lang".into(), "rust".into())),
        "{metadata:?}"
    );
    assert!(!metadata.iter().any(|(k, _)| k == "team"), "{metadata:?}");
}
on_both_backends!(removexattr_on_a_staging_file_unsets_the_key);

async fn removexattr_on_a_staged_version_is_eperm(world: World) {
    let p = project(&world, "RmStaged");
    run_ok(
        world
            .cli()
            .args([&p, "1.0.0", "--stage"])
            .arg(world.file("dist.txt", b"x"))
            .args(["--filename", "--metadata", "lang=rust"]),
    );
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    for path in [folder.clone(), folder.join("dist.txt")] {
        assert_eq!(
            removexattr(&path, "user.lang"),
            Err(libc::EPERM),
            "{path:?}"
        );
        assert_eq!(getxattr(&path, "user.lang", 64).unwrap(), b"rust");
    }
    let metadata = staged_metadata(&world, &p).await;
    assert!(
        metadata.contains(&("lang".into(), "rust".into())),
        "{metadata:?}"
    );
}
on_both_backends!(removexattr_on_a_staged_version_is_eperm);

async fn setxattr_after_the_stage_is_eperm(world: World) {
    let p = project(&world, "SetLate");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    run_ok(
        Command::new("cp")
            .arg(world.file("dist.txt", b"x"))
            .arg(&folder),
    );
    for path in [folder.clone(), folder.join("dist.txt")] {
        assert_eq!(
            setxattr(&path, "user.team", b"late"),
            Err(libc::EPERM),
            "{path:?}"
        );
        assert_eq!(getxattr(&path, "user.team", 64), Err(libc::ENODATA));
    }
    let metadata = staged_metadata(&world, &p).await;
    assert!(!metadata.iter().any(|(k, _)| k == "team"), "{metadata:?}");
}
on_both_backends!(setxattr_after_the_stage_is_eperm);
