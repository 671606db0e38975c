//! Objects in the bucket that no stager of ours writes, put with the raw store as a
//! careless tool or a hand with `aws s3 cp` would: metadata that impersonates the
//! mount's own attributes or cannot be attribute names, metadata that is not JSON, not
//! strings or far too big, keys under the project that are not versions, saved file
//! names that are not plain names, and bytes replaced under a reader. Never a panic,
//! always an errno of the table, never a wrong byte.

use bytes::Bytes;

use super::fixture::{errno, Fixture, PROJECT, REGIONS};
use crate::fs::xattr::{XATTR_NAME_MAX, XATTR_SIZE_MAX};
use crate::fs::{XattrReply, ROOT_INODE};
use crate::protocol::metadata::MAX_METADATA_BYTES;
use crate::protocol::setup::LOCAL_BUCKET;
use crate::protocol::{python_dumps, Metadata};
use crate::storage::local::LocalRegion;
use crate::storage::{PutOptions, RegionStore};

const BYTES: &[u8] = b"SugarWater 2.0.0\n";

/// Writes `key` in every region, over whatever is there.
async fn put_everywhere(f: &Fixture, key: &str, bytes: &[u8]) {
    for region in REGIONS {
        LocalRegion::new(&f.store, region)
            .put_object(
                LOCAL_BUCKET,
                key,
                Bytes::copy_from_slice(bytes),
                &PutOptions::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("{key} in {region}: {e}"));
    }
}

/// `SugarWater@2.0.0` with this metadata object, as another tool might leave it.
async fn version_with_metadata_object(f: &Fixture, metadata: &[u8]) {
    put_everywhere(f, "SugarWater@2.0.0", BYTES).await;
    put_everywhere(f, "SugarWater@2.0.0/metadata", metadata).await;
}

async fn version_with(f: &Fixture, pairs: &[(&str, &str)]) {
    let metadata: Metadata = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    version_with_metadata_object(f, python_dumps(&metadata).as_bytes()).await;
}

