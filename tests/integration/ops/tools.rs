//! Everyday tools over a project: `rsync -a` copies it out with its `latest` link, `tar`
//! archives it, `find` sees one file per version.

use std::path::Path;
use std::process::Command;

use crate::support::files::random_bytes;
use crate::support::mount::Mount;
use crate::support::staging::two_versions;
use crate::support::world::{run_ok, World};

async fn rsync_a_copies_a_project_out_with_its_latest_link(world: World) {
    let content = random_bytes(1 << 20, 7);
    let p = two_versions(&world, "RsyncOut", &content);
    let mount = Mount::start(&world, &[]);
    let copy = world.dir("copy");
    run_ok(
        Command::new("rsync")
            .arg("-a")
            .arg(format!("{}/", mount.join(&p).display()))
            .arg(&copy),
    );
    assert_eq!(std::fs::read(copy.join("1.0.0/dist.bin")).unwrap(), content);
    assert_eq!(
        std::fs::read_link(copy.join("latest")).unwrap(),
        Path::new("1.1.0")
    );
}
on_both_backends!(rsync_a_copies_a_project_out_with_its_latest_link);

async fn tar_archives_a_project_without_a_warning(world: World) {
    let p = two_versions(&world, "Tar", b"first");
    let mount = Mount::start(&world, &[]);
    let archive = world.scratch.path().join("p.tar");
    let tar = run_ok(
        Command::new("tar")
            .arg("-cf")
            .arg(&archive)
            .arg("-C")
            .arg(&mount.path)
            .arg(&p),
    );
    assert!(tar.is_empty());
    let listing = run_ok(Command::new("tar").arg("-tf").arg(&archive));
    assert!(
        listing.contains(&format!("{p}/1.0.0/dist.bin")),
        "{listing}"
    );
}
on_both_backends!(tar_archives_a_project_without_a_warning);

async fn find_sees_one_file_per_version(world: World) {
    let p = two_versions(&world, "Find", b"first");
    let mount = Mount::start(&world, &[]);
    let found = run_ok(
        Command::new("find")
            .arg(mount.join(&p))
            .args(["-type", "f"]),
    );
    assert_eq!(found.lines().count(), 2, "{found}");
}
on_both_backends!(find_sees_one_file_per_version);
