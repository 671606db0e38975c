//! rmdir: an empty staging folder goes; one holding a file is ENOTEMPTY; a staged version
//! is EPERM, or with `--allow-delete` `rm -r` yanks it from every region.

use std::path::Path;
use std::process::Command;

use crate::support::files::{errno_of, project};
use crate::support::mount::Mount;
use crate::support::staging::{assert_latest_everywhere, cli_stage, names_in};
use crate::support::world::{run_ok, World, WorldOptions, REGIONS};

async fn a_staging_version_holding_a_file_is_enotempty(world: World) {
    let p = project(&world, "Busy");
    let mount = Mount::start(&world, &[]);
    let busy = mount.join(&format!("{p}/4.0.0"));
    std::fs::create_dir_all(&busy).unwrap();
    let held = std::fs::File::create(busy.join("held.bin")).unwrap();
    assert_eq!(errno_of(std::fs::remove_dir(&busy)), libc::ENOTEMPTY);
    drop(held);
}
on_both_backends!(a_staging_version_holding_a_file_is_enotempty);

async fn an_empty_staging_version_is_removed(world: World) {
    let p = project(&world, "Gone");
    let mount = Mount::start(&world, &[]);
    let gone = mount.join(&format!("{p}/5.0.0"));
    std::fs::create_dir_all(&gone).unwrap();
    std::fs::remove_dir(&gone).unwrap();
    assert!(!gone.exists());
}
on_both_backends!(an_empty_staging_version_is_removed);

async fn an_empty_staging_project_is_removed_even_after_a_restart(world: World) {
    let p = project(&world, "GoneToo");
    let mount = Mount::start(&world, &[]);
    std::fs::create_dir(mount.join(&p)).unwrap();
    let mount = Mount::restart(&world, &[], mount);
    std::fs::remove_dir(mount.join(&p)).unwrap();
    assert!(!mount.join(&p).exists());
}
on_both_backends!(an_empty_staging_project_is_removed_even_after_a_restart);

/// A project with 1.0.0 and 2.0.0 staged by the CLI.
fn two_staged(world: &World, base: &str) -> String {
    let p = project(world, base);
    cli_stage(world, &p, "1.0.0", b"yank me", &[]);
    cli_stage(world, &p, "2.0.0", b"yank me", &[]);
    p
}

async fn rm_r_of_a_staged_version_is_eperm(world: World) {
    let p = two_staged(&world, "NoYank");
    let plain = Mount::start(&world, &[]);
    assert_eq!(
        errno_of(std::fs::remove_dir_all(plain.join(&format!("{p}/2.0.0")))),
        libc::EPERM
    );
}
on_both_backends!(rm_r_of_a_staged_version_is_eperm);

async fn rm_r_with_allow_delete_yanks_a_version_from_every_region(world: World) {
    let p = two_staged(&world, "Yank");
    let mount = Mount::start(&world, &["--allow-delete"]);
    run_ok(
        Command::new("rm")
            .arg("-r")
            .arg(mount.join(&format!("{p}/2.0.0"))),
    );
    for region in REGIONS {
        let store = world.raw_store(region);
        for key in [format!("{p}@2.0.0"), format!("{p}@2.0.0/metadata")] {
            let err = store
                .head_object(&world.buckets[region], &key)
                .await
                .unwrap_err();
            assert!(err.is_not_found(), "{region} {key}: {err}");
        }
    }
    assert_eq!(names_in(&mount.join(&p)), vec!["1.0.0", "latest"]);
}
on_both_backends!(rm_r_with_allow_delete_yanks_a_version_from_every_region);

async fn a_yank_of_the_latest_version_moves_latest_back(world: World) {
    let p = two_staged(&world, "YankLatest");
    let mount = Mount::start(&world, &["--allow-delete"]);
    run_ok(
        Command::new("rm")
            .arg("-r")
            .arg(mount.join(&format!("{p}/2.0.0"))),
    );
    assert_eq!(
        std::fs::read_link(mount.join(&format!("{p}/latest"))).unwrap(),
        Path::new("1.0.0")
    );
    assert_latest_everywhere(&world, &p, "1.0.0").await;
}
on_both_backends!(a_yank_of_the_latest_version_moves_latest_back);

// Moto only: the Python tool speaks only to AWS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_tool_sees_latest_moved_back_by_a_yank() {
    let world = World::moto(WorldOptions::default()).await;
    let p = project(&world, "PyYank");
    let file = world.file("f", b"yank me");
    run_ok(world.python().args([&p, "1.0.0", "--stage"]).arg(&file));
    run_ok(world.python().args([&p, "2.0.0", "--stage"]).arg(&file));
    let mount = Mount::start(&world, &["--allow-delete"]);
    run_ok(
        Command::new("rm")
            .arg("-r")
            .arg(mount.join(&format!("{p}/2.0.0"))),
    );
    let info = run_ok(world.python().args([&p, "--info"]));
    assert!(
        info.contains(&format!("The latest version of {p} is 1.0.0.")),
        "{info}"
    );
}
