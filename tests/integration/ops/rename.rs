//! rename: a staged file does not move (EPERM); a staging file written under a temporary
//! name, as rsync writes, is published only when renamed to its final name, and its
//! parts, uploaded at the close, are not sent again.

use crate::support::backends::proxied_moto;
use crate::support::files::{errno_of, project, random_bytes};
use crate::support::mount::Mount;
use crate::support::staging::{downloaded, is_staged, two_versions};
use crate::support::world::{World, WorldOptions, REGIONS};

async fn renaming_a_staged_file_is_eperm(world: World) {
    let p = two_versions(&world, "Rename", b"first");
    let mount = Mount::start(&world, &[]);
    assert_eq!(
        errno_of(std::fs::rename(
            mount.join(&format!("{p}/1.0.0/dist.bin")),
            mount.join(&format!("{p}/1.0.0/moved"))
        )),
        libc::EPERM
    );
}
on_both_backends!(renaming_a_staged_file_is_eperm);

async fn a_temporary_file_is_published_at_its_rename_only(world: World) {
    let p = project(&world, "Temp");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let content = random_bytes(1 << 20, 4);
    std::fs::write(folder.join(".app.bin.Xy12Ab"), &content).unwrap();
    assert!(
        !is_staged(&world, &p, "1.0.0").await,
        "published before the rename"
    );
    std::fs::rename(folder.join(".app.bin.Xy12Ab"), folder.join("app.bin")).unwrap();
    let (bytes, metadata) = downloaded(&world, &p, "1.0.0").await;
    assert!(bytes == content, "the staged artifact differs");
    assert!(metadata.contains(&("startifact:filename".into(), "app.bin".into())));
}
on_both_backends!(a_temporary_file_is_published_at_its_rename_only);

// Moto only: the requests are counted on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_files_parts_go_up_at_close_and_its_rename_only_completes_them() {
    let (world, proxy) = proxied_moto(WorldOptions::default(), &REGIONS).await;
    // As on S3, which is sent parts from the first stage (moto itself would be sent
    // one request).
    proxy.set_server_name(Some("AmazonS3"));
    let p = project(&world, "Ahead");
    let mount = Mount::start(&world, &[]);
    let folder = mount.join(&format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    let content = random_bytes(20 << 20, 4);
    let key = format!("{p}@1.0.0");
    let count = |method: &str, query: &str| {
        proxy
            .requests()
            .iter()
            .filter(|r| {
                r.method == method
                    && r.key_path().ends_with(&key)
                    && r.path_and_query.contains(query)
            })
            .count()
    };

    // As rsync does: written under a temporary name and closed (the parts go up now)...
    std::fs::write(folder.join(".app.bin.Xy12Ab"), &content).unwrap();
    assert_eq!(count("PUT", "partNumber="), 3 * REGIONS.len());
    assert_eq!(count("POST", "uploadId="), 0);
    assert!(
        !is_staged(&world, &p, "1.0.0").await,
        "published before the rename"
    );

    // ...then renamed into place: the rename only completes the uploads.
    std::fs::rename(folder.join(".app.bin.Xy12Ab"), folder.join("app.bin")).unwrap();
    assert_eq!(
        count("PUT", "partNumber="),
        3 * REGIONS.len(),
        "parts sent again"
    );
    assert_eq!(count("POST", "uploadId="), REGIONS.len());
    let (bytes, metadata) = downloaded(&world, &p, "1.0.0").await;
    assert!(bytes == content, "the staged artifact differs");
    assert!(metadata.contains(&("startifact:filename".into(), "app.bin".into())));
}
