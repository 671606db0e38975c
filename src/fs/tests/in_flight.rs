//! A staging file in flight (opened for writing, its last descriptor not closed yet):
//! every change to it, or to the metadata staged with it, comes from its writers'
//! process tree (EACCES otherwise); the stage runs at the close of the last descriptor
//! of any kind that tree holds; a hidden name stages only at the rename to its final
//! name, whoever makes it once the writer closed.
//!
//! The writer here is this test process; pid 1 (init) is a process outside its tree,
//! and a `sleep` it starts is a process inside it.

use std::process::{Child, Command};

use super::fixture::{errno, Fixture, NEW_BYTES, NEW_FILE, REGIONS};
use crate::fs::{AttrChange, Caller, SetMode};

const NEW_KEY: &str = "SugarWater@1.1.0";
/// A process outside the test process's tree.
const OUTSIDER: u32 = 1;

/// A child of this test process: a process of the writer's tree.
struct TreeMember(Child);

impl TreeMember {
    fn start() -> Self {
        TreeMember(Command::new("sleep").arg("30").spawn().expect("sleep runs"))
    }

    fn caller(&self) -> Caller {
        let me = Caller::daemon();
        Caller::new(me.uid, me.gid, self.0.id())
    }
}

impl Drop for TreeMember {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The entry of 1.1.0 in the spool's `status.json`.
fn status(f: &Fixture) -> serde_json::Value {
    let staging = f.staging.as_ref().expect("a staging folder");
    let text = std::fs::read_to_string(staging.dir().join("status.json")).unwrap();
    let document: serde_json::Value = serde_json::from_str(&text).unwrap();
    document["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["version"] == "1.1.0")
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn changes_to_a_file_in_flight_from_outside_its_writers_tree_are_eacces() {
    let f = Fixture::new().await;
    let handle = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    let folder = f.inode("SugarWater/1.1.0").await;
    let file = f.inode("SugarWater/1.1.0/app.tar").await;
    let truncate = AttrChange {
        size: Some(4),
        ..AttrChange::default()
    };
    let outsider = Caller::new(f.caller.uid, f.caller.gid, OUTSIDER);

    let refused = [
        errno(f.fs.setattr(file, truncate, OUTSIDER).await),
        errno(
            f.fs.rename(folder, NEW_FILE, folder, "b.tar", OUTSIDER)
                .await,
        ),
        errno(f.fs.unlink(folder, NEW_FILE, OUTSIDER).await),
        errno(
            f.fs.setxattr(file, "user.a", b"1", SetMode::Any, OUTSIDER)
                .await,
        ),
        errno(
            f.fs.setxattr(folder, "user.a", b"1", SetMode::Any, OUTSIDER)
                .await,
        ),
        errno(f.fs.removexattr(folder, "user.a", OUTSIDER).await),
        errno(f.fs.open(file, true, false, &outsider).await),
    ];
    assert_eq!(
        refused,
        [libc::EACCES; 7],
        "truncate, mv, rm, setfattr x2, removexattr, open"
    );

    // The writer's own changes are taken, and nothing the outsider asked for was made.
    f.fs.setxattr(folder, "user.a", b"1", SetMode::Any, f.pid())
        .await
        .unwrap();
    f.fs.setattr(file, truncate, f.pid()).await.unwrap();
    f.close(handle).await.unwrap();
    assert_eq!(f.object(REGIONS[0], NEW_KEY).await, &NEW_BYTES[..4]);
}

#[tokio::test]
async fn once_its_last_handle_is_released_the_file_takes_changes_from_anyone() {
    let f = Fixture::new().await;
    let handle = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    f.fs.release(handle);
    let folder = f.inode("SugarWater/1.1.0").await;
    f.fs.unlink(folder, NEW_FILE, OUTSIDER).await.unwrap();
    assert_eq!(
        errno(f.lookup("SugarWater/1.1.0/app.tar").await),
        libc::ENOENT
    );
}

#[tokio::test]
async fn a_writer_tree_holding_a_read_descriptor_stages_at_its_last_close() {
    let f = Fixture::new().await;
    let child = TreeMember::start();
    let writer = f.start_writing("1.1.0", NEW_FILE, b"").await;
    let file = f.inode("SugarWater/1.1.0/app.tar").await;
    let reader =
        f.fs.open(file, false, false, &child.caller())
            .await
            .unwrap();
    f.fs.write(writer, 0, NEW_BYTES, f.pid()).await.unwrap();

    f.close(writer).await.unwrap();
    assert!(
        f.regions_holding(NEW_KEY).await.is_empty(),
        "a descriptor remains"
    );
    let entry = status(&f);
    assert_eq!(entry["state"], "writing", "{entry}");
    assert_eq!(entry["size"], NEW_BYTES.len(), "{entry}");

    f.fs.flush(reader.handle, child.0.id()).await.unwrap();
    f.fs.release(reader.handle);
    assert_eq!(f.regions_holding(NEW_KEY).await, REGIONS);
}

#[tokio::test]
async fn a_reader_outside_the_writers_tree_neither_holds_nor_runs_the_stage() {
    let f = Fixture::new().await;
    let writer = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    let file = f.inode("SugarWater/1.1.0/app.tar").await;
    let outsider = Caller::new(f.caller.uid, f.caller.gid, OUTSIDER);
    let reader = f.fs.open(file, false, false, &outsider).await.unwrap();
    f.close(writer).await.unwrap();
    assert_eq!(f.regions_holding(NEW_KEY).await, REGIONS);
    f.fs.flush(reader.handle, OUTSIDER).await.unwrap();
    f.fs.release(reader.handle);
}

#[tokio::test]
async fn reading_a_kept_file_and_closing_it_stages_nothing() {
    let f = Fixture::new().await;
    let handle = f.start_writing("1.1.0", NEW_FILE, NEW_BYTES).await;
    f.fs.release(handle);
    assert_eq!(f.read_all("SugarWater/1.1.0/app.tar").await, NEW_BYTES);
    let file = f.inode("SugarWater/1.1.0/app.tar").await;
    let reader = f.fs.open(file, false, false, &f.caller).await.unwrap();
    f.close(reader.handle).await.unwrap();
    assert!(f.regions_holding(NEW_KEY).await.is_empty());
}

#[tokio::test]
async fn a_hidden_name_never_stages_at_close_and_the_rename_stages_it_once() {
    let f = Fixture::new().await;
    f.cp("1.1.0", ".app.tar", NEW_BYTES).await.unwrap();
    assert!(f.regions_holding(NEW_KEY).await.is_empty());
    assert_eq!(status(&f)["state"], "awaiting-rename");
    // Closed: the rename may come from another process (`mv` after `cp`).
    let folder = f.inode("SugarWater/1.1.0").await;
    f.fs.rename(folder, ".app.tar", folder, NEW_FILE, OUTSIDER)
        .await
        .unwrap();
    assert_eq!(f.regions_holding(NEW_KEY).await, REGIONS);
    assert_eq!(f.read_all("SugarWater/1.1.0/app.tar").await, NEW_BYTES);
}
