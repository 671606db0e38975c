//! A spool changed behind the writer's back is never published: the stage checks the
//! bytes it uploads against the MD5 taken while they were written (the whole file for
//! one PUT, each part for a multipart upload). The check is the daemon's own, the same
//! over every backend; the local store keeps the test fast.

use std::io::Write;
use std::os::fd::IntoRawFd;
use std::os::unix::fs::FileExt;

use crate::support::files::{project, random_bytes};
use crate::support::mount::Mount;
use crate::support::world::{run, World, WorldOptions};

/// Writes `content` through the mount, overwrites the start of the spooled copy with
/// other bytes before the close, and returns close()'s errno.
fn write_then_tamper(mount: &Mount, p: &str, version: &str, content: &[u8]) -> Option<i32> {
    let folder = mount.join(&format!("{p}/{version}"));
    std::fs::create_dir_all(&folder).unwrap();
    let mut file = std::fs::File::create(folder.join("dist.bin")).unwrap();
    file.write_all(content).unwrap();
    let spooled = mount.staging_dir().join(p).join(version).join("data");
    let on_disk = std::fs::OpenOptions::new()
        .write(true)
        .open(&spooled)
        .unwrap();
    on_disk.write_all_at(b"EVIL! artifact", 0).unwrap();
    on_disk.sync_all().unwrap();
    let fd = file.into_raw_fd();
    if unsafe { libc::close(fd) } == 0 {
        None
    } else {
        std::io::Error::last_os_error().raw_os_error()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_changed_before_the_stage_is_never_published() {
    let world = World::local(WorldOptions::default()).await;
    let p = project(&world, "Tampered");
    let mount = Mount::start(&world, &["--part-size", "5M"]);
    for (version, size) in [("1.0.0", 100_000), ("2.0.0", 12 << 20)] {
        let content = random_bytes(size, 3);
        let errno = write_then_tamper(&mount, &p, version, &content);
        assert_eq!(errno, Some(libc::EIO), "{version}: {}", mount.log());
        let (code, stdout, _) = run(world.cli().args([p.as_str(), version, "--download", "-"]));
        assert!(code != 0 && stdout.is_empty(), "{version} was published");
        let status = std::fs::read_to_string(mount.staging_dir().join("status.json")).unwrap();
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        let entry = status["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["version"] == version)
            .cloned()
            .unwrap_or_default();
        assert_eq!(entry["state"], "failed", "{entry}");
        assert!(
            entry["reason"]
                .as_str()
                .unwrap_or("")
                .contains("changed since"),
            "{entry}"
        );
    }
}
