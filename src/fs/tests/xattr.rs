//! Extended attributes: a staged version's metadata and where it is read from, as
//! `user.*` of its folder and file (read-only); metadata set on a staging version and
//! its file, staged with it; and the errno of every refusal.

use semver::Version;

use super::fixture::{errno, Fixture, NEW_BYTES, NEW_FILE, PROJECT, REGIONS};
use crate::fs::{SetMode, XattrReply, ROOT_INODE};
use crate::protocol::metadata::MAX_METADATA_BYTES;

async fn value(f: &Fixture, path: &str, name: &str) -> Vec<u8> {
    let inode = f.inode(path).await;
    match f.fs.getxattr(inode, name, 1 << 16).await.unwrap() {
        XattrReply::Data(data) => data,
        XattrReply::Size(size) => panic!("asked for data, got a size {size}"),
    }
}

async fn names(f: &Fixture, path: &str) -> Vec<String> {
    let inode = f.inode(path).await;
    let XattrReply::Data(list) = f.fs.listxattr(inode, 1 << 16).await.unwrap() else {
        panic!("asked for data");
    };
    list.split(|b| *b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| String::from_utf8(name.to_vec()).unwrap())
        .collect()
}

#[tokio::test]
async fn a_versions_metadata_is_user_attributes_of_its_folder_and_file() {
    let f = Fixture::new().await;
    for path in ["SugarWater/1.0.0", "SugarWater/1.0.0/dist.txt"] {
        assert_eq!(value(&f, path, "user.lang").await, b"rust", "{path}");
        assert_eq!(
            value(&f, path, "user.startifact:filename").await,
            b"dist.txt"
        );
    }
}

#[tokio::test]
async fn the_file_shows_where_it_is_read_from() {
    let f = Fixture::new().await;
    let file = "SugarWater/1.0.0/dist.txt";
    assert_eq!(
        value(&f, file, "user.startifact:bucket").await,
        b"startifact-local"
    );
    assert_eq!(
        value(&f, file, "user.startifact:key").await,
        b"SugarWater@1.0.0"
    );
    assert_eq!(
        value(&f, file, "user.startifact:region").await,
        REGIONS[0].as_bytes(),
        "pinned from the first region the session asks"
    );
    let etag = value(&f, file, "user.startifact:etag").await;
    assert_eq!(
        etag.len(),
        34,
        "a quoted MD5: {:?}",
        String::from_utf8_lossy(&etag)
    );
}

#[tokio::test]
async fn listxattr_lists_every_attribute_of_a_version() {
    let f = Fixture::new().await;
    let mut listed = names(&f, "SugarWater/1.0.0/dist.txt").await;
    listed.sort();
    assert_eq!(
        listed,
        [
            "user.lang",
            "user.startifact:bucket",
            "user.startifact:etag",
            "user.startifact:filename",
            "user.startifact:key",
            "user.startifact:region",
        ]
    );
}

#[tokio::test]
async fn the_root_projects_and_latest_have_no_attributes() {
    let f = Fixture::new().await;
    assert_eq!(
        f.fs.listxattr(ROOT_INODE, 0).await.unwrap(),
        XattrReply::Size(0)
    );
    for path in [PROJECT, "SugarWater/latest"] {
        assert!(names(&f, path).await.is_empty(), "{path}");
    }
}

#[tokio::test]
async fn a_missing_attribute_is_enodata() {
    let f = Fixture::new().await;
    let version = f.inode("SugarWater/1.0.0").await;
    assert_eq!(
        errno(f.fs.getxattr(version, "user.team", 100).await),
        libc::ENODATA
    );
    assert_eq!(
        errno(f.fs.getxattr(version, "system.posix_acl_access", 100).await),
        libc::ENODATA,
        "outside user.*, at once"
    );
}

#[tokio::test]
async fn a_zero_size_buffer_gets_the_size_and_a_small_one_erange() {
    let f = Fixture::new().await;
    let version = f.inode("SugarWater/1.0.0").await;
    assert_eq!(
        f.fs.getxattr(version, "user.lang", 0).await.unwrap(),
        XattrReply::Size(4)
    );
    assert_eq!(
        errno(f.fs.getxattr(version, "user.lang", 3).await),
        libc::ERANGE
    );
    assert_eq!(errno(f.fs.listxattr(version, 3).await), libc::ERANGE);
}

