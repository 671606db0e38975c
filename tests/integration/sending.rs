//! How large files go to each region when no `--multipart-threshold` is given: at first,
//! in parts to Amazon S3 (here: moto behind a proxy that names the server `AmazonS3`, as
//! S3 does) and in one request to any other server; in one request once a region's
//! completions were seen to take a large share of its stage (a server copying every
//! byte again, as moto and s3s-fs do), and back to parts where one request proved
//! slower. The figures survive the process (the CLI's state folder, the mount's staging
//! folder). Seen on the wire through a proxy that makes the completion, or the parts,
//! slow.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use semver::Version;
use startifact::protocol::{Metadata, SendingCosts, StageOptions};

use crate::support::backends::proxied_moto;
use crate::support::files::{project, random_bytes};
use crate::support::mount::Mount;
use crate::support::proxy::FaultProxy;
use crate::support::world::{run_ok, World, WorldOptions, REGIONS};

/// How `key` went to the regions: (one-request PUTs, part uploads).
fn ways(proxy: &FaultProxy, key: &str) -> (usize, usize) {
    let puts: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.key_path().ends_with(&format!("/{key}")))
        .collect();
    let parts = puts
        .iter()
        .filter(|r| r.path_and_query.contains("partNumber="))
        .count();
    (puts.len() - parts, parts)
}

/// 12 MiB in 5 MiB parts above a 5 MiB threshold: three parts a region.
fn options(sending: Option<Arc<SendingCosts>>) -> StageOptions {
    StageOptions {
        multipart_threshold: 5 << 20,
        part_size: 5 << 20,
        sending,
        ..StageOptions::default()
    }
}

