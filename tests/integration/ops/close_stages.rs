//! flush and release: the writer's close of its last descriptor stages the file to every
//! region (`cp`, `rsync` in every mode, `dd`, a shell redirection); a child's close at
//! exec does not; a stage moves `latest` only forward, and leaves nothing in the spool.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::support::files::{errno_of, project, random_bytes};
use crate::support::mount::Mount;
use crate::support::staging::{
    close, downloaded, in_every_region, is_staged, names_in, status_len,
};
use crate::support::world::{run_ok, World, WorldOptions};

async fn cp_stages_to_every_region_on_close(world: World) {
    let p = project(&world, "Cp");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    run_ok(Command::new("mkdir").arg("-p").arg(&folder));
    let content = random_bytes(3 << 20, 7);
    run_ok(
        Command::new("cp")
            .arg(world.file("dist.tar.gz", &content))
            .arg(&folder),
    );
    // An ordinary, immutable version now, in every region.
    let artifact = folder.join("dist.tar.gz");
    assert_eq!(std::fs::read(&artifact).unwrap(), content);
    let mode = std::fs::metadata(&artifact).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o444);
    assert!(in_every_region(&world, &format!("{p}@1.0.0")).await);
    assert_eq!(downloaded(&world, &p, "1.0.0").await.0, content);
    assert_eq!(
        std::fs::read_link(mount.join(&format!("{p}/latest"))).unwrap(),
        Path::new("1.0.0")
    );
    assert_eq!(status_len(&mount), 0, "left in the spool");
}
on_both_backends!(cp_stages_to_every_region_on_close);

/// rsync -a with `mode` into a new version: one file, no temporary left behind, staged
/// with its name.
async fn rsync_stages_one_file(world: &World, mode: &str) {
    let p = project(world, "Rsync");
    let mount = Mount::start(world, &[]);
    let tree = world.dir("tree");
    let app = random_bytes(700_000, 9);
    std::fs::write(tree.join("app.bin"), &app).unwrap();
    // The project first: rsync makes the version folder itself, not its parents.
    std::fs::create_dir(mount.join(&p)).unwrap();
    let target = mount.join(&format!("{p}/1.1.0/"));
    let mut rsync = Command::new("rsync");
    rsync.arg("-a");
    if !mode.is_empty() {
        rsync.arg(mode);
    }
    run_ok(rsync.arg(format!("{}/", tree.display())).arg(&target));
    assert_eq!(names_in(&target), vec!["app.bin"], "rsync {mode}");
    let (bytes, metadata) = downloaded(world, &p, "1.1.0").await;
    assert_eq!(bytes, app, "rsync {mode}");
    assert!(metadata.contains(&("startifact:filename".into(), "app.bin".into())));
    assert_eq!(status_len(&mount), 0, "left in the spool");
}

async fn rsync_in_its_default_mode_stages_one_file(world: World) {
    rsync_stages_one_file(&world, "").await;
}
on_both_backends!(rsync_in_its_default_mode_stages_one_file);

async fn rsync_inplace_stages_one_file(world: World) {
    rsync_stages_one_file(&world, "--inplace").await;
}
on_both_backends!(rsync_inplace_stages_one_file);

async fn rsync_partial_stages_one_file(world: World) {
    rsync_stages_one_file(&world, "--partial").await;
}
on_both_backends!(rsync_partial_stages_one_file);

async fn rsync_delay_updates_stages_one_file(world: World) {
    rsync_stages_one_file(&world, "--delay-updates").await;
}
on_both_backends!(rsync_delay_updates_stages_one_file);

async fn dd_with_large_blocks_and_fsync_stages(world: World) {
    let p = project(&world, "Dd");
    let mount = Mount::start(&world, &[]);
    let content = random_bytes(3 << 20, 7);
    let source = world.file("dist.tar.gz", &content);
    let folder = mount.join(&format!("{p}/1.2.0"));
    std::fs::create_dir_all(&folder).unwrap();
    run_ok(
        Command::new("dd")
            .arg(format!("if={}", source.display()))
            .arg(format!("of={}", folder.join("dd.bin").display()))
            .args(["bs=4M", "conv=fsync", "status=none"]),
    );
    assert_eq!(downloaded(&world, &p, "1.2.0").await.0, content);
}
on_both_backends!(dd_with_large_blocks_and_fsync_stages);

