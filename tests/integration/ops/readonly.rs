//! On a `--read-only` mount every change answers EROFS (most in the kernel, before the
//! daemon hears of it) and changes nothing; reads work as on any mount.

use std::path::Path;
use std::process::Command;

use crate::support::files::{errno_of, project};
use crate::support::files::{removexattr, setxattr};
use crate::support::mount::Mount;
use crate::support::world::{run, run_ok, World};

/// Stages `P 1.0.0` (`dist.txt`, `lang=rust`) and `P 2.0.0`, then mounts read-only.
fn read_only_mount(world: &World, base: &str) -> (String, Mount) {
    let p = project(world, base);
    let file = world.file("dist.txt", b"read me");
    run_ok(world.cli().args([&p, "1.0.0", "--stage"]).arg(&file).args([
        "--filename",
        "--metadata",
        "lang=rust",
    ]));
    run_ok(world.cli().args([&p, "2.0.0", "--stage"]).arg(&file));
    (p, Mount::start(world, &["--read-only"]))
}

async fn reads_work(world: World) {
    let (p, mount) = read_only_mount(&world, "RoRead");
    assert_eq!(
        std::fs::read_link(mount.join(&format!("{p}/latest"))).unwrap(),
        Path::new("2.0.0")
    );
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/1.0.0/dist.txt"))).unwrap(),
        b"read me"
    );
    let attributes = run_ok(
        Command::new("getfattr")
            .arg("-d")
            .arg(mount.join(&format!("{p}/1.0.0"))),
    );
    assert!(attributes.contains("user.lang=\"rust\""), "{attributes}");
}
on_both_backends!(reads_work);

async fn creating_and_writing_files_answer_erofs(world: World) {
    let (p, mount) = read_only_mount(&world, "RoWrite");
    let artifact = mount.join(&format!("{p}/1.0.0/dist.txt"));
    assert_eq!(
        errno_of(std::fs::OpenOptions::new().write(true).open(&artifact)),
        libc::EROFS
    );
    assert_eq!(
        errno_of(std::fs::OpenOptions::new().append(true).open(&artifact)),
        libc::EROFS
    );
    assert_eq!(
        errno_of(std::fs::File::create(
            mount.join(&format!("{p}/1.0.0/new.txt"))
        )),
        libc::EROFS
    );
    assert_eq!(
        errno_of(std::fs::File::create(mount.join(&format!("{p}/loose.txt")))),
        libc::EROFS
    );
    assert_eq!(std::fs::read(&artifact).unwrap(), b"read me");
}
on_both_backends!(creating_and_writing_files_answer_erofs);

async fn mkdir_and_rmdir_answer_erofs(world: World) {
    let (p, mount) = read_only_mount(&world, "RoDir");
    assert_eq!(
        errno_of(std::fs::create_dir(mount.join(&format!("{p}/3.0.0")))),
        libc::EROFS
    );
    assert_eq!(
        errno_of(std::fs::create_dir(mount.join("NewProject"))),
        libc::EROFS
    );
    assert_eq!(
        errno_of(std::fs::remove_dir(mount.join(&format!("{p}/1.0.0")))),
        libc::EROFS
    );
    assert_eq!(errno_of(std::fs::remove_dir(mount.join(&p))), libc::EROFS);
    assert!(mount.join(&format!("{p}/1.0.0")).is_dir());
}
on_both_backends!(mkdir_and_rmdir_answer_erofs);

async fn setfattr_and_removexattr_answer_erofs(world: World) {
    let (p, mount) = read_only_mount(&world, "RoAttr");
    let folder = mount.join(&format!("{p}/1.0.0"));
    let file = folder.join("dist.txt");
    for path in [&folder, &file] {
        assert_eq!(setxattr(path, "user.team", b"core"), Err(libc::EROFS));
        assert_eq!(removexattr(path, "user.lang"), Err(libc::EROFS));
    }
    let (code, _, err) = run(Command::new("setfattr")
        .args(["-n", "user.team", "-v", "core"])
        .arg(&folder));
    assert!(code != 0 && err.contains("Read-only file system"), "{err}");
    let attributes = run_ok(Command::new("getfattr").arg("-d").arg(&file));
    assert!(attributes.contains("user.lang=\"rust\""), "{attributes}");
    assert!(!attributes.contains("user.team"), "{attributes}");
}
on_both_backends!(setfattr_and_removexattr_answer_erofs);

async fn ln_sfn_onto_latest_answers_erofs_and_moves_nothing(world: World) {
    let (p, mount) = read_only_mount(&world, "RoLn");
    let latest = mount.join(&format!("{p}/latest"));
    let (code, _, err) = run(Command::new("ln").arg("-sfn").arg("1.0.0").arg(&latest));
    assert!(code != 0 && err.contains("Read-only file system"), "{err}");
    assert_eq!(
        errno_of(std::os::unix::fs::symlink(
            "1.0.0",
            mount.join(&format!("{p}/latest.tmp"))
        )),
        libc::EROFS
    );
    assert_eq!(std::fs::read_link(&latest).unwrap(), Path::new("2.0.0"));
    let info = run_ok(world.cli().args([&p, "--info"]));
    assert!(info.contains("2.0.0"), "{info}");
}
on_both_backends!(ln_sfn_onto_latest_answers_erofs_and_moves_nothing);

async fn unlink_and_rename_answer_erofs(world: World) {
    let (p, mount) = read_only_mount(&world, "RoRm");
    let latest = mount.join(&format!("{p}/latest"));
    let artifact = mount.join(&format!("{p}/1.0.0/dist.txt"));
    assert_eq!(errno_of(std::fs::remove_file(&latest)), libc::EROFS);
    assert_eq!(errno_of(std::fs::remove_file(&artifact)), libc::EROFS);
    assert_eq!(
        errno_of(std::fs::rename(
            &artifact,
            mount.join(&format!("{p}/1.0.0/moved.txt"))
        )),
        libc::EROFS
    );
    assert_eq!(std::fs::read_link(&latest).unwrap(), Path::new("2.0.0"));
    assert_eq!(std::fs::read(&artifact).unwrap(), b"read me");
}
on_both_backends!(unlink_and_rename_answer_erofs);

async fn staging_versions_of_an_earlier_mount_are_not_shown(world: World) {
    let p = project(&world, "RoStaging");
    run_ok(
        world
            .cli()
            .args([&p, "1.0.0", "--stage"])
            .arg(world.file("dist.txt", b"staged")),
    );
    let staging = world.dir("shared-staging");
    let staging_arg = format!("--staging-dir={}", staging.display());
    let writable = Mount::start(&world, &[&staging_arg]);
    std::fs::create_dir(writable.join(&format!("{p}/2.0.0"))).unwrap();
    std::fs::create_dir(writable.join("Unstaged")).unwrap();
    drop(writable);

    let read_only = Mount::start(&world, &["--read-only", &staging_arg]);
    assert_eq!(
        errno_of(std::fs::metadata(read_only.join(&format!("{p}/2.0.0")))),
        libc::ENOENT
    );
    assert_eq!(
        errno_of(std::fs::metadata(read_only.join("Unstaged"))),
        libc::ENOENT
    );
    let listed: Vec<String> = std::fs::read_dir(read_only.join(&p))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!listed.contains(&"2.0.0".to_string()), "{listed:?}");
}
on_both_backends!(staging_versions_of_an_earlier_mount_are_not_shown);
