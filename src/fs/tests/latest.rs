//! `latest` as a symlink: `readlink`, and moving it with `symlink`, `rename` and
//! `unlink` the ways GNU `ln -sfn` and `rm` + `ln -s` do.

use super::fixture::{errno, Fixture, PROJECT, REGIONS};
use crate::fs::calls::PENDING_LINKS;
use crate::fs::namespace::LATEST_VERSIONS;
use crate::fs::FsOptions;
use crate::fs::{FileKind, ROOT_INODE};
use crate::protocol::read_latest;

/// `ln -sfn TARGET SugarWater/latest`: a symlink at a temporary name, renamed over it.
async fn ln_sfn(f: &Fixture, target: &str) -> crate::fs::FsResult<()> {
    let project = f.inode(PROJECT).await;
    f.fs.symlink(project, "latest.tmp", target).await?;
    f.fs.rename(project, "latest.tmp", project, "latest", f.pid())
        .await
}

async fn latest(f: &Fixture) -> String {
    let inode = f.inode("SugarWater/latest").await;
    f.fs.readlink(inode).await.unwrap()
}

#[tokio::test]
async fn readlink_of_latest_is_the_latest_version() {
    let f = Fixture::new().await;
    assert_eq!(latest(&f).await, "1.0.0");
}

#[tokio::test]
async fn readlink_of_what_is_not_a_symlink_is_einval() {
    let f = Fixture::new().await;
    for path in [PROJECT, "SugarWater/1.0.0", "SugarWater/1.0.0/dist.txt"] {
        let inode = f.inode(path).await;
        assert_eq!(errno(f.fs.readlink(inode).await), libc::EINVAL, "{path}");
    }
}

#[tokio::test]
async fn ln_sfn_moves_latest_in_every_region() {
    let f = Fixture::new().await;
    ln_sfn(&f, "0.9.0").await.unwrap();
    assert_eq!(latest(&f).await, "0.9.0");
    let other = f.other_session().await;
    let read = read_latest(&other, PROJECT).await.unwrap();
    assert_eq!(read.version.to_string(), "0.9.0");
    for region in REGIONS {
        let file = f.parameter_file(region, "/SugarWater/latest");
        assert_eq!(
            std::fs::read_to_string(file).unwrap().trim(),
            "0.9.0",
            "{region}"
        );
    }
}

#[tokio::test]
async fn the_pending_symlink_reads_its_target_and_is_not_listed() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let link =
        f.fs.symlink(project, "latest.tmp", "./0.9.0/")
            .await
            .unwrap();
    assert_eq!(link.attr.kind, FileKind::Symlink);
    assert_eq!(f.fs.readlink(link.attr.inode).await.unwrap(), "0.9.0");
    let listed = f.fs.readdir(project).await.unwrap();
    assert!(listed.iter().all(|e| e.name != "latest.tmp"));
    assert_eq!(latest(&f).await, "1.0.0", "not moved before the rename");
}

#[tokio::test]
async fn a_symlink_to_a_version_that_is_not_staged_is_enoent() {
    let f = Fixture::new().await;
    assert_eq!(errno(ln_sfn(&f, "2.0.0").await), libc::ENOENT);
    let project = f.inode(PROJECT).await;
    f.fs.mkdir(project, "1.1.0").await.unwrap();
    assert_eq!(
        errno(ln_sfn(&f, "1.1.0").await),
        libc::ENOENT,
        "a staging version is not staged yet"
    );
    assert_eq!(latest(&f).await, "1.0.0");
}

#[tokio::test]
async fn a_symlink_to_anything_but_a_version_folder_is_einval() {
    let f = Fixture::new().await;
    for target in ["../Other/1.0.0", "foo", "1.0", "/etc"] {
        assert_eq!(errno(ln_sfn(&f, target).await), libc::EINVAL, "{target}");
    }
}

#[tokio::test]
async fn ln_sn_onto_latest_without_f_is_eexist() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    assert_eq!(
        errno(f.fs.symlink(project, "latest", "0.9.0").await),
        libc::EEXIST
    );
    assert_eq!(latest(&f).await, "1.0.0");
}

#[tokio::test]
async fn rm_latest_then_ln_s_moves_it() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    f.fs.unlink(project, "latest", f.pid()).await.unwrap();
    assert_eq!(
        errno(f.lookup("SugarWater/latest").await),
        libc::ENOENT,
        "gone until it is replaced"
    );
    f.fs.symlink(project, "latest", "0.9.0").await.unwrap();
    assert_eq!(latest(&f).await, "0.9.0");
}

