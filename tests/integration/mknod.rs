//! `mknod` in a staging version: a regular file is made as `create` makes it (GNU tar
//! makes files that way when it will set their attributes); other node types are
//! refused. The rule is the adapter's and the model's, the same over every backend.

use std::process::Command;

use crate::support::files::project;
use crate::support::mount::Mount;
use crate::support::world::{run, run_ok, World, WorldOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tar_xattrs_extracts_into_a_staging_version() {
    let world = World::local(WorldOptions::default()).await;
    let p = project(&world, "Tar");
    let source = world.dir("src");
    std::fs::write(source.join("dist.tar.gz"), b"packed by tar").unwrap();
    run_ok(
        Command::new("setfattr")
            .args(["-n", "user.lang", "-v", "rust"])
            .arg(source.join("dist.tar.gz")),
    );
    let archive = world.scratch.path().join("a.tar");
    run_ok(
        Command::new("tar")
            .args(["--xattrs", "-cf"])
            .arg(&archive)
            .arg("-C")
            .arg(&source)
            .arg("dist.tar.gz"),
    );
    let mount = Mount::start(&world, &[]);
    let version = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&version).unwrap();
    let (code, _, stderr) = run(Command::new("tar")
        .args(["--xattrs", "--xattrs-include=user.*", "-xf"])
        .arg(&archive)
        .arg("-C")
        .arg(&version));
    assert_eq!(code, 0, "{stderr}\n{}", mount.log());
    let downloaded = run_ok(world.cli().args([p.as_str(), "1.0.0", "--download", "-"]));
    assert_eq!(downloaded, "packed by tar");
    let info = run_ok(world.cli().args([p.as_str(), "1.0.0", "--info", "--json"]));
    assert!(
        info.contains("\"lang\"") && info.contains("\"rust\""),
        "{info}"
    );

    // A FIFO has no place in a version.
    std::fs::create_dir(mount.join(&format!("{p}/2.0.0"))).unwrap();
    let (code, _, stderr) = run(Command::new("mkfifo").arg(mount.join(&format!("{p}/2.0.0/pipe"))));
    assert!(
        code != 0 && stderr.contains("Operation not permitted"),
        "{stderr}"
    );
}
