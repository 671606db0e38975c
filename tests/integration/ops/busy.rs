//! While the stage of a staging file runs, every change to that file answers EBUSY:
//! opening it for writing, truncating, removing and renaming it, and setting or
//! removing metadata on it or its version folder; the stage then completes. Moto only: the stage is held in flight by a proxy that hangs every
//! region's requests until released, which the local store has no wire for.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::support::files::{errno_of, project, removexattr, setxattr, truncate};
use crate::support::moto::Moto;
use crate::support::mount::Mount;
use crate::support::proxy::{FaultProxy, Mode};
use crate::support::staging::{close, staged_metadata, status_of};
use crate::support::world::{World, WorldOptions, REGIONS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_to_a_file_being_staged_answer_ebusy() {
    let mut world = World::moto(WorldOptions::default()).await;
    let proxy = FaultProxy::start(&Moto::shared().url);
    for region in REGIONS {
        world.region_endpoints.insert(region.into(), proxy.url());
    }
    let p = project(&world, "Busy");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    setxattr(&folder, "user.early", b"1").unwrap();
    let path = folder.join("app.bin");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(b"being staged").unwrap();

    // The writer's close runs the stage, which hangs at the proxy until released.
    proxy.set_mode(Mode::Hang);
    let closing = std::thread::spawn(move || close(file));
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_of(&mount, &p, "1.0.0").unwrap()["state"] != "staging" {
        assert!(Instant::now() < deadline, "the stage did not start");
        std::thread::sleep(Duration::from_millis(20));
    }

    let for_writing = std::fs::OpenOptions::new().write(true).open(&path);
    assert_eq!(errno_of(for_writing), libc::EBUSY);
    assert_eq!(truncate(&path, 0), Err(libc::EBUSY));
    assert_eq!(errno_of(std::fs::remove_file(&path)), libc::EBUSY);
    assert_eq!(
        errno_of(std::fs::rename(&path, folder.join("renamed.bin"))),
        libc::EBUSY
    );
    // What the stage publishes was taken at its start: metadata waits too (accepted,
    // it would differ from what the regions hold, and their copies would look like
    // someone else's to the repair).
    assert_eq!(setxattr(&path, "user.late", b"1"), Err(libc::EBUSY));
    assert_eq!(setxattr(&folder, "user.late", b"1"), Err(libc::EBUSY));
    assert_eq!(removexattr(&folder, "user.early"), Err(libc::EBUSY));
    assert!(!closing.is_finished(), "the stage ended before the checks");

    // Released (the held requests are dropped and retried): the stage completes.
    proxy.set_mode(Mode::Forward);
    assert_eq!(closing.join().unwrap(), Ok(()), "{}", mount.log());
    assert_eq!(std::fs::read(&path).unwrap(), b"being staged");
    assert!(status_of(&mount, &p, "1.0.0").is_none());
    let metadata = staged_metadata(&world, &p, "1.0.0").await;
    assert_eq!(metadata.get("early").map(String::as_str), Some("1"));
    assert!(!metadata.contains_key("late"), "{metadata:?}");
}