async fn listed(f: &Fixture, inode: u64) -> Vec<Vec<u8>> {
    let XattrReply::Data(list) = f.fs.listxattr(inode, 1 << 16).await.unwrap() else {
        panic!("asked for data");
    };
    list.split(|b| *b == 0)
        .filter(|name| !name.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

async fn value(f: &Fixture, inode: u64, name: &str) -> Vec<u8> {
    f.xattr(inode, name).await
}

async fn names_in(f: &Fixture, path: &str) -> Vec<String> {
    let inode = f.inode(path).await;
    let entries = f.fs.readdir(inode).await.unwrap();
    entries.into_iter().map(|e| e.name).collect()
}

/// Issue 8, defect 2: `--metadata startifact:region=...` with the Python tool.
#[tokio::test]
async fn metadata_named_as_the_mounts_own_attributes_never_impersonates_them() {
    let f = Fixture::new().await;
    version_with(
        &f,
        &[
            ("startifact:bucket", "forged-bucket"),
            ("startifact:key", "forged-key"),
            ("startifact:region", "forged-region"),
            ("startifact:etag", "forged-etag"),
            ("lang", "rust"),
        ],
    )
    .await;
    for path in ["SugarWater/2.0.0", "SugarWater/2.0.0/SugarWater@2.0.0"] {
        let inode = f.inode(path).await;
        assert_eq!(
            value(&f, inode, "user.startifact:region").await,
            REGIONS[0].as_bytes(),
            "{path}"
        );
        assert_eq!(
            value(&f, inode, "user.startifact:bucket").await,
            LOCAL_BUCKET.as_bytes()
        );
        assert_eq!(
            value(&f, inode, "user.startifact:key").await,
            b"SugarWater@2.0.0"
        );
        assert_ne!(
            value(&f, inode, "user.startifact:etag").await,
            b"forged-etag"
        );
        let mut names = listed(&f, inode).await;
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "each name once: {names:?}");
        assert_eq!(count, 5, "the four own and user.lang");
    }
}

/// Issue 8, defect 3: `rsync -aX` out of the mount reads back every name it lists.
#[tokio::test]
async fn listxattr_lists_only_names_that_getxattr_reads_back() {
    let f = Fixture::new().await;
    let longest = "k".repeat(XATTR_NAME_MAX - "user.".len());
    let too_long = format!("{longest}k");
    let huge = "v".repeat(XATTR_SIZE_MAX + 1);
    version_with(
        &f,
        &[
            ("with\0nul", "a"),
            ("", "empty"),
            (&too_long, "b"),
            (&longest, "fits"),
            ("huge", &huge),
            ("lang", "rust"),
        ],
    )
    .await;
    let inode = f.inode("SugarWater/2.0.0/SugarWater@2.0.0").await;
    let names = listed(&f, inode).await;
    for name in &names {
        let name = String::from_utf8(name.clone()).expect("a UTF-8 name");
        assert!(name.len() <= XATTR_NAME_MAX, "{name}");
        let XattrReply::Size(size) = f.fs.getxattr(inode, &name, 0).await.unwrap() else {
            panic!("a size probe of {name}");
        };
        let XattrReply::Data(data) = f.fs.getxattr(inode, &name, size).await.unwrap() else {
            panic!("the value of {name}");
        };
        assert_eq!(data.len(), size as usize);
    }
    assert_eq!(names.len(), 6, "the four own, lang and the longest name");
    assert!(names.contains(&format!("user.{longest}").into_bytes()));
    assert_eq!(
        errno(f.fs.getxattr(inode, "user.huge", 0).await),
        libc::E2BIG,
        "not listed, but asked by name it says why"
    );
    for unnamed in ["user.with", "user.", &format!("user.{too_long}")] {
        assert_eq!(errno(f.fs.getxattr(inode, unnamed, 0).await), libc::ENODATA);
    }
}

#[tokio::test]
async fn metadata_that_is_not_an_object_of_strings_leaves_the_version_readable() {
    let oversized = format!("{{\"k\": \"{}\"}}", "x".repeat(MAX_METADATA_BYTES + 1));
    for object in [
        &b"{not json"[..],
        br#"{"lang": 1}"#,
        br#"{"lang": null, "team": ["core"]}"#,
        br#"["lang", "rust"]"#,
        b"\xff\xfe",
        oversized.as_bytes(),
    ] {
        let f = Fixture::new().await;
        version_with_metadata_object(&f, object).await;
        let what = String::from_utf8_lossy(&object[..object.len().min(40)]).into_owned();
        assert_eq!(
            names_in(&f, "SugarWater/2.0.0").await,
            ["SugarWater@2.0.0"],
            "{what}"
        );
        assert_eq!(f.read_all("SugarWater/2.0.0/SugarWater@2.0.0").await, BYTES);
        let inode = f.inode("SugarWater/2.0.0").await;
        assert_eq!(listed(&f, inode).await.len(), 4, "only the own: {what}");
        // An object too large to read may hold the attribute: "no such attribute"
        // would be a wrong answer, so it is E2BIG. One that is no metadata has none.
        let expected = if object.len() > MAX_METADATA_BYTES {
            libc::E2BIG
        } else {
            libc::ENODATA
        };
        for name in ["user.lang", "user.k"] {
            assert_eq!(
                errno(f.fs.getxattr(inode, name, 0).await),
                expected,
                "{name} of {what}"
            );
        }
    }
}

#[tokio::test]
async fn a_saved_name_that_is_not_a_plain_name_falls_back_to_project_at_version() {
    let long = "n".repeat(256);
    let longer = "é".repeat(200);
    for name in [
        "",
        ".",
        "..",
        "a/b",
        "../../etc/passwd",
        "/abs",
        "nul\0name",
        &long,
        &longer,
    ] {
        let f = Fixture::new().await;
        version_with(&f, &[("startifact:filename", name)]).await;
        assert_eq!(
            names_in(&f, "SugarWater/2.0.0").await,
            ["SugarWater@2.0.0"],
            "{name:?}"
        );
        assert_eq!(f.read_all("SugarWater/2.0.0/SugarWater@2.0.0").await, BYTES);
    }
}

#[tokio::test]
async fn a_saved_name_of_255_bytes_is_the_files_name() {
    let f = Fixture::new().await;
    let name = format!("{}.tar", "n".repeat(251));
    version_with(&f, &[("startifact:filename", &name)]).await;
    assert_eq!(names_in(&f, "SugarWater/2.0.0").await, [name.as_str()]);
    assert_eq!(f.read_all(&format!("SugarWater/2.0.0/{name}")).await, BYTES);
}

#[tokio::test]
async fn keys_under_the_project_that_are_not_versions_are_not_listed_or_found() {
    let f = Fixture::new().await;
    for key in [
        "SugarWater@notaversion",
        "SugarWater@1.0",
        "SugarWater@v2.0.0",
        "SugarWater@2.0.0/deep/key",
        "SugarWater@",
        "SugarWater/1.0.0",
        "SugarWater/notaversion/x",
        "SugarWater",
        "@1.0.0",
        "bad name@1.0.0",
    ] {
        put_everywhere(&f, key, BYTES).await;
    }
    assert_eq!(names_in(&f, PROJECT).await, ["latest", "1.0.0", "0.9.0"]);
    let root: Vec<String> =
        f.fs.readdir(ROOT_INODE)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
    assert!(root.contains(&PROJECT.to_string()), "{root:?}");
    for name in &root {
        assert!(
            crate::protocol::validate_project_name(name).is_ok(),
            "{name:?} in {root:?}"
        );
    }
    for path in [
        "SugarWater/notaversion",
        "SugarWater/1.0",
        "SugarWater/2.0.0",
    ] {
        assert_eq!(errno(f.lookup(path).await), libc::ENOENT, "{path}");
    }
}

#[tokio::test]
async fn bytes_replaced_under_an_open_reader_are_eio_never_the_new_bytes() {
    let f = Fixture::new().await;
    let inode = f.inode("SugarWater/1.0.0/dist.txt").await;
    let opened = f.fs.open(inode, false, false, &f.caller).await.unwrap();
    put_everywhere(&f, "SugarWater@1.0.0", b"replaced bytes!!\n").await;
    let read = f.fs.read(opened.handle, 0, 1 << 20).await;
    f.fs.release(opened.handle);
    assert_eq!(errno(read), libc::EIO);
}

#[tokio::test]
async fn metadata_of_megabytes_as_other_tools_write_it_reads_with_the_version() {
    // What the Python tool stages with `--metadata big=<1 MiB>`, and with 20,000 keys:
    // both over the old 1 MiB read bound, both under 16 MiB.
    let big = "b".repeat(1 << 20);
    let keys: Vec<(String, String)> = (0..20_000)
        .map(|n| {
            (
                format!("key{n:05}"),
                format!("value {n} {}", "v".repeat(100)),
            )
        })
        .collect();
    let mut many: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    many.push(("startifact:filename", "many.tar"));
    for (pairs, file) in [
        (
            vec![("big", big.as_str()), ("startifact:filename", "big.tar")],
            "big.tar",
        ),
        (many, "many.tar"),
    ] {
        let f = Fixture::new().await;
        version_with(&f, &pairs).await;
        assert_eq!(names_in(&f, "SugarWater/2.0.0").await, [file]);
        assert_eq!(f.read_all(&format!("SugarWater/2.0.0/{file}")).await, BYTES);
        let inode = f.inode("SugarWater/2.0.0").await;
        if file == "big.tar" {
            assert_eq!(
                errno(f.fs.getxattr(inode, "user.big", 0).await),
                libc::E2BIG
            );
        } else {
            assert_eq!(
                value(&f, inode, "user.key19999").await,
                keys[19_999].1.as_bytes()
            );
            assert!(listed(&f, inode).await.len() > 1_000, "a full list");
        }
    }
}
