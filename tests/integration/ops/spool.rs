//! The spool of a file that was not staged: a writer killed by a signal publishes
//! nothing, and neither does a close that finds the version staged meanwhile (EEXIST);
//! the file is kept (across restarts), reported in `status.json`, staged by closing it
//! again (`touch`) and discarded by `rm`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use startifact::protocol::Error;

use crate::support::files::{project, random_bytes};
use crate::support::mount::Mount;
use crate::support::staging::{cli_stage, close, downloaded, status_of, v};
use crate::support::world::{run_ok, World};

/// Runs `cp` from a FIFO into `dest`, feeds it `bytes`, waits until the mount holds
/// them, and kills `cp` with `signal`.
fn kill_cp_mid_copy(dest: &Path, bytes: &[u8], signal: i32, scratch: &Path) {
    let fifo = scratch.join(format!("fifo-{signal}"));
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let mut cp = Command::new("cp")
        .arg(&fifo)
        .arg(dest)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut feed = OpenOptions::new().write(true).open(&fifo).unwrap();
    feed.write_all(bytes).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0) < bytes.len() as u64 {
        assert!(Instant::now() < deadline, "cp did not write");
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(cp.id() as i32, signal) };
    let status = cp.wait().unwrap();
    assert!(!status.success());
    drop(feed);
}

/// Kills a `cp` into `{p}/{version}/part.bin` with `signal`; returns the file's path.
fn killed_copy(world: &World, mount: &Mount, p: &str, version: &str, signal: i32) -> PathBuf {
    let folder = mount.join(&format!("{p}/{version}"));
    std::fs::create_dir_all(&folder).unwrap();
    let file = folder.join("part.bin");
    kill_cp_mid_copy(&file, &killed_bytes(), signal, world.scratch.path());
    file
}

fn killed_bytes() -> Vec<u8> {
    random_bytes(1 << 20, 5)
}

