//! open, create and write: a staged file opens for reading only (EPERM for writing);
//! a file is made only in a staging version, one per version; a write past
//! `--staging-size` is ENOSPC and stages nothing.

use std::fs::OpenOptions;
use std::io::Write;
use std::process::Command;

use crate::support::files::{errno_of, project, random_bytes};
use crate::support::mount::Mount;
use crate::support::staging::{cli_stage, is_staged, status_of, two_versions};
use crate::support::world::{run, World};

async fn opening_a_staged_file_for_writing_is_eperm(world: World) {
    let p = two_versions(&world, "OpenW", b"first");
    let mount = Mount::start(&world, &[]);
    let artifact = mount.join(&format!("{p}/1.0.0/dist.bin"));
    assert_eq!(
        errno_of(OpenOptions::new().write(true).open(&artifact)),
        libc::EPERM
    );
    assert_eq!(
        errno_of(
            OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&artifact)
        ),
        libc::EPERM
    );
}
on_both_backends!(opening_a_staged_file_for_writing_is_eperm);

async fn a_file_outside_a_version_folder_is_eperm(world: World) {
    let p = project(&world, "Loose");
    cli_stage(&world, &p, "1.0.0", b"staged", &[]);
    let mount = Mount::start(&world, &[]);
    assert_eq!(
        errno_of(std::fs::write(mount.join(&format!("{p}/loose")), b"x")),
        libc::EPERM
    );
}
on_both_backends!(a_file_outside_a_version_folder_is_eperm);

async fn a_new_file_in_a_staged_version_is_eperm(world: World) {
    let p = project(&world, "Second");
    cli_stage(&world, &p, "1.0.0", b"staged", &[]);
    let mount = Mount::start(&world, &[]);
    assert_eq!(
        errno_of(std::fs::write(
            mount.join(&format!("{p}/1.0.0/second")),
            b"x"
        )),
        libc::EPERM
    );
}
on_both_backends!(a_new_file_in_a_staged_version_is_eperm);

async fn a_second_file_in_a_staging_version_is_eperm_while_the_first_is_open(world: World) {
    let p = project(&world, "OneFile");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/2.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let mut first = std::fs::File::create(folder.join("a.bin")).unwrap();
    first.write_all(b"first").unwrap();
    assert_eq!(
        errno_of(std::fs::File::create(folder.join("b.bin"))),
        libc::EPERM
    );
    drop(first);
}
on_both_backends!(a_second_file_in_a_staging_version_is_eperm_while_the_first_is_open);

async fn a_write_past_the_staging_size_is_enospc_and_stages_nothing(world: World) {
    let p = project(&world, "Full");
    let small = Mount::start(&world, &["--staging-size", "1M"]);
    let folder = small.join(&format!("{p}/6.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let (code, _, err) = run(Command::new("cp")
        .arg(world.file("two.bin", &random_bytes(2 << 20, 2)))
        .arg(&folder));
    assert!(
        code != 0 && err.contains("No space left on device"),
        "{err}"
    );
    assert!(
        !is_staged(&world, &p, "6.0.0").await,
        "an incomplete file was staged"
    );
    assert_eq!(
        status_of(&small, &p, "6.0.0").unwrap()["state"],
        "abandoned"
    );
    std::fs::remove_file(folder.join("two.bin")).unwrap();
}
on_both_backends!(a_write_past_the_staging_size_is_enospc_and_stages_nothing);