#[tokio::test]
async fn setxattr_and_removexattr_on_a_staged_version_are_eperm() {
    let f = Fixture::new().await;
    for path in ["SugarWater/1.0.0", "SugarWater/1.0.0/dist.txt"] {
        let inode = f.inode(path).await;
        let set =
            f.fs.setxattr(inode, "user.team", b"core", SetMode::Any, f.pid())
                .await;
        assert_eq!(errno(set), libc::EPERM, "{path}");
        assert_eq!(
            errno(f.fs.removexattr(inode, "user.lang", f.pid()).await),
            libc::EPERM
        );
    }
}

#[tokio::test]
async fn attributes_outside_user_are_eopnotsupp() {
    let f = Fixture::new().await;
    let version = f.inode("SugarWater/1.0.0").await;
    let set =
        f.fs.setxattr(version, "trusted.team", b"core", SetMode::Any, f.pid())
            .await;
    assert_eq!(errno(set), libc::EOPNOTSUPP);
    assert_eq!(
        errno(f.fs.removexattr(version, "security.team", f.pid()).await),
        libc::EOPNOTSUPP
    );
}

#[tokio::test]
async fn the_mounts_own_attributes_are_accepted_and_ignored() {
    let f = Fixture::new().await;
    let version = f.inode("SugarWater/1.0.0").await;
    f.fs.setxattr(
        version,
        "user.startifact:region",
        b"elsewhere",
        SetMode::Any,
        f.pid(),
    )
    .await
    .unwrap();
    assert_eq!(
        value(&f, "SugarWater/1.0.0", "user.startifact:region").await,
        REGIONS[0].as_bytes()
    );
}

#[tokio::test]
async fn metadata_on_a_staging_version_is_kept_and_staged_with_its_file() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    f.fs.setxattr(folder, "user.team", b"core", SetMode::Any, f.pid())
        .await
        .unwrap();
    assert_eq!(names(&f, "SugarWater/1.1.0").await, ["user.team"]);
    let (entry, handle) = f.fs.create(folder, NEW_FILE, &f.caller).await.unwrap();
    f.fs.setxattr(entry.attr.inode, "user.lang", b"go", SetMode::Any, f.pid())
        .await
        .unwrap();
    assert_eq!(
        value(&f, "SugarWater/1.1.0/app.tar", "user.team").await,
        b"core"
    );
    f.fs.write(handle, 0, NEW_BYTES, f.pid()).await.unwrap();
    f.close(handle).await.unwrap();

    let other = f.other_session().await;
    let artifact = other
        .get(PROJECT, Some(&Version::new(1, 1, 0)))
        .await
        .unwrap();
    let metadata = artifact.metadata().await.unwrap();
    assert_eq!(metadata.get("team").map(String::as_str), Some("core"));
    assert_eq!(metadata.get("lang").map(String::as_str), Some("go"));
    assert_eq!(
        metadata.get("startifact:filename").map(String::as_str),
        Some(NEW_FILE)
    );
}

#[tokio::test]
async fn a_user_key_under_startifact_is_eperm() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    let set =
        f.fs.setxattr(
            folder,
            "user.startifact:team",
            b"core",
            SetMode::Any,
            f.pid(),
        )
        .await;
    assert_eq!(errno(set), libc::EPERM);
}

#[tokio::test]
async fn a_value_that_is_not_utf8_is_einval() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    let set =
        f.fs.setxattr(folder, "user.team", b"\xff\xfe", SetMode::Any, f.pid())
            .await;
    assert_eq!(errno(set), libc::EINVAL);
}

#[tokio::test]
async fn create_of_an_existing_or_replace_and_remove_of_a_missing_attribute_are_refused() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    let replace =
        f.fs.setxattr(folder, "user.team", b"core", SetMode::Replace, f.pid())
            .await;
    assert_eq!(errno(replace), libc::ENODATA);
    assert_eq!(
        errno(f.fs.removexattr(folder, "user.team", f.pid()).await),
        libc::ENODATA
    );
    f.fs.setxattr(folder, "user.team", b"core", SetMode::Create, f.pid())
        .await
        .unwrap();
    let create =
        f.fs.setxattr(folder, "user.team", b"ops", SetMode::Create, f.pid())
            .await;
    assert_eq!(errno(create), libc::EEXIST);
    f.fs.removexattr(folder, "user.team", f.pid())
        .await
        .unwrap();
    assert!(names(&f, "SugarWater/1.1.0").await.is_empty());
}