/// What a writer killed by `signal` leaves: nothing published, the file kept and
/// reported as abandoned.
async fn killed_by(world: &World, signal: i32) {
    let p = project(world, "Kill");
    let mount = Mount::start(world, &[]);
    let file = killed_copy(world, &mount, &p, "1.0.0", signal);
    let session = world.session(true);
    let artifact = session.get(&p, Some(&v("1.0.0"))).await.unwrap();
    let err = artifact.locate().await.unwrap_err();
    assert!(matches!(err, Error::ArtifactNotFound { .. }), "{err}");
    let entry = status_of(&mount, &p, "1.0.0").unwrap();
    assert_eq!(entry["state"], "abandoned");
    assert!(
        entry["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("killed by signal {signal}")),
        "{entry}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), killed_bytes());
    assert!(mount.log().contains("not staged, kept in the spool"));
}

async fn a_writer_killed_by_sigint_publishes_nothing_and_its_file_is_kept(world: World) {
    killed_by(&world, libc::SIGINT).await;
}
on_both_backends!(a_writer_killed_by_sigint_publishes_nothing_and_its_file_is_kept);

async fn a_writer_killed_by_sigkill_publishes_nothing_and_its_file_is_kept(world: World) {
    killed_by(&world, libc::SIGKILL).await;
}
on_both_backends!(a_writer_killed_by_sigkill_publishes_nothing_and_its_file_is_kept);

async fn a_kept_file_survives_a_restart_of_the_daemon(world: World) {
    let p = project(&world, "Restart");
    let mount = Mount::start(&world, &[]);
    killed_copy(&world, &mount, &p, "1.0.1", libc::SIGKILL);
    let mount = Mount::restart(&world, &[], mount);
    let kept = mount.join(&format!("{p}/1.0.1/part.bin"));
    assert_eq!(std::fs::read(&kept).unwrap(), killed_bytes());
}
on_both_backends!(a_kept_file_survives_a_restart_of_the_daemon);

async fn touch_stages_a_kept_file(world: World) {
    let p = project(&world, "Touch");
    let mount = Mount::start(&world, &[]);
    killed_copy(&world, &mount, &p, "1.0.1", libc::SIGKILL);
    let mount = Mount::restart(&world, &[], mount);
    run_ok(Command::new("touch").arg(mount.join(&format!("{p}/1.0.1/part.bin"))));
    assert_eq!(downloaded(&world, &p, "1.0.1").await.0, killed_bytes());
    assert!(status_of(&mount, &p, "1.0.1").is_none());
}
on_both_backends!(touch_stages_a_kept_file);

async fn rm_discards_a_kept_file(world: World) {
    let p = project(&world, "Discard");
    let mount = Mount::start(&world, &[]);
    killed_copy(&world, &mount, &p, "1.0.0", libc::SIGINT);
    let mount = Mount::restart(&world, &[], mount);
    std::fs::remove_file(mount.join(&format!("{p}/1.0.0/part.bin"))).unwrap();
    std::fs::remove_dir(mount.join(&format!("{p}/1.0.0"))).unwrap();
    assert!(status_of(&mount, &p, "1.0.0").is_none());
    assert!(!mount.join(&format!("{p}/1.0.0")).exists());
}
on_both_backends!(rm_discards_a_kept_file);

/// The file a test writes itself, named after its project: a close is final only when
/// the closing process holds no other descriptor of that name, and the tests of one
/// binary share a process.
fn ours(p: &str) -> String {
    format!("ours-{p}.bin")
}

/// Writes `our bytes` into `{p}/1.0.0/ours-{p}.bin`, has the CLI stage `theirs` as the same
/// version meanwhile, and returns the folder and close()'s result.
fn staged_meanwhile(world: &World, mount: &Mount, p: &str) -> (PathBuf, Result<(), i32>) {
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let mut ours = std::fs::File::create(folder.join(ours(p))).unwrap();
    ours.write_all(b"our bytes").unwrap();
    cli_stage(world, p, "1.0.0", b"theirs", &[]);
    (folder, close(ours))
}

async fn a_close_after_the_version_was_staged_meanwhile_is_eexist(world: World) {
    let p = project(&world, "Race");
    let mount = Mount::start(&world, &[]);
    let (_, closed) = staged_meanwhile(&world, &mount, &p);
    assert_eq!(closed, Err(libc::EEXIST), "{}", mount.log());
    assert!(mount.log().contains("exists"), "{}", mount.log());
}
on_both_backends!(a_close_after_the_version_was_staged_meanwhile_is_eexist);

async fn a_failed_stage_keeps_its_file_and_status_says_failed(world: World) {
    let p = project(&world, "Failed");
    let mount = Mount::start(&world, &[]);
    let (folder, _) = staged_meanwhile(&world, &mount, &p);
    assert_eq!(std::fs::read(folder.join(ours(&p))).unwrap(), b"our bytes");
    assert_eq!(status_of(&mount, &p, "1.0.0").unwrap()["state"], "failed");
}
on_both_backends!(a_failed_stage_keeps_its_file_and_status_says_failed);

async fn closing_a_failed_file_again_fails_the_same_way(world: World) {
    let p = project(&world, "Again");
    let mount = Mount::start(&world, &[]);
    let (folder, _) = staged_meanwhile(&world, &mount, &p);
    let again = OpenOptions::new()
        .write(true)
        .open(folder.join(ours(&p)))
        .unwrap();
    assert_eq!(close(again), Err(libc::EEXIST));
}
on_both_backends!(closing_a_failed_file_again_fails_the_same_way);

async fn rm_discards_a_failed_file_and_the_other_stagers_version_reads(world: World) {
    let p = project(&world, "Theirs");
    let mount = Mount::start(&world, &[]);
    let (folder, _) = staged_meanwhile(&world, &mount, &p);
    std::fs::remove_file(folder.join(ours(&p))).unwrap();
    std::fs::remove_dir(&folder).unwrap();
    assert_eq!(
        std::fs::read(folder.join(format!("{p}@1.0.0"))).unwrap(),
        b"theirs"
    );
}
on_both_backends!(rm_discards_a_failed_file_and_the_other_stagers_version_reads);
