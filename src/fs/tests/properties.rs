//! Property tests over the names and values users and tools hand the model: project
//! names, versions, attribute names and values, file names (`.`, `..`, `/`, NUL, what
//! is left of names that were not UTF-8, and names around 255 bytes). Whatever the
//! input, never a panic, an errno of the call's own rows in docs/SEMANTICS.md, and a
//! name the model accepts reads back as it was written.
//!
//! One fixture per property (each case would otherwise stage two versions again), and
//! few cases: these run in every `cargo test --lib`.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::fixture::{Fixture, PROJECT};
use crate::fs::{FsResult, SetMode, XattrReply, ROOT_INODE};
use crate::protocol::validate_project_name;

/// Names from users, from scripts gone wrong, and from other filesystems.
fn any_name() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just(PROJECT.to_string()),
        "[a-zA-Z0-9_.@+-]{1,12}",
        "[a-z./]{0,5}/[a-z./]{0,5}",
        "[a-z]{0,4}\u{0}[a-z]{0,4}",
        "[a-z]{250,260}",
        "[é]{125,130}",
        any::<String>().prop_map(|s| s.chars().take(16).collect()),
        // What a name that was not UTF-8 becomes when decoded leniently.
        proptest::collection::vec(any::<u8>(), 0..16)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ]
    .boxed()
}

fn any_version() -> BoxedStrategy<String> {
    prop_oneof![
        "(0|[1-9][0-9]{0,2})\\.(0|[1-9][0-9]{0,2})\\.(0|[1-9][0-9]{0,2})(-[a-z0-9]{1,6}(\\.[a-z0-9]{1,4})?)?(\\+[a-z0-9.]{1,6})?",
        "v?[0-9]{1,3}(\\.[0-9]{1,3}){0,3}",
        "0[0-9]\\.0\\.0",
        any_name(),
    ]
    .boxed()
}

fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The errno of a call that failed, which must be one of `allowed`.
fn errno_among<T>(result: &FsResult<T>, allowed: &[i32], what: &str) -> Result<(), TestCaseError> {
    if let Err(e) = result {
        prop_assert!(
            allowed.contains(&e.errno()),
            "{what}: errno {} ({e}) is not among {allowed:?}",
            e.errno()
        );
    }
    Ok(())
}

#[test]
fn a_lookup_of_any_name_finds_what_is_there_and_else_is_enoent() {
    let rt = runtime();
    let f = rt.block_on(Fixture::new());
    let (project, version) =
        rt.block_on(async { (f.inode(PROJECT).await, f.inode("SugarWater/1.0.0").await) });
    let places = [
        (ROOT_INODE, &[PROJECT][..]),
        (project, &["latest", "0.9.0", "1.0.0"][..]),
        (version, &["dist.txt"][..]),
    ];
    run(96, any_version(), |name| {
        rt.block_on(async {
            for (parent, there) in places {
                let found = f.fs.lookup(parent, &name).await;
                if there.contains(&name.as_str()) {
                    prop_assert!(found.is_ok(), "{name:?} in {parent}");
                } else {
                    let errno = found.map(|_| 0).unwrap_or_else(|e| e.errno());
                    prop_assert_eq!(errno, libc::ENOENT, "{:?} in {}", name, parent);
                }
            }
            Ok(())
        })
    });
}

#[test]
fn a_version_folder_made_reads_back_by_its_name() {
    let rt = runtime();
    let f = rt.block_on(Fixture::new());
    let project = rt.block_on(f.inode(PROJECT));
    run(96, any_version(), |name| {
        rt.block_on(async {
            let made = f.fs.mkdir(project, &name).await;
            errno_among(&made, &[libc::EINVAL, libc::EEXIST], &name)?;
            if let Ok(entry) = made {
                prop_assert!(semver::Version::parse(&name).is_ok(), "{name:?}");
                let found = f.fs.lookup(project, &name).await;
                prop_assert_eq!(found.map(|e| e.attr.inode).ok(), Some(entry.attr.inode));
                let listed = f.fs.readdir(project).await.expect("readdir");
                prop_assert!(listed.iter().any(|e| e.name == name), "{name:?} listed");
            }
            Ok(())
        })
    });
}

#[test]
fn a_project_folder_made_reads_back_by_its_name() {
    let rt = runtime();
    let f = rt.block_on(Fixture::new());
    run(96, any_name(), |name| {
        rt.block_on(async {
            let made = f.fs.mkdir(ROOT_INODE, &name).await;
            // The adapter answers ENAMETOOLONG for such a name before the model hears
            // of it (`mount::translate`); the model itself fails it when the staging
            // folder cannot hold the name.
            let refusals: &[i32] = if name.len() > 255 {
                &[libc::EINVAL, libc::EEXIST, libc::ENAMETOOLONG, libc::EIO]
            } else {
                &[libc::EINVAL, libc::EEXIST]
            };
            errno_among(&made, refusals, &name)?;
            if let Ok(entry) = made {
                prop_assert!(validate_project_name(&name).is_ok(), "{name:?}");
                let found = f.fs.lookup(ROOT_INODE, &name).await;
                prop_assert_eq!(found.map(|e| e.attr.inode).ok(), Some(entry.attr.inode));
                let listed = f.fs.readdir(ROOT_INODE).await.expect("readdir");
                prop_assert!(listed.iter().any(|e| e.name == name), "{name:?} listed");
            }
            Ok(())
        })
    });
}

