//! `rename` of the staging file: within its version it moves, and the rename that gives
//! a temporary file its final name stages it (as rsync does); anything else is refused.
//! (The rename of a pending symlink onto `latest` is in `latest`.)

use super::fixture::{errno, Fixture, NEW_BYTES, NEW_FILE, PROJECT, REGIONS};

const NEW_KEY: &str = "SugarWater@1.1.0";
const TEMPORARY: &str = ".app.tar.Ab12Cd";

#[tokio::test]
async fn closing_a_file_under_rsyncs_temporary_name_stages_nothing() {
    let f = Fixture::new().await;
    f.cp("1.1.0", TEMPORARY, NEW_BYTES).await.unwrap();
    assert!(f.regions_holding(NEW_KEY).await.is_empty());
    let latest = f.inode("SugarWater/latest").await;
    assert_eq!(f.fs.readlink(latest).await.unwrap(), "1.0.0");
}

#[tokio::test]
async fn renaming_the_temporary_file_to_its_final_name_stages_it() {
    let f = Fixture::new().await;
    f.cp("1.1.0", TEMPORARY, NEW_BYTES).await.unwrap();
    let folder = f.inode("SugarWater/1.1.0").await;
    f.fs.rename(folder, TEMPORARY, folder, NEW_FILE, f.pid())
        .await
        .unwrap();
    assert_eq!(f.regions_holding(NEW_KEY).await, REGIONS);
    assert_eq!(f.read_all("SugarWater/1.1.0/app.tar").await, NEW_BYTES);
    let latest = f.inode("SugarWater/latest").await;
    assert_eq!(f.fs.readlink(latest).await.unwrap(), "1.1.0");
}

#[tokio::test]
async fn renaming_the_file_out_of_a_hidden_folder_stages_it() {
    let f = Fixture::new().await;
    let project = f.inode(PROJECT).await;
    let folder = f.fs.mkdir(project, "1.1.0").await.unwrap().attr.inode;
    let hidden = f.fs.mkdir(folder, ".~tmp~").await.unwrap().attr.inode;
    let (_, handle) = f.fs.create(hidden, NEW_FILE, &f.caller).await.unwrap();
    f.fs.write(handle, 0, NEW_BYTES, f.pid()).await.unwrap();
    f.close(handle).await.unwrap();
    assert!(f.regions_holding(NEW_KEY).await.is_empty());
    f.fs.rename(hidden, NEW_FILE, folder, NEW_FILE, f.pid())
        .await
        .unwrap();
    assert_eq!(f.regions_holding(NEW_KEY).await, REGIONS);
}

#[tokio::test]
async fn renaming_to_another_temporary_name_moves_it_without_a_stage() {
    let f = Fixture::new().await;
    f.cp("1.1.0", TEMPORARY, NEW_BYTES).await.unwrap();
    let folder = f.inode("SugarWater/1.1.0").await;
    f.fs.rename(folder, TEMPORARY, folder, ".app.tar.Zz99Yy", f.pid())
        .await
        .unwrap();
    assert!(f.regions_holding(NEW_KEY).await.is_empty());
    f.lookup("SugarWater/1.1.0/.app.tar.Zz99Yy").await.unwrap();
}

#[tokio::test]
async fn renaming_the_file_onto_a_hidden_folder_is_eisdir() {
    let f = Fixture::new().await;
    f.cp("1.1.0", TEMPORARY, NEW_BYTES).await.unwrap();
    let folder = f.inode("SugarWater/1.1.0").await;
    f.fs.mkdir(folder, ".~tmp~").await.unwrap();
    assert_eq!(
        errno(
            f.fs.rename(folder, TEMPORARY, folder, ".~tmp~", f.pid())
                .await
        ),
        libc::EISDIR
    );
}

#[tokio::test]
async fn renaming_the_file_into_another_version_is_eperm() {
    let f = Fixture::new().await;
    f.cp("1.1.0", TEMPORARY, NEW_BYTES).await.unwrap();
    let folder = f.inode("SugarWater/1.1.0").await;
    let project = f.inode(PROJECT).await;
    let other = f.fs.mkdir(project, "1.2.0").await.unwrap().attr.inode;
    assert_eq!(
        errno(
            f.fs.rename(folder, TEMPORARY, other, NEW_FILE, f.pid())
                .await
        ),
        libc::EPERM
    );
    assert_eq!(
        errno(
            f.fs.rename(folder, TEMPORARY, project, NEW_FILE, f.pid())
                .await
        ),
        libc::EPERM,
        "out of its version"
    );
}

#[tokio::test]
async fn renaming_a_name_that_is_not_the_file_is_enoent() {
    let f = Fixture::new().await;
    f.cp("1.1.0", TEMPORARY, NEW_BYTES).await.unwrap();
    let folder = f.inode("SugarWater/1.1.0").await;
    assert_eq!(
        errno(
            f.fs.rename(folder, "other.tar", folder, NEW_FILE, f.pid())
                .await
        ),
        libc::ENOENT
    );
}

#[tokio::test]
async fn renaming_a_staged_file_or_version_is_eperm() {
    let f = Fixture::new().await;
    let version = f.inode("SugarWater/1.0.0").await;
    assert_eq!(
        errno(
            f.fs.rename(version, "dist.txt", version, "renamed.txt", f.pid())
                .await
        ),
        libc::EPERM
    );
    let project = f.inode(PROJECT).await;
    assert_eq!(
        errno(
            f.fs.rename(project, "1.0.0", project, "1.0.1", f.pid())
                .await
        ),
        libc::EPERM
    );
}