#[tokio::test]
async fn a_symlink_named_as_a_version_is_eexist() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    assert_eq!(
        errno(f.fs.symlink(project, "2.0.0", "1.0.0").await),
        libc::EEXIST
    );
}

#[tokio::test]
async fn a_symlink_outside_a_project_folder_is_eperm() {
    let f = Fixture::new().await;
    // `ln -sf 1.0.0 SugarWater/latest` follows latest into its version folder.
    let version = f.inode("SugarWater/1.0.0").await;
    assert_eq!(
        errno(f.fs.symlink(version, "1.0.0", "1.0.0").await),
        libc::EPERM
    );
    assert_eq!(
        errno(f.fs.symlink(ROOT_INODE, "link", "SugarWater").await),
        libc::EPERM
    );
}

#[tokio::test]
async fn a_pending_symlink_renamed_anywhere_but_onto_latest_is_einval() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    f.fs.symlink(project, "latest.tmp", "0.9.0").await.unwrap();
    assert_eq!(
        errno(
            f.fs.rename(project, "latest.tmp", project, "current", f.pid())
                .await
        ),
        libc::EINVAL
    );
}

#[tokio::test]
async fn unlink_of_a_pending_symlink_removes_it() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    f.fs.symlink(project, "latest.tmp", "0.9.0").await.unwrap();
    f.fs.unlink(project, "latest.tmp", f.pid()).await.unwrap();
    assert_eq!(errno(f.lookup("SugarWater/latest.tmp").await), libc::ENOENT);
    assert_eq!(latest(&f).await, "1.0.0");
}

#[tokio::test]
async fn moving_latest_on_a_read_only_mount_is_erofs() {
    let f = Fixture::read_only().await;
    let project = f.inode(PROJECT).await;
    assert_eq!(
        errno(f.fs.symlink(project, "latest.tmp", "0.9.0").await),
        libc::EROFS
    );
    assert_eq!(
        errno(f.fs.unlink(project, "latest", f.pid()).await),
        libc::EROFS
    );
}

#[tokio::test]
async fn pending_symlinks_are_bounded_and_one_dropped_is_gone_with_its_inode() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let first = f.fs.symlink(project, "tmp0", "0.9.0").await.unwrap();
    let inodes = f.fs.statfs().files;
    for n in 1..PENDING_LINKS + 500 {
        f.fs.symlink(project, &format!("tmp{n}"), "0.9.0")
            .await
            .unwrap();
    }
    assert_eq!(f.fs.latest_moves_len(), PENDING_LINKS);
    assert!(
        f.fs.statfs().files < inodes + PENDING_LINKS as u64,
        "the inodes of the dropped links are forgotten"
    );
    // The first went (the least recently used): gone, never read as something else.
    assert_eq!(errno(f.fs.getattr(first.attr.inode).await), libc::ENOENT);
    assert_eq!(errno(f.fs.readlink(first.attr.inode).await), libc::ENOENT);
    assert_eq!(errno(f.lookup("SugarWater/tmp0").await), libc::ENOENT);
    assert_eq!(
        errno(
            f.fs.rename(project, "tmp0", project, "latest", f.pid())
                .await
        ),
        libc::EPERM,
        "no such symlink any more"
    );
    assert_eq!(latest(&f).await, "1.0.0");
    // The last still moves `latest`, and its inode then reads as `latest`.
    let last = format!("tmp{}", PENDING_LINKS + 499);
    let link = f.fs.lookup(project, &last).await.unwrap();
    assert_eq!(f.fs.readlink(link.attr.inode).await.unwrap(), "0.9.0");
    f.fs.rename(project, &last, project, "latest", f.pid())
        .await
        .unwrap();
    assert_eq!(latest(&f).await, "0.9.0");
    assert_eq!(f.fs.readlink(link.attr.inode).await.unwrap(), "0.9.0");
    assert_eq!(
        errno(f.lookup(&format!("SugarWater/{last}")).await),
        libc::ENOENT
    );
}