fn any_attribute() -> BoxedStrategy<(String, Vec<u8>)> {
    let key = prop_oneof![
        any_name(),
        "[a-z]{1,10}",
        "startifact:[a-z]{1,10}",
        Just("startifact:region".to_string()),
    ];
    let value = prop_oneof![
        any::<String>().prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..32),
        Just(Vec::new()),
    ];
    (key, value).boxed()
}

#[test]
fn an_attribute_set_on_a_staging_version_reads_back_and_every_listed_name_reads() {
    let rt = runtime();
    let f = rt.block_on(Fixture::new());
    let folder = rt.block_on(async {
        let project = f.inode(PROJECT).await;
        f.fs.mkdir(project, "1.1.0")
            .await
            .expect("mkdir")
            .attr
            .inode
    });
    let own = ["bucket", "key", "region", "etag", "filename"];
    run(128, any_attribute(), |(key, value)| {
        rt.block_on(async {
            let name = format!("user.{key}");
            let set =
                f.fs.setxattr(folder, &name, &value, SetMode::Any, f.pid())
                    .await;
            errno_among(&set, &[libc::EINVAL, libc::EPERM], &name)?;
            let ignored = key
                .strip_prefix("startifact:")
                .is_some_and(|k| own.contains(&k));
            if set.is_ok() && !ignored {
                prop_assert!(
                    std::str::from_utf8(&value).is_ok(),
                    "{name:?} kept a non-UTF-8 value"
                );
                let read = f.fs.getxattr(folder, &name, 1 << 16).await;
                prop_assert_eq!(
                    read.ok(),
                    Some(XattrReply::Data(value.clone())),
                    "{:?}",
                    name
                );
            }
            let Ok(XattrReply::Data(list)) = f.fs.listxattr(folder, 1 << 16).await else {
                return Err(TestCaseError::fail("listxattr failed"));
            };
            for listed in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
                let listed = std::str::from_utf8(listed).expect("UTF-8 names");
                prop_assert!(listed.len() <= 255);
                prop_assert!(
                    f.fs.getxattr(folder, listed, 1 << 16).await.is_ok(),
                    "{listed:?}"
                );
            }
            Ok(())
        })
    });
}

/// The name a staged file is shown under: the saved name when it is a plain one.
fn shown_name(name: &str, version: &str) -> String {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
        && name.len() <= 255;
    if plain {
        name.to_string()
    } else {
        format!("{PROJECT}@{version}")
    }
}

#[test]
fn a_staged_files_name_reads_back_or_falls_back_to_project_at_version() {
    let rt = runtime();
    let f = rt.block_on(Fixture::new());
    let project = rt.block_on(f.inode(PROJECT));
    let next = std::sync::atomic::AtomicU32::new(0);
    run(24, any_name(), |name| {
        rt.block_on(async {
            let version = format!(
                "2.0.{}",
                next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let folder =
                f.fs.mkdir(project, &version)
                    .await
                    .expect("mkdir")
                    .attr
                    .inode;
            let created = f.fs.create(folder, &name, &f.caller).await;
            errno_among(&created, &[libc::EINVAL, libc::EPERM, libc::EEXIST], &name)?;
            let Ok((_, handle)) = created else {
                return Ok(());
            };
            f.fs.write(handle, 0, b"bytes", f.pid())
                .await
                .expect("write");
            prop_assert!(f.close(handle).await.is_ok(), "close of {name:?}");
            if name.starts_with('.') {
                // A hidden name stages at its rename to a final name, never at close.
                let key = format!("{PROJECT}@{version}");
                prop_assert!(f.regions_holding(&key).await.is_empty(), "{:?}", name);
                return Ok(());
            }
            let shown = shown_name(&name, &version);
            let listed = f.fs.readdir(folder).await.expect("readdir");
            let names: Vec<&str> = listed.iter().map(|e| e.name.as_str()).collect();
            prop_assert_eq!(names, [shown.as_str()], "{:?}", name);
            let file =
                f.fs.lookup(folder, &shown)
                    .await
                    .expect("lookup")
                    .attr
                    .inode;
            let opened =
                f.fs.open(file, false, false, &f.caller)
                    .await
                    .expect("open");
            let read = f.fs.read(opened.handle, 0, 64).await;
            f.fs.release(opened.handle);
            let read = read.ok();
            prop_assert_eq!(read.as_deref(), Some(&b"bytes"[..]));
            Ok(())
        })
    });
}
