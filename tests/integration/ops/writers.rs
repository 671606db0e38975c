//! Writers through the mount: any write pattern stages the bytes as written, a writer
//! that fails (killed by SIGPIPE, exiting with a failure status) publishes nothing and
//! its file is kept to retry, and what a writer synced survives a crash of the daemon.

use std::io::Write;
use std::process::Command;

use md5::{Digest, Md5};

use crate::support::files::{errno_of, project, random_bytes};
use crate::support::mount::Mount;
use crate::support::staging::status_of;
use crate::support::staging::{in_any_region, object_in};
use crate::support::world::{run_ok, World, REGIONS};

/// A shell command line with `path` quoted.
fn quoted(path: &std::path::Path) -> String {
    format!("'{}'", path.display())
}

async fn writes_out_of_order_stage_the_bytes_as_written(world: World) {
    let p = project(&world, "Seek");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    // Over the multipart threshold (16 MiB), so the MD5 recorded beside the parts is
    // the one the stage computed again, the file not having been written front to back.
    let content = random_bytes(20 << 20, 17);
    let (front, back) = content.split_at(10 << 20);
    let front_file = world.file("front.bin", front);
    let back_file = world.file("back.bin", back);
    // The shell holds the file open for writing; dd writes the second half first, then
    // the first, through its own descriptors; the shell's close stages.
    let target = folder.join("app.bin");
    run_ok(Command::new("bash").arg("-c").arg(format!(
        "set -e; exec 3>{target}; \
         dd if={back} of=/dev/fd/3 bs=1M seek=10 conv=notrunc status=none; \
         dd if={front} of=/dev/fd/3 bs=1M conv=notrunc status=none; \
         exec 3>&-",
        target = quoted(&target),
        back = quoted(&back_file),
        front = quoted(&front_file),
    )));

    let key = format!("{p}@1.0.0");
    let md5 = hex::encode(Md5::digest(&content));
    for region in REGIONS {
        let info = world.head_in(region, &key).await;
        assert_eq!(info.known_md5().as_deref(), Some(md5.as_str()), "{region}");
        let bytes = object_in(&world, region, &key).await.unwrap();
        assert!(bytes == content, "{region} holds other bytes");
    }
}
on_both_backends!(writes_out_of_order_stage_the_bytes_as_written);

async fn a_writer_killed_by_sigpipe_publishes_nothing_and_its_file_is_kept(world: World) {
    let p = project(&world, "Pipe");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    // `head` stops reading: `tee`, writing to it and to the file, dies of SIGPIPE.
    let target = folder.join("log.txt");
    run_ok(Command::new("bash").arg("-c").arg(format!(
        "yes | tee {} | head -c 100000 > /dev/null",
        quoted(&target)
    )));

    assert!(!in_any_region(&world, &format!("{p}@1.0.0")).await);
    assert_eq!(
        errno_of(std::fs::read_link(mount.join(&format!("{p}/latest")))),
        libc::ENOENT
    );
    let entry = status_of(&mount, &p, "1.0.0").unwrap();
    assert_eq!(entry["state"], "abandoned", "{entry}");
    let reason = entry["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("killed by signal {}", libc::SIGPIPE)),
        "{entry}"
    );
    assert!(std::fs::metadata(&target).unwrap().len() > 0);
}
on_both_backends!(a_writer_killed_by_sigpipe_publishes_nothing_and_its_file_is_kept);

async fn a_writer_exiting_with_a_failure_publishes_nothing_and_touch_stages_it(world: World) {
    let p = project(&world, "Fail");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let target = folder.join("build.txt");
    // The shell exits with status 3 while it holds the file: the close at its exit.
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "exec 3>{}; printf 'half a build' >&3; exit 3",
            quoted(&target)
        ))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3));

    let key = format!("{p}@1.0.0");
    assert!(!in_any_region(&world, &key).await);
    let entry = status_of(&mount, &p, "1.0.0").unwrap();
    assert_eq!(entry["state"], "abandoned", "{entry}");
    assert!(
        entry["reason"]
            .as_str()
            .unwrap()
            .contains("exited with status 3"),
        "{entry}"
    );

    run_ok(Command::new("touch").arg(&target));
    for region in REGIONS {
        assert_eq!(
            object_in(&world, region, &key).await.as_deref(),
            Some(&b"half a build"[..]),
            "{region}"
        );
    }
    assert!(status_of(&mount, &p, "1.0.0").is_none());
}
on_both_backends!(a_writer_exiting_with_a_failure_publishes_nothing_and_touch_stages_it);

async fn a_synced_file_survives_a_killed_daemon_and_stages_on_retry(world: World) {
    let p = project(&world, "Sync");
    let mut mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let content = random_bytes(3 << 20, 23);
    let mut file = std::fs::File::create(folder.join("app.bin")).unwrap();
    file.write_all(&content).unwrap();
    file.sync_all().unwrap();

    mount.kill();
    drop(file);
    let mount = Mount::restart(&world, &[], mount);
    let kept = mount.join(&format!("{p}/1.0.0/app.bin"));
    assert!(
        std::fs::read(&kept).unwrap() == content,
        "the spool lost bytes"
    );
    let entry = status_of(&mount, &p, "1.0.0").unwrap();
    assert_eq!(entry["state"], "abandoned", "{entry}");
    assert_eq!(entry["size"], content.len(), "{entry}");
    let key = format!("{p}@1.0.0");
    assert!(!in_any_region(&world, &key).await);

    run_ok(Command::new("touch").arg(&kept));
    for region in REGIONS {
        let bytes = object_in(&world, region, &key).await;
        assert!(bytes.as_deref() == Some(&content[..]), "{region}");
    }
}
on_both_backends!(a_synced_file_survives_a_killed_daemon_and_stages_on_retry);
