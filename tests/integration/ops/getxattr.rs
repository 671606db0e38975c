//! getxattr and listxattr: a version's metadata as `user.*` attributes of its folder and
//! file, with the size probe, ERANGE, ENODATA, E2BIG, and where the file is served from.

use std::process::Command;

use semver::Version;
use startifact::protocol::Metadata;

use crate::support::files::{getxattr, project};
use crate::support::mount::Mount;
use crate::support::staging::two_versions;
use crate::support::world::{run_ok, World};

/// A mount over `two_versions`, and the path of 1.0.0's file.
fn mount_over_metadata(world: &World) -> (Mount, std::path::PathBuf, String) {
    let p = two_versions(world, "Attrs", b"first");
    let mount = Mount::start(world, &[]);
    let artifact = mount.join(&format!("{p}/1.0.0/dist.bin"));
    (mount, artifact, p)
}

async fn getfattr_dumps_the_metadata_and_the_file_name(world: World) {
    let (_mount, artifact, _) = mount_over_metadata(&world);
    let dumped = run_ok(Command::new("getfattr").arg("-d").arg(&artifact));
    assert!(dumped.contains("user.lang=\"rust\""), "{dumped}");
    assert!(
        dumped.contains("user.startifact:filename=\"dist.bin\""),
        "{dumped}"
    );
}
on_both_backends!(getfattr_dumps_the_metadata_and_the_file_name);

async fn a_version_folder_shows_the_metadata(world: World) {
    let (mount, _, p) = mount_over_metadata(&world);
    let folder_attrs = run_ok(
        Command::new("getfattr")
            .args(["-d", "-e", "text"])
            .arg(mount.join(&format!("{p}/1.0.0"))),
    );
    assert!(folder_attrs.contains("user.lang"), "{folder_attrs}");
}
on_both_backends!(a_version_folder_shows_the_metadata);

async fn metadata_reads_as_user_attributes_in_any_script(world: World) {
    let (_mount, artifact, _) = mount_over_metadata(&world);
    assert_eq!(getxattr(&artifact, "user.lang", 64).unwrap(), b"rust");
    assert_eq!(
        getxattr(&artifact, "user.ключ", 64).unwrap(),
        "значение".as_bytes()
    );
}
on_both_backends!(metadata_reads_as_user_attributes_in_any_script);

async fn a_zero_size_buffer_gets_the_size(world: World) {
    let (_mount, artifact, _) = mount_over_metadata(&world);
    assert_eq!(getxattr(&artifact, "user.lang", 0).unwrap().len(), 4);
}
on_both_backends!(a_zero_size_buffer_gets_the_size);

async fn a_too_small_buffer_is_erange(world: World) {
    let (_mount, artifact, _) = mount_over_metadata(&world);
    assert_eq!(getxattr(&artifact, "user.lang", 2), Err(libc::ERANGE));
}
on_both_backends!(a_too_small_buffer_is_erange);

async fn a_missing_attribute_is_enodata(world: World) {
    let (_mount, artifact, _) = mount_over_metadata(&world);
    assert_eq!(getxattr(&artifact, "user.missing", 64), Err(libc::ENODATA));
}
on_both_backends!(a_missing_attribute_is_enodata);

async fn a_name_outside_user_is_enodata(world: World) {
    let (_mount, artifact, _) = mount_over_metadata(&world);
    assert_eq!(
        getxattr(&artifact, "system.posix_acl_access", 64),
        Err(libc::ENODATA)
    );
}
on_both_backends!(a_name_outside_user_is_enodata);

async fn the_region_a_file_is_served_from_is_shown(world: World) {
    let (_mount, artifact, _) = mount_over_metadata(&world);
    let region =
        String::from_utf8(getxattr(&artifact, "user.startifact:region", 64).unwrap()).unwrap();
    assert!(!region.is_empty());
}
on_both_backends!(the_region_a_file_is_served_from_is_shown);

async fn a_value_over_64_kib_is_e2big_and_the_others_still_list(world: World) {
    let p = project(&world, "Huge");
    let file = world.file("f", b"huge metadata");
    let huge: Metadata = [("huge".to_string(), "x".repeat(70 * 1024))].into();
    world
        .session(false)
        .stage(&p, &Version::new(1, 0, 0), &file, huge, false)
        .await
        .unwrap();
    let mount = Mount::start(&world, &[]);
    let artifact = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    assert_eq!(getxattr(&artifact, "user.huge", 0), Err(libc::E2BIG));
    assert!(
        run_ok(Command::new("getfattr").arg("-d").arg(&artifact)).contains("user.startifact:key")
    );
}
on_both_backends!(a_value_over_64_kib_is_e2big_and_the_others_still_list);
