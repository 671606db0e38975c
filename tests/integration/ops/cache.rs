//! The disk cache (`-o cache_dir`): a read fills it, it serves reads when every region
//! is down, the least recently used artifact goes past `cache_size`, one larger than
//! `cache_size` is streamed instead, and a copy that fails its check is fetched again,
//! never served.

use std::path::{Path, PathBuf};

use semver::Version;
use startifact::protocol::Metadata;

use crate::support::backends::proxied_moto;
use crate::support::files::{errno_of, project, random_bytes};
use crate::support::mount::Mount;
use crate::support::proxy::Mode;
use crate::support::world::{World, WorldOptions, REGIONS};

fn cached_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    files.sort();
    files
}

/// Two versions of a project named after `name`, 3 MiB each: 1.0.0 is `a.bin`, 2.0.0
/// `b.bin`. Returns the project, both contents, and an empty cache folder's
/// `cache_dir=` option.
pub(super) async fn two_versions_and_a_cache(
    world: &World,
    name: &str,
) -> (String, Vec<u8>, Vec<u8>, String) {
    let p = project(world, name);
    let (first, second) = (random_bytes(3 << 20, 1), random_bytes(3 << 20, 2));
    let session = world.session(false);
    for (version, name, bytes) in [(1, "a.bin", &first), (2, "b.bin", &second)] {
        session
            .stage(
                &p,
                &Version::new(version, 0, 0),
                &world.file(name, bytes),
                Metadata::new(),
                true,
            )
            .await
            .unwrap();
    }
    let cache = format!("cache_dir={}", world.dir("cache").display());
    (p, first, second, cache)
}

/// Reads `path` (in the mount) through a mount with `options`, and stops the mount.
fn read_once(world: &World, options: &str, path: &str) -> Vec<u8> {
    let mut mount = Mount::start(world, &["-o", options]);
    let bytes = std::fs::read(mount.join(path)).unwrap();
    assert_eq!(mount.stop(), Some(0), "{}", mount.log());
    bytes
}

async fn a_read_fills_the_cache(world: World) {
    let (p, first, _, cache) = two_versions_and_a_cache(&world, "Cache").await;
    assert_eq!(
        read_once(&world, &cache, &format!("{p}/1.0.0/a.bin")),
        first
    );
    assert_eq!(cached_files(&world.scratch.path().join("cache")).len(), 1);
}
on_both_backends!(a_read_fills_the_cache);

async fn past_cache_size_the_least_recently_used_artifact_goes(world: World) {
    let (p, first, second, cache) = two_versions_and_a_cache(&world, "Cache").await;
    assert_eq!(
        read_once(&world, &cache, &format!("{p}/1.0.0/a.bin")),
        first
    );
    let limited = format!("{cache},cache_size=4M");
    assert_eq!(
        read_once(&world, &limited, &format!("{p}/2.0.0/b.bin")),
        second
    );
    let files = cached_files(&world.scratch.path().join("cache"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(std::fs::read(&files[0]).unwrap(), second);
}
on_both_backends!(past_cache_size_the_least_recently_used_artifact_goes);

async fn a_cached_copy_that_fails_its_check_is_fetched_again(world: World) {
    let (p, _, second, cache) = two_versions_and_a_cache(&world, "Cache").await;
    assert_eq!(
        read_once(&world, &cache, &format!("{p}/2.0.0/b.bin")),
        second
    );
    let files = cached_files(&world.scratch.path().join("cache"));
    let mut damaged = std::fs::read(&files[0]).unwrap();
    damaged[0] ^= 0xff;
    std::fs::write(&files[0], &damaged).unwrap();
    let mount = Mount::start(&world, &["-o", &cache]);
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/2.0.0/b.bin"))).unwrap(),
        second
    );
    assert!(mount.log().contains("failed its check"), "{}", mount.log());
}
on_both_backends!(a_cached_copy_that_fails_its_check_is_fetched_again);

async fn an_artifact_larger_than_the_cache_size_is_streamed_instead(world: World) {
    let (p, first, _, cache) = two_versions_and_a_cache(&world, "Cache").await;
    let dir = world.scratch.path().join("cache");
    let mut mount = Mount::start(&world, &["-o", &format!("{cache},cache_size=1M")]);
    // Any file made in the folder, even one removed at once, would change its mtime.
    let untouched = std::fs::metadata(&dir).unwrap().modified().unwrap();
    let bytes = std::fs::read(mount.join(&format!("{p}/1.0.0/a.bin"))).unwrap();
    assert_eq!(mount.stop(), Some(0), "{}", mount.log());
    assert!(bytes == first, "other bytes");
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(kept.is_empty(), "the cache folder holds {kept:?}");
    let modified = std::fs::metadata(&dir).unwrap().modified().unwrap();
    assert_eq!(
        modified, untouched,
        "something was written into the cache folder"
    );
}
on_both_backends!(an_artifact_larger_than_the_cache_size_is_streamed_instead);

// Moto only: every region is taken down by a proxy on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_region_down_a_cached_version_still_reads_and_others_are_eio() {
    let (world, proxy) = proxied_moto(WorldOptions::default(), &REGIONS).await;
    let (p, first, _, cache) = two_versions_and_a_cache(&world, "Cache").await;
    assert_eq!(
        read_once(&world, &cache, &format!("{p}/1.0.0/a.bin")),
        first
    );
    proxy.set_mode(Mode::Refuse);
    let mount = Mount::start(&world, &["-o", &cache]);
    assert_eq!(
        std::fs::read(mount.join(&format!("{p}/1.0.0/a.bin"))).unwrap(),
        first
    );
    assert_eq!(
        errno_of(std::fs::read(mount.join(&format!("{p}/2.0.0/b.bin")))),
        libc::EIO
    );
    assert!(mount.log().contains("from the cache"), "{}", mount.log());
}