#[tokio::test]
async fn the_latest_kept_are_bounded_and_one_dropped_is_read_again() {
    let options = FsOptions {
        metadata_ttl: std::time::Duration::from_secs(60),
        ..FsOptions::default()
    };
    let f = Fixture::with(options, None).await;
    assert_eq!(latest(&f).await, "1.0.0");
    // Another tool moves it: within the TTL this mount still says what it read...
    let other = f.other_session().await;
    other
        .set_latest(PROJECT, &semver::Version::new(0, 9, 0))
        .await
        .unwrap();
    assert_eq!(latest(&f).await, "1.0.0");
    // ...until as many other projects' `latest` push it out: then it is read again.
    for n in 0..LATEST_VERSIONS + 100 {
        f.fs.namespace
            .remember_latest(&format!("Other{n}"), &semver::Version::new(1, 0, 0));
        assert!(f.fs.namespace.kept().1 <= LATEST_VERSIONS);
    }
    assert_eq!(latest(&f).await, "0.9.0");
}

fn ttl(seconds: u64) -> FsOptions {
    FsOptions {
        metadata_ttl: std::time::Duration::from_secs(seconds),
        ..FsOptions::default()
    }
}

#[tokio::test]
async fn each_target_of_latest_is_a_symlink_of_its_own_that_never_changes() {
    let f = Fixture::with(ttl(0), Some(1 << 20)).await;
    let before = f.lookup("SugarWater/latest").await.unwrap();
    // Another tool moves it (to a longer name, so a stale size would cut the target).
    f.stage_elsewhere(&semver::Version::new(1, 10, 0), b"newer")
        .await;
    let after = f.lookup("SugarWater/latest").await.unwrap();
    assert_ne!(before.attr.inode, after.attr.inode, "a symlink per target");
    assert_eq!(f.fs.readlink(after.attr.inode).await.unwrap(), "1.10.0");
    assert_eq!(after.attr.size, 6);
    // What the kernel keeps of the first is still true of it.
    assert_eq!(f.fs.readlink(before.attr.inode).await.unwrap(), "1.0.0");
    let kept = f.fs.getattr(before.attr.inode).await.unwrap();
    assert_eq!(kept.attr.size, 5);
    assert_eq!(
        kept.ttl,
        FsOptions::default().immutable_ttl,
        "never changes"
    );
    // The listing names the symlink of the target last seen.
    let project = f.inode(PROJECT).await;
    let listed = f.fs.readdir(project).await.unwrap();
    let latest = listed.iter().find(|e| e.name == "latest").unwrap();
    assert_eq!(latest.inode, after.attr.inode);
}

#[tokio::test]
async fn the_kernel_keeps_the_name_latest_only_while_the_mount_trusts_its_target() {
    let f = Fixture::with(ttl(60), Some(1 << 20)).await;
    let first = f.lookup("SugarWater/latest").await.unwrap();
    assert!(first.ttl <= std::time::Duration::from_secs(60));
    assert!(first.ttl > std::time::Duration::from_secs(50));
    let again = f.lookup("SugarWater/latest").await.unwrap();
    assert_eq!(again.attr.inode, first.attr.inode);
    assert!(again.ttl <= first.ttl, "what is left of the same TTL");
    // With no TTL the kernel keeps nothing.
    let f = Fixture::with(ttl(0), Some(1 << 20)).await;
    let entry = f.lookup("SugarWater/latest").await.unwrap();
    assert_eq!(entry.ttl, std::time::Duration::ZERO);
}

#[tokio::test]
async fn a_move_the_mount_learns_of_tells_the_kernel_to_forget_latest() {
    let f = Fixture::with(ttl(0), Some(1 << 20)).await;
    let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = std::sync::Arc::clone(&told);
    f.fs.set_invalidator(Box::new(move |parent, name| {
        kept.lock().unwrap().push((parent, name.to_string()));
    }));
    let project = f.inode(PROJECT).await;
    let forgotten = || told.lock().unwrap().clone();
    let name = vec![(project, "latest".to_string())];
    assert_eq!(latest(&f).await, "1.0.0");
    assert!(forgotten().is_empty(), "nothing moved: {:?}", forgotten());
    // Moved through the mount with `ln -sfn`: the kernel made the new name itself.
    ln_sfn(&f, "0.9.0").await.unwrap();
    assert!(forgotten().is_empty(), "{:?}", forgotten());
    // Moved by another tool, seen when read again.
    f.other_session()
        .await
        .set_latest(PROJECT, &semver::Version::new(1, 0, 0))
        .await
        .unwrap();
    assert_eq!(latest(&f).await, "1.0.0");
    assert_eq!(forgotten(), name);
    // Moved by a stage through the mount.
    f.cp("1.1.0", "app.tar", b"new").await.unwrap();
    assert_eq!(forgotten(), [name.clone(), name].concat());
    assert_eq!(latest(&f).await, "1.1.0");
}