/// A shell redirection opens, dup2s onto stdout and closes the original (not the last
/// descriptor: nothing staged), writes, and closes stdout (the last: staged).
async fn a_shell_redirection_stages_at_the_last_close(world: World) {
    let p = project(&world, "Shell");
    let mount = Mount::start(&world, &[]);
    let shell = mount.join(&format!("{p}/1.5.0"));
    std::fs::create_dir_all(&shell).unwrap();
    run_ok(Command::new("sh").arg("-c").arg(format!(
        "printf 'from the shell' > '{}/note.txt'",
        shell.display()
    )));
    assert_eq!(downloaded(&world, &p, "1.5.0").await.0, b"from the shell");
}
on_both_backends!(a_shell_redirection_stages_at_the_last_close);

async fn a_lower_version_staged_after_a_higher_leaves_latest_at_the_higher(world: World) {
    let p = project(&world, "Hotfix");
    let mount = Mount::start(&world, &[]);
    for version in ["2.0.0", "1.3.0"] {
        let folder = mount.join(&format!("{p}/{version}"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("hot.bin"), version.as_bytes()).unwrap();
    }
    assert_eq!(
        std::fs::read_link(mount.join(&format!("{p}/latest"))).unwrap(),
        Path::new("2.0.0")
    );
}
on_both_backends!(a_lower_version_staged_after_a_higher_leaves_latest_at_the_higher);

async fn another_mount_lists_and_reads_what_a_mount_staged(world: World) {
    let p = project(&world, "Other");
    let mount = Mount::start(&world, &[]);
    let app = random_bytes(700_000, 9);
    let tree = world.dir("tree");
    std::fs::write(tree.join("app.bin"), &app).unwrap();
    std::fs::create_dir(mount.join(&p)).unwrap();
    run_ok(
        Command::new("rsync")
            .args(["-a", "--delay-updates"])
            .arg(format!("{}/", tree.display()))
            .arg(mount.join(&format!("{p}/1.1.3/"))),
    );
    let second = Mount::start(&world, &[]);
    assert_eq!(names_in(&second.join(&p)), vec!["1.1.3", "latest"]);
    assert_eq!(
        std::fs::read(second.join(&format!("{p}/1.1.3/app.bin"))).unwrap(),
        app
    );
}
on_both_backends!(another_mount_lists_and_reads_what_a_mount_staged);

/// Children inherit the open file and close it at exec (Rust opens with O_CLOEXEC):
/// not the writer's close, so nothing is staged until the writer closes.
async fn a_childs_close_at_exec_does_not_stage(world: World) {
    let p = project(&world, "Child");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/2.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let mut first = std::fs::File::create(folder.join("a.bin")).unwrap();
    first.write_all(b"first").unwrap();
    for _ in 0..3 {
        run_ok(&mut Command::new("true"));
    }
    assert!(
        !is_staged(&world, &p, "2.0.0").await,
        "staged by a child's close"
    );
    assert_eq!(close(first), Ok(()));
    assert!(is_staged(&world, &p, "2.0.0").await);
}
on_both_backends!(a_childs_close_at_exec_does_not_stage);

async fn a_closed_file_reads_back_and_opens_for_writing_no_more(world: World) {
    let p = project(&world, "Closed");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/2.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let mut first = std::fs::File::create(folder.join("a.bin")).unwrap();
    first.write_all(b"first").unwrap();
    assert_eq!(close(first), Ok(()));
    assert_eq!(std::fs::read(folder.join("a.bin")).unwrap(), b"first");
    assert_eq!(
        errno_of(
            std::fs::OpenOptions::new()
                .write(true)
                .open(folder.join("a.bin"))
        ),
        libc::EPERM
    );
}
on_both_backends!(a_closed_file_reads_back_and_opens_for_writing_no_more);

// Moto only: the Python tool speaks only to AWS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_tool_reads_what_the_mount_staged() {
    let world = World::moto(WorldOptions::default()).await;
    let p = project(&world, "PyRead");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/0.1.0"));
    std::fs::create_dir_all(&folder).unwrap();
    run_ok(
        Command::new("setfattr")
            .args(["-n", "user.lang", "-v", "rust"])
            .arg(&folder),
    );
    let content = random_bytes(1 << 20, 3);
    run_ok(
        Command::new("cp")
            .arg(world.file("bundle.zip", &content))
            .arg(&folder),
    );

    let info = run_ok(world.python().args([&p, "--info"]));
    assert!(
        info.contains(&format!("The latest version of {p} is 0.1.0.")),
        "{info}"
    );
    assert!(info.contains("lang") && info.contains("rust"), "{info}");
    assert!(info.contains("startifact:filename = bundle.zip"), "{info}");
    let restored = world.dir("restored");
    run_ok(
        world
            .python()
            .args([&p, "0.1.0", "--download"])
            .arg(&restored)
            .arg("--filename"),
    );
    assert_eq!(std::fs::read(restored.join("bundle.zip")).unwrap(), content);
}
