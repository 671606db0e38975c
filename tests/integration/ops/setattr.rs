//! setattr: a staged file's mode and size do not change (EPERM, even for root).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support::files::errno_of;
use crate::support::mount::Mount;
use crate::support::staging::two_versions;
use crate::support::world::World;

async fn chmod_of_a_staged_file_is_eperm(world: World) {
    let p = two_versions(&world, "Chmod", b"first");
    let mount = Mount::start(&world, &[]);
    assert_eq!(
        errno_of(std::fs::set_permissions(
            mount.join(&format!("{p}/1.0.0/dist.bin")),
            std::fs::Permissions::from_mode(0o777)
        )),
        libc::EPERM
    );
}
on_both_backends!(chmod_of_a_staged_file_is_eperm);

async fn truncate_of_a_staged_file_is_eperm(world: World) {
    let p = two_versions(&world, "Truncate", b"first");
    let mount = Mount::start(&world, &[]);
    let truncated = Command::new("truncate")
        .args(["-s", "0"])
        .arg(mount.join(&format!("{p}/1.0.0/dist.bin")))
        .output()
        .unwrap();
    assert!(!truncated.status.success());
    assert!(String::from_utf8_lossy(&truncated.stderr).contains("Operation not permitted"));
}
on_both_backends!(truncate_of_a_staged_file_is_eperm);
