//! mkdir: a new project or version is a staging folder of this mount, kept across
//! restarts; a bad name is EINVAL, a taken one EEXIST, and a read-only mount EROFS.

use std::process::Command;

use crate::support::files::{errno_of, project};
use crate::support::mount::Mount;
use crate::support::staging::{cli_stage, names_in};
use crate::support::world::{run_ok, World};

async fn mkdir_p_makes_a_staging_version(world: World) {
    let p = project(&world, "Mkdir");
    let mount = Mount::start(&world, &[]);
    run_ok(
        Command::new("mkdir")
            .arg("-p")
            .arg(mount.join(&format!("{p}/1.0.0"))),
    );
    assert_eq!(names_in(&mount.join(&p)), vec!["1.0.0"]);
}
on_both_backends!(mkdir_p_makes_a_staging_version);

async fn a_project_name_that_cannot_be_is_einval(world: World) {
    let mount = Mount::start(&world, &[]);
    assert_eq!(
        errno_of(std::fs::create_dir(mount.join("bad name"))),
        libc::EINVAL
    );
}
on_both_backends!(a_project_name_that_cannot_be_is_einval);

async fn a_version_name_that_cannot_be_is_einval(world: World) {
    let p = project(&world, "BadVersion");
    cli_stage(&world, &p, "1.0.0", b"staged", &[]);
    let mount = Mount::start(&world, &[]);
    for bad in ["not-a-version", "01.0.0", "1.0"] {
        assert_eq!(
            errno_of(std::fs::create_dir(mount.join(&format!("{p}/{bad}")))),
            libc::EINVAL,
            "{bad}"
        );
    }
}
on_both_backends!(a_version_name_that_cannot_be_is_einval);

async fn a_staged_version_is_eexist(world: World) {
    let p = project(&world, "Taken");
    cli_stage(&world, &p, "1.0.0", b"staged", &[]);
    let mount = Mount::start(&world, &[]);
    assert_eq!(
        errno_of(std::fs::create_dir(mount.join(&format!("{p}/1.0.0")))),
        libc::EEXIST
    );
}
on_both_backends!(a_staged_version_is_eexist);

async fn an_existing_project_is_eexist(world: World) {
    let p = project(&world, "Taken");
    cli_stage(&world, &p, "1.0.0", b"staged", &[]);
    let mount = Mount::start(&world, &[]);
    assert_eq!(errno_of(std::fs::create_dir(mount.join(&p))), libc::EEXIST);
}
on_both_backends!(an_existing_project_is_eexist);

async fn a_new_project_is_seen_by_its_own_mount_only(world: World) {
    let p = project(&world, "Mine");
    let mount = Mount::start(&world, &[]);
    std::fs::create_dir(mount.join(&p)).unwrap();
    assert!(mount.join(&p).is_dir());
    let second = Mount::start(&world, &[]);
    assert!(!second.join(&p).exists());
}
on_both_backends!(a_new_project_is_seen_by_its_own_mount_only);

async fn a_new_project_is_kept_across_restarts(world: World) {
    let p = project(&world, "Kept");
    let mount = Mount::start(&world, &[]);
    std::fs::create_dir(mount.join(&p)).unwrap();
    let mount = Mount::restart(&world, &[], mount);
    assert!(mount.join(&p).is_dir());
}
on_both_backends!(a_new_project_is_kept_across_restarts);

async fn mkdir_on_a_read_only_mount_is_erofs(world: World) {
    let p = project(&world, "ReadOnly");
    cli_stage(&world, &p, "1.0.0", b"staged", &[]);
    let read_only = Mount::start(&world, &["--read-only"]);
    assert_eq!(
        errno_of(std::fs::create_dir(read_only.join("Elsewhere"))),
        libc::EROFS
    );
    assert_eq!(
        errno_of(std::fs::create_dir(read_only.join(&format!("{p}/9.0.0")))),
        libc::EROFS
    );
}
on_both_backends!(mkdir_on_a_read_only_mount_is_erofs);
