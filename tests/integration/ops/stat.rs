//! getattr: a file's size is its artifact's, staged files are 0444 and version folders
//! 0555, and an inode number stays the same.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::support::files::random_bytes;
use crate::support::mount::Mount;
use crate::support::staging::two_versions;
use crate::support::world::World;

async fn a_file_is_the_size_of_its_artifact(world: World) {
    let content = random_bytes(6 << 20, 7);
    let p = two_versions(&world, "Size", &content);
    let mount = Mount::start(&world, &[]);
    let meta = std::fs::metadata(mount.join(&format!("{p}/1.0.0/dist.bin"))).unwrap();
    assert_eq!(meta.len(), content.len() as u64);
}
on_both_backends!(a_file_is_the_size_of_its_artifact);

async fn a_staged_file_is_read_only_for_everyone(world: World) {
    let p = two_versions(&world, "Mode", b"first");
    let mount = Mount::start(&world, &[]);
    let meta = std::fs::metadata(mount.join(&format!("{p}/1.0.0/dist.bin"))).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o444);
}
on_both_backends!(a_staged_file_is_read_only_for_everyone);

async fn a_version_folder_is_0555(world: World) {
    let p = two_versions(&world, "Mode", b"first");
    let mount = Mount::start(&world, &[]);
    let meta = std::fs::metadata(mount.join(&format!("{p}/1.0.0"))).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o555);
}
on_both_backends!(a_version_folder_is_0555);

async fn a_files_inode_number_is_stable(world: World) {
    let p = two_versions(&world, "Inode", b"first");
    let mount = Mount::start(&world, &[]);
    let artifact = mount.join(&format!("{p}/1.0.0/dist.bin"));
    let first = std::fs::metadata(&artifact).unwrap().ino();
    assert_eq!(std::fs::read(&artifact).unwrap(), b"first");
    assert_eq!(std::fs::metadata(&artifact).unwrap().ino(), first);
}
on_both_backends!(a_files_inode_number_is_stable);