#[tokio::test]
async fn a_value_over_64_kib_is_e2big() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    let huge = vec![b'x'; 64 * 1024 + 1];
    f.fs.setxattr(folder, "user.huge", &huge, SetMode::Any, f.pid())
        .await
        .unwrap();
    assert_eq!(
        errno(f.fs.getxattr(folder, "user.huge", 0).await),
        libc::E2BIG
    );
}

#[tokio::test]
async fn setxattr_on_a_read_only_mount_is_erofs() {
    let f = Fixture::read_only().await;
    let version = f.inode("SugarWater/1.0.0").await;
    let set =
        f.fs.setxattr(version, "user.team", b"core", SetMode::Any, f.pid())
            .await;
    assert_eq!(errno(set), libc::EROFS);
}

#[tokio::test]
async fn metadata_past_what_readers_accept_is_refused_at_setxattr_and_the_rest_stages() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    // Four values of 4 MiB pass 16 MiB with their keys and the file name: the fourth
    // is refused (ENOSPC), on the folder as on the file, and nothing of it is kept.
    let four_mib = vec![b'x'; 4 << 20];
    for n in 0..3 {
        let name = format!("user.part{n}");
        f.fs.setxattr(folder, &name, &four_mib, SetMode::Any, f.pid())
            .await
            .unwrap();
    }
    let refused =
        f.fs.setxattr(folder, "user.part3", &four_mib, SetMode::Any, f.pid())
            .await;
    assert_eq!(errno(refused), libc::ENOSPC);
    let (entry, handle) = f.fs.create(folder, NEW_FILE, &f.caller).await.unwrap();
    let on_file =
        f.fs.setxattr(
            entry.attr.inode,
            "user.part3",
            &four_mib,
            SetMode::Any,
            f.pid(),
        )
        .await;
    assert_eq!(errno(on_file), libc::ENOSPC);
    // Replacing one with a smaller value, or one value that alone is too large.
    f.fs.setxattr(folder, "user.part2", b"small", SetMode::Any, f.pid())
        .await
        .unwrap();
    let alone = vec![b'x'; MAX_METADATA_BYTES];
    let too_big =
        f.fs.setxattr(folder, "user.alone", &alone, SetMode::Any, f.pid())
            .await;
    assert_eq!(errno(too_big), libc::E2BIG);
    let staged = f
        .staging
        .as_ref()
        .unwrap()
        .staged_metadata_len(PROJECT, "1.1.0")
        .unwrap();
    assert!(staged <= MAX_METADATA_BYTES, "{staged}");

    f.fs.write(handle, 0, NEW_BYTES, f.pid()).await.unwrap();
    f.close(handle).await.unwrap();
    let other = f.other_session().await;
    let artifact = other
        .get(PROJECT, Some(&Version::new(1, 1, 0)))
        .await
        .unwrap();
    let metadata = artifact.metadata().await.unwrap();
    assert_eq!(metadata.get("part0").map(String::len), Some(4 << 20));
    assert_eq!(metadata.get("part2").map(String::as_str), Some("small"));
    assert!(!metadata.contains_key("part3") && !metadata.contains_key("alone"));
    assert_eq!(f.read_all("SugarWater/1.1.0/app.tar").await, NEW_BYTES);
    let file = f.inode("SugarWater/1.1.0/app.tar").await;
    assert_eq!(
        errno(f.fs.getxattr(file, "user.part0", 0).await),
        libc::E2BIG,
        "over the 64 KiB an attribute can return"
    );
}

#[tokio::test]
async fn the_library_stages_no_metadata_larger_than_readers_accept() {
    let f = Fixture::new().await;
    let source = f.store.with_file_name("oversized-source");
    std::fs::write(&source, NEW_BYTES).unwrap();
    let over: crate::protocol::Metadata = [("k".to_string(), "x".repeat(MAX_METADATA_BYTES))]
        .into_iter()
        .collect();
    let staged = f
        .other_session()
        .await
        .stage(PROJECT, &Version::new(3, 0, 0), &source, over, false)
        .await;
    let error = staged.unwrap_err();
    assert!(
        matches!(error, crate::protocol::Error::OversizedMetadata { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("16 MiB"), "{error}");
    assert!(
        f.regions_holding("SugarWater@3.0.0").await.is_empty(),
        "refused before any request"
    );
}
