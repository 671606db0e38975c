//! unlink: a staged file is EPERM, whoever asks (`rm` of `latest` and of a kept spool
//! are in `latest_symlink` and `spool`).

use crate::support::files::errno_of;
use crate::support::mount::Mount;
use crate::support::staging::two_versions;
use crate::support::world::World;

async fn removing_a_staged_file_is_eperm(world: World) {
    let p = two_versions(&world, "Unlink", b"first");
    let mount = Mount::start(&world, &[]);
    assert_eq!(
        errno_of(std::fs::remove_file(
            mount.join(&format!("{p}/1.0.0/dist.bin"))
        )),
        libc::EPERM
    );
}
on_both_backends!(removing_a_staged_file_is_eperm);