async fn stage(world: &World, p: &str, version: &str, file: &std::path::Path, o: &StageOptions) {
    world
        .session(false)
        .stage_with(
            p,
            &Version::parse(version).unwrap(),
            file,
            Metadata::new(),
            false,
            o,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_whose_completion_copies_the_bytes_is_sent_one_request_next() {
    let (world, proxy) = proxied_moto(WorldOptions::default(), &REGIONS).await;
    proxy.set_server_name(Some("AmazonS3"));
    let p = project(&world, "Learn");
    let file = world.file("twelve", &random_bytes(12 << 20, 61));
    let learned = Arc::new(SendingCosts::in_memory());
    let adaptive = options(Some(Arc::clone(&learned)));
    // Completions (POSTs) answer 0.5 s late: most of a 12 MiB stage on loopback.
    proxy.set_answer_delay(Some((Method::POST, Duration::from_millis(500))));

    stage(&world, &p, "1.0.0", &file, &adaptive).await;
    assert_eq!(
        ways(&proxy, &format!("{p}@1.0.0")),
        (0, 9),
        "at first, parts"
    );
    stage(&world, &p, "1.0.1", &file, &adaptive).await;
    assert_eq!(
        ways(&proxy, &format!("{p}@1.0.1")),
        (3, 0),
        "then one request a region"
    );
    // One request proved faster: it stays.
    stage(&world, &p, "1.0.2", &file, &adaptive).await;
    assert_eq!(ways(&proxy, &format!("{p}@1.0.2")), (3, 0));
    // An explicit threshold learns nothing and asks for nothing: parts.
    stage(&world, &p, "1.0.3", &file, &options(None)).await;
    assert_eq!(ways(&proxy, &format!("{p}@1.0.3")), (0, 9));
    proxy.set_answer_delay(None);
    for version in ["1.0.0", "1.0.1", "1.0.2", "1.0.3"] {
        let (bytes, _) = crate::support::staging::downloaded(&world, &p, version).await;
        assert!(bytes.len() == 12 << 20, "{version}: {} bytes", bytes.len());
    }
}

// moto as itself (its `Server` header is not S3's): the first stage of a fresh process
// already goes in one request a region, and so do the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_other_than_s3_is_sent_one_request_from_the_first_stage() {
    let (world, proxy) = proxied_moto(WorldOptions::default(), &REGIONS).await;
    let p = project(&world, "NotS3");
    let file = world.file("twelve", &random_bytes(12 << 20, 65));
    let adaptive = options(Some(Arc::new(SendingCosts::in_memory())));
    for version in ["1.0.0", "1.0.1"] {
        stage(&world, &p, version, &file, &adaptive).await;
        assert_eq!(ways(&proxy, &format!("{p}@{version}")), (3, 0), "{version}");
    }
    // The same server named `AmazonS3`, to a process that learned nothing: parts.
    proxy.set_server_name(Some("AmazonS3"));
    let fresh = options(Some(Arc::new(SendingCosts::in_memory())));
    stage(&world, &p, "1.0.2", &file, &fresh).await;
    assert_eq!(ways(&proxy, &format!("{p}@1.0.2")), (0, 9));
    let (bytes, _) = crate::support::staging::downloaded(&world, &p, "1.0.0").await;
    assert_eq!(bytes.len(), 12 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_each_connection_is_slow_parts_stay() {
    let (world, proxy) = proxied_moto(WorldOptions::default(), &REGIONS).await;
    proxy.set_server_name(Some("AmazonS3"));
    let p = project(&world, "Keep");
    // 20 MiB in four 5 MiB parts, two at once a region.
    let file = world.file("twenty", &random_bytes(20 << 20, 62));
    let learned = Arc::new(SendingCosts::in_memory());
    let adaptive = options(Some(Arc::clone(&learned)));
    // Each upload's body flows at 2 MB/s, as S3 limits each connection: parts at once
    // add up, and the completion is a small share of the stage (over 5 s of parts).
    proxy.set_upload_pace(Some(2_000_000));
    for version in ["1.0.0", "1.0.1"] {
        stage(&world, &p, version, &file, &adaptive).await;
        assert_eq!(
            ways(&proxy, &format!("{p}@{version}")),
            (0, 12),
            "{version}: {learned:?}"
        );
    }
    proxy.set_upload_pace(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_remembers_across_runs_and_an_explicit_threshold_overrides_it() {
    let (world, proxy) = proxied_moto(WorldOptions::default(), &REGIONS).await;
    proxy.set_server_name(Some("AmazonS3"));
    let p = project(&world, "CliLearn");
    // Above the CLI's 16 MiB threshold: 8 MiB parts, three a region.
    let file = world.file("twenty", &random_bytes(20 << 20, 63));
    proxy.set_answer_delay(Some((Method::POST, Duration::from_millis(500))));
    let cli_stage = |version: &str, extra: &[&str]| {
        run_ok(
            world
                .cli()
                .args([p.as_str(), version, "--stage"])
                .arg(&file)
                .args(extra),
        )
    };
    cli_stage("1.0.0", &[]);
    assert_eq!(ways(&proxy, &format!("{p}@1.0.0")), (0, 9));
    // The world's HOME is its scratch folder.
    let saved = world.dir(".local/state/startifact-fs").join("sending.json");
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(text.contains("completion_share"), "{text}");
    cli_stage("1.0.1", &[]);
    assert_eq!(ways(&proxy, &format!("{p}@1.0.1")), (3, 0));
    cli_stage("1.0.2", &["--multipart-threshold", "16M"]);
    assert_eq!(ways(&proxy, &format!("{p}@1.0.2")), (0, 9));
    proxy.set_answer_delay(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mount_remembers_in_its_staging_folder() {
    let (world, proxy) = proxied_moto(WorldOptions::default(), &REGIONS).await;
    proxy.set_server_name(Some("AmazonS3"));
    let p = project(&world, "MountLearn");
    let source = world.file("twenty.bin", &random_bytes(20 << 20, 64));
    let cp = |mount: &Mount, version: &str| {
        let folder = mount.join(&format!("{p}/{version}"));
        run_ok(Command::new("mkdir").arg("-p").arg(&folder));
        run_ok(Command::new("cp").arg(&source).arg(&folder));
    };
    let mount = Mount::start(&world, &[]);
    // Only the first stage's POSTs (its completions, and SSM's requests) are slow: the
    // daemons' starts are not.
    proxy.set_answer_delay(Some((Method::POST, Duration::from_millis(500))));
    cp(&mount, "1.0.0");
    proxy.set_answer_delay(None);
    assert_eq!(ways(&proxy, &format!("{p}@1.0.0")), (0, 9));
    let saved = mount.staging_dir().join("sending.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&saved).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", saved.display());
    // A new daemon reads what the last one learned.
    let mount = Mount::restart(&world, &[], mount);
    cp(&mount, "1.0.1");
    assert_eq!(ways(&proxy, &format!("{p}@1.0.1")), (3, 0));
    let log = mount.log();
    assert!(log.contains("sent in one request"), "{log}");
    // Every region takes 20 MiB in one request: the parts were not hashed as `cp`
    // wrote, and the artifact is whole.
    assert!(log.contains("its parts are not hashed"), "{log}");
    let staged = mount.join(&format!("{p}/1.0.1/twenty.bin"));
    assert_eq!(
        std::fs::read(staged).unwrap(),
        std::fs::read(&source).unwrap()
    );
}
