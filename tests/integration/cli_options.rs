//! The promises of the README's "The command line", "Environment" and "Where we differ"
//! sections, one test each: what an option or a variable does, what a failure prints,
//! what the majority rule counts, and what is refused before any request.

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use aws_config::Region;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use startifact::storage::local::LocalRegion;
use startifact::storage::Backend;

use crate::support::backends::{proxied_moto, Outage};
use crate::support::files::project;
use crate::support::moto::Moto;
use crate::support::mount::Mount;
use crate::support::proxy::{FaultProxy, Mode};
use crate::support::world::{
    assert_one_fire_line, run, run_ok, test_sdk_config, test_storage_options, Kind, World,
    WorldOptions, REGIONS,
};

/// Adds a region to the world, set up as its first three are.
async fn add_region(world: &mut World, region: &str) {
    let bucket = format!("t-{}-{region}", world.id);
    match &world.kind {
        Kind::Moto { url } => {
            let config = aws_sdk_s3::config::Builder::from(&test_sdk_config().await)
                .endpoint_url(url)
                .force_path_style(true)
                .region(Region::new(region.to_string()))
                .build();
            let location = CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build();
            aws_sdk_s3::Client::from_conf(config)
                .create_bucket()
                .bucket(&bucket)
                .create_bucket_configuration(location)
                .send()
                .await
                .expect("the new region's bucket");
        }
        Kind::Local { dir } => LocalRegion::new(dir, region)
            .create_bucket(&bucket)
            .expect("the new region's bucket"),
    }
    // `raw_store` knows the world's own regions only.
    let store = match &world.kind {
        Kind::Moto { url } => {
            let endpoints = [(region.to_string(), url.clone())].into();
            let backend = Backend::Aws {
                sdk_config: Box::new(test_sdk_config().await),
                options: test_storage_options(endpoints),
            };
            backend.open_region(region)
        }
        Kind::Local { .. } => world.raw_store(region),
    };
    store
        .put_parameter(&world.bucket_param, &bucket)
        .await
        .unwrap();
    store
        .put_parameter(&world.config_param, &world.configuration.to_json())
        .await
        .unwrap();
    world.buckets.insert(region.to_string(), bucket);
}

/// Asserts that `proxy`, the endpoint of `region` alone, was asked something, and only
/// requests signed for that region.
fn assert_only_region(proxy: &FaultProxy, region: &str) {
    let requests = proxy.requests();
    assert!(!requests.is_empty(), "nothing reached {region}'s endpoint");
    let scope = format!("/{region}/");
    for request in &requests {
        let authorization = request.header("authorization").unwrap_or("");
        assert!(
            authorization.contains(&scope),
            "{region}'s endpoint got {request:#?}"
        );
    }
}

async fn dry_run_prints_what_it_would_stage_and_writes_nothing(world: World) {
    let p = project(&world, "Dry");
    let file = world.file("dist.tar.gz", b"dry");
    let (code, stdout, stderr) = run(world.cli().args([&p, "1.0.0", "--dry-run"]).arg(&file));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stderr, "");
    let shown = std::fs::canonicalize(&file).unwrap();
    assert!(
        stdout.starts_with(&format!(
            "🚚 Staging (not really) {} as {p} version 1.0.0…\n",
            shown.display()
        )),
        "{stdout}"
    );
    for region in REGIONS {
        assert!(
            stdout.contains(&format!("📦 Staged (not really) to {region}.\n")),
            "{stdout}"
        );
    }
    assert!(!stdout.contains("--download"), "{stdout}");

    for region in REGIONS {
        let store = world.raw_store(region);
        let objects = store.list_objects(&world.buckets[region], "").await;
        assert_eq!(objects.unwrap().len(), 0, "{region}");
        let latest = store.get_parameter(&format!("/{p}/latest")).await;
        assert!(latest.is_err_and(|e| e.is_not_found()), "{region}");
    }
    // It does look: a version that exists fails the dry run.
    run_ok(world.cli().args([&p, "1.0.0", "--stage"]).arg(&file));
    let failed = run(world.cli().args([&p, "1.0.0", "--dry-run"]).arg(&file));
    let line = assert_one_fire_line(failed, "dry run of a staged version");
    assert!(line.contains("exists in"), "{line}");
}
on_both_backends!(dry_run_prints_what_it_would_stage_and_writes_nothing);

async fn require_all_regions_fails_a_stage_one_region_missed(mut world: World) {
    let p = project(&world, "Strict");
    let file = world.file("f", b"strict");
    let outage = Outage::of(&mut world, REGIONS[2]);
    outage.begin();

    let strict = run(world
        .cli()
        .args([&p, "1.0.0", "--stage"])
        .arg(&file)
        .arg("--require-all-regions"));
    let line = assert_one_fire_line(strict, "--require-all-regions");
    assert!(
        line.contains("2 of 3 regions hold it") && line.contains(REGIONS[2]),
        "{line}"
    );

    // Without it two of three is a majority: success, the failed region on stderr.
    let (code, stdout, stderr) = run(world.cli().args([&p, "1.0.1", "--stage"]).arg(&file));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let failed = format!("🔥 Failed to stage to {}: ", REGIONS[2]);
    assert!(stderr.starts_with(&failed), "{stderr}");
    for region in &REGIONS[..2] {
        assert!(
            stdout.contains(&format!("📦 Staged to {region}.")),
            "{stdout}"
        );
    }
}
on_both_backends!(require_all_regions_fails_a_stage_one_region_missed);

async fn with_four_regions_two_is_no_majority_and_three_is(mut world: World) {
    add_region(&mut world, "ap-south-1").await;
    let four = [REGIONS[0], REGIONS[1], REGIONS[2], "ap-south-1"].join(",");
    let p = project(&world, "Even");
    let file = world.file("f", b"even");
    // Two of the four regions name a bucket that does not exist.
    for region in &REGIONS[1..] {
        world.lose_bucket(region).await;
    }
    // --regions, not STARTIFACT_REGIONS (which names three), sets the regions.
    let stage = || {
        let mut command = world.cli();
        command
            .args(["--regions", &four, &p, "1.0.0", "--stage"])
            .arg(&file);
        command
    };
    let line = assert_one_fire_line(run(&mut stage()), "2 of 4 regions");
    // The two that took it had it removed again: 2 of 4 is no majority.
    assert!(
        line.contains("0 of 4 regions hold it") && line.contains("removed again"),
        "{line}"
    );

    world
        .raw_store(REGIONS[1])
        .put_parameter(&world.bucket_param, &world.buckets[REGIONS[1]])
        .await
        .unwrap();
    let (code, stdout, stderr) = run(&mut stage());
    assert_eq!(code, 0, "3 of 4 regions: {stdout}{stderr}");
    let staged = stdout.lines().filter(|l| l.starts_with("📦 Staged to "));
    assert_eq!(staged.count(), 3, "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let failed = format!("🔥 Failed to stage to {}: ", REGIONS[2]);
    assert!(stderr.starts_with(&failed), "{stderr}");
}
on_both_backends!(with_four_regions_two_is_no_majority_and_three_is);

#[test]
fn version_prints_the_version_and_exits_0() {
    let output = Command::new(env!("CARGO_BIN_EXE_startifact"))
        .env_clear()
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("startifact {} (Rust)\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

/// Failures past the arguments (those are in `cli.rs`, `bad_input_exits_1_with_one_line`).
async fn every_failure_is_one_line_on_stderr_and_exit_1(world: World) {
    let p = project(&world, "Fails");
    let missing = project(&world, "Missing");
    let file = world.file("f", b"first");
    let other = world.file("g", b"other bytes");
    run_ok(world.cli().args([&p, "1.0.0", "--stage"]).arg(&file));
    let out = world.dir("out").display().to_string();
    let other = other.display().to_string();
    let cases: [(&[&str], &str); 6] = [
        (&[&p, "9.9.9", "--download", &out], "was not found"),
        (&[&missing, "--download", &out], "latest version of"),
        (&[&missing, "--info"], "latest version of"),
        (&[&p, "9.9.9", "--set-latest"], "9.9.9"),
        (&[&p, "1.0.0", "--stage", &other], "other content"),
        (&[&p, "1.0.0", "--dry-run", &other], "exists in"),
    ];
    for (args, reason) in cases {
        let line = assert_one_fire_line(run(world.cli().args(args)), &format!("{args:?}"));
        assert!(line.contains(reason), "{args:?}: {line}");
    }
}
on_both_backends!(every_failure_is_one_line_on_stderr_and_exit_1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_environment_values_are_one_line_and_exit_1() {
    let world = World::moto(WorldOptions::default()).await;
    for (name, value) in [
        ("STARTIFACT_ENDPOINTS", "us-east-1"),
        ("STARTIFACT_ENDPOINTS", "us-east-1=ftp://127.0.0.1:1"),
        ("STARTIFACT_MAX_ATTEMPTS", "many"),
        ("STARTIFACT_CONNECT_TIMEOUT", "-1"),
        ("STARTIFACT_OPERATION_TIMEOUT", "0"),
    ] {
        let output = run(world.cli().env(name, value).args(["P", "--info"]));
        let line = assert_one_fire_line(output, &format!("{name}={value}"));
        assert!(line.contains(name), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startifact_endpoints_sends_each_region_to_its_own_url() {
    let world = World::moto(WorldOptions::default()).await;
    let proxies: Vec<FaultProxy> = REGIONS
        .iter()
        .map(|_| FaultProxy::start(&Moto::shared().url))
        .collect();
    let endpoints: Vec<String> = REGIONS
        .iter()
        .zip(&proxies)
        .map(|(region, proxy)| format!("{region}={}", proxy.url()))
        .collect();
    let p = project(&world, "Endpoints");
    let file = world.file("f", b"per region");
    // AWS_ENDPOINT_URL still names moto itself: only STARTIFACT_ENDPOINTS leads here.
    run_ok(
        world
            .cli()
            .env("STARTIFACT_ENDPOINTS", endpoints.join(","))
            .args([&p, "1.0.0", "--stage"])
            .arg(&file),
    );
    for (region, proxy) in REGIONS.iter().zip(&proxies) {
        assert_only_region(proxy, region);
        let key = format!("/{}/{p}@1.0.0", world.buckets[*region]);
        let put = proxy.requests().into_iter().find(|r| r.method == "PUT");
        assert_eq!(put.map(|r| r.key_path()), Some(key), "{region}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mount_endpoints_option_sends_each_region_to_its_own_url() {
    let world = World::moto(WorldOptions::default()).await;
    let p = project(&world, "MountEndpoints");
    let file = world.file("f", b"read through the proxies");
    run_ok(world.cli().args([&p, "1.0.0", "--stage"]).arg(&file));
    // `--endpoints region=url,...` and its /etc/fstab form `-o endpoints=region=url;...`.
    for (option, separator, prefix) in [("--endpoints", ",", ""), ("-o", ";", "endpoints=")] {
        let proxies: Vec<FaultProxy> = REGIONS
            .iter()
            .map(|_| FaultProxy::start(&Moto::shared().url))
            .collect();
        let endpoints: Vec<String> = REGIONS
            .iter()
            .zip(&proxies)
            .map(|(region, proxy)| format!("{region}={}", proxy.url()))
            .collect();
        let value = format!("{prefix}{}", endpoints.join(separator));
        let mount = Mount::start(&world, &[option, &value]);
        // Listing a project asks every region; reading the file asks one.
        let listed: Vec<String> = std::fs::read_dir(mount.join(&p))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(listed.contains(&"1.0.0".to_string()), "{listed:?}");
        let read = std::fs::read(mount.join(&format!("{p}/1.0.0/{p}@1.0.0"))).unwrap();
        assert_eq!(read, b"read through the proxies");
        drop(mount);
        for (region, proxy) in REGIONS.iter().zip(&proxies) {
            assert_only_region(proxy, region);
        }
        let artifact = format!("/{p}@1.0.0");
        let got = proxies.iter().flat_map(|proxy| proxy.requests());
        let gets = got.filter(|r| r.method == "GET" && r.key_path().ends_with(&artifact));
        assert!(gets.count() >= 1, "{option}: no GET of the artifact");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_and_ssm_endpoints_of_their_own_each_get_their_service() {
    let world = World::moto(WorldOptions::default()).await;
    let s3 = FaultProxy::start(&Moto::shared().url);
    let ssm = FaultProxy::start(&Moto::shared().url);
    // A host name, not an address: virtual-hosted style would send `{bucket}.localhost`.
    let s3_url = s3.url().replace("127.0.0.1", "localhost");
    let s3_host = s3_url.trim_start_matches("http://").to_string();
    let p = project(&world, "Split");
    let file = world.file("f", b"split endpoints");
    let cli = || {
        let mut command = world.cli();
        command
            .env_remove("AWS_ENDPOINT_URL")
            .env("AWS_ENDPOINT_URL_S3", &s3_url)
            .env("AWS_ENDPOINT_URL_SSM", ssm.url());
        command
    };
    run_ok(cli().args([&p, "1.0.0", "--stage"]).arg(&file));
    let out = world.scratch.path().join("downloaded");
    run_ok(cli().args([&p, "--download"]).arg(&out));
    assert_eq!(std::fs::read(&out).unwrap(), b"split endpoints");

    let ssm_requests = ssm.requests();
    assert!(
        ssm_requests
            .iter()
            .any(|r| r.ssm_action() == Some("PutParameter")),
        "{ssm_requests:#?}"
    );
    for request in &ssm_requests {
        assert!(request.ssm_action().is_some(), "{request:#?}");
    }
    let s3_requests = s3.requests();
    assert!(
        s3_requests.iter().any(|r| r.method == "PUT"),
        "{s3_requests:#?}"
    );
    for request in &s3_requests {
        assert!(request.ssm_action().is_none(), "{request:#?}");
        // Path-style: the host is the endpoint's own and the path starts with the bucket.
        assert_eq!(
            request.header("host"),
            Some(s3_host.as_str()),
            "{request:#?}"
        );
        let bucket = request.key_path().trim_start_matches('/').to_string();
        let bucket = bucket.split('/').next().unwrap_or("");
        assert!(world.buckets.values().any(|b| b == bucket), "{request:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_attempts_is_the_number_of_tries_per_request() {
    let world = World::moto(WorldOptions::default()).await;
    let down = FaultProxy::start(&Moto::shared().url);
    down.set_mode(Mode::Refuse);
    for attempts in [1, 3] {
        down.clear();
        let output = run(world
            .cli()
            .env("STARTIFACT_REGIONS", REGIONS[0])
            .env(
                "STARTIFACT_ENDPOINTS",
                format!("{}={}", REGIONS[0], down.url()),
            )
            .env("STARTIFACT_MAX_ATTEMPTS", attempts.to_string())
            .args(["P", "--info"]));
        let line = assert_one_fire_line(output, "a region that refuses");
        assert!(line.contains("None of the configured regions"), "{line}");
        let requests = down.requests();
        let tries = requests
            .iter()
            .filter(|r| r.ssm_action() == Some("GetParameter"));
        assert_eq!(tries.count(), attempts, "{requests:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_timeout_bounds_what_a_hung_region_costs() {
    let world = World::moto(WorldOptions::default()).await;
    let hung = FaultProxy::start(&Moto::shared().url);
    hung.set_mode(Mode::Hang);
    let p = project(&world, "Hung");
    let file = world.file("f", b"hung");
    let started = Instant::now();
    let (code, stdout, stderr) = run(world
        .cli()
        .env(
            "STARTIFACT_ENDPOINTS",
            format!("{}={}", REGIONS[0], hung.url()),
        )
        .env("STARTIFACT_OPERATION_TIMEOUT", "1")
        .env("STARTIFACT_MAX_ATTEMPTS", "1")
        .args([&p, "1.0.0", "--stage"])
        .arg(&file));
    let took = started.elapsed();
    assert_eq!(code, 0, "a hung region is not an outage: {stdout}{stderr}");
    let failed = format!("🔥 Failed to stage to {}: ", REGIONS[0]);
    assert!(
        stderr.starts_with(&failed) && stderr.contains("timed out"),
        "{stderr}"
    );
    // At most two requests reach the hung region (the configuration, the bucket name);
    // by default each would wait 10 s.
    assert!(took < Duration::from_secs(8), "{took:?}");
}

/// A loopback address whose connections never complete: its accept queue (a backlog
/// of 0 holds one connection) is full, so the kernel drops the next SYNs.
fn never_accepting() -> (TcpListener, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
    let filler = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    (listener, filler)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_bounds_a_region_that_never_accepts() {
    let world = World::moto(WorldOptions::default()).await;
    let (listener, _filler) = never_accepting();
    let endpoint = format!("{}=http://{}", REGIONS[0], listener.local_addr().unwrap());
    let info = |connect_timeout: &str| {
        let started = Instant::now();
        let output = run(world
            .cli()
            .env("STARTIFACT_REGIONS", REGIONS[0])
            .env("STARTIFACT_ENDPOINTS", &endpoint)
            .env("STARTIFACT_CONNECT_TIMEOUT", connect_timeout)
            .env("STARTIFACT_OPERATION_TIMEOUT", "60")
            .env("STARTIFACT_MAX_ATTEMPTS", "1")
            .args(["P", "--info"]));
        let line = assert_one_fire_line(output, "a region that never accepts");
        assert!(line.contains("timed out"), "{line}");
        started.elapsed()
    };
    let quick = info("1");
    assert!(quick < Duration::from_secs(4), "{quick:?}");
    let slow = info("5");
    assert!(
        slow >= Duration::from_secs(5) && slow < Duration::from_secs(30),
        "{slow:?}"
    );
}

async fn download_into_a_folder_names_the_file_by_project_and_version(world: World) {
    let p = project(&world, "Into");
    let file = world.file("dist.tar.gz", b"saved with a name");
    run_ok(
        world
            .cli()
            .args([&p, "1.0.0", "--stage"])
            .arg(&file)
            .arg("--filename"),
    );
    let folder = world.dir("into");
    let out = run_ok(world.cli().args([&p, "1.0.0", "--download"]).arg(&folder));
    let expected = folder.join(format!("{p}@1.0.0"));
    assert_eq!(std::fs::read(&expected).unwrap(), b"saved with a name");
    assert!(!folder.join("dist.tar.gz").exists());
    assert!(
        out.starts_with(&format!("📦 Downloaded {p} 1.0.0 from "))
            && out.ends_with(&format!(" to {}.\n", expected.display())),
        "{out}"
    );

    // --filename, but the version was staged without one: {project}@{version}, warned.
    run_ok(world.cli().args([&p, "1.1.0", "--stage"]).arg(&file));
    let (code, stdout, stderr) = run(world
        .cli()
        .args([&p, "1.1.0", "--download"])
        .arg(&folder)
        .arg("--filename"));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let fallback = folder.join(format!("{p}@1.1.0"));
    assert_eq!(std::fs::read(&fallback).unwrap(), b"saved with a name");
    assert_eq!(
        stderr,
        format!("⚠️ {p}@1.1.0 has no saved file name: saving it as {p}@1.1.0.\n")
    );
}
on_both_backends!(download_into_a_folder_names_the_file_by_project_and_version);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_keys_under_startifact_are_refused_before_any_request() {
    let (world, proxy) = proxied_moto(WorldOptions::default(), &REGIONS).await;
    let file = world.file("f", b"f");
    for (pair, filename) in [
        ("startifact:x=y", false),
        ("startifact:filename=other.tar.gz", false),
        // The Python tool lets --filename overwrite it silently.
        ("startifact:filename=other.tar.gz", true),
    ] {
        let mut command = world.cli();
        command
            .args(["P", "1.0.0", "--stage"])
            .arg(&file)
            .args(["--metadata", pair]);
        if filename {
            command.arg("--filename");
        }
        let line = assert_one_fire_line(run(&mut command), pair);
        let key = pair.split('=').next().unwrap();
        assert!(
            line.contains(&format!("Metadata key {key:?} is reserved")),
            "{line}"
        );
    }
    assert!(proxy.requests().is_empty(), "{:#?}", proxy.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_project_names_are_refused_before_any_request_for_every_task() {
    let (world, proxy) = proxied_moto(WorldOptions::default(), &REGIONS).await;
    let file = world.file("f", b"f").display().to_string();
    let out = world.dir("out").display().to_string();
    let tasks: [&[&str]; 6] = [
        &["1.0.0", "--stage", &file],
        &["1.0.0", "--dry-run", &file],
        &["--download", &out],
        &["--info"],
        &["--list"],
        &["1.0.0", "--set-latest"],
    ];
    for name in ["App\n", ".", "..", "a b", "a/b", ""] {
        for task in tasks {
            let output = run(world.cli().arg(name).args(task));
            let what = format!("{name:?} {task:?}");
            let line = assert_one_fire_line(output, &what);
            assert!(
                line.contains(&format!("Project name {name:?} does not satisfy")),
                "{what}: {line}"
            );
        }
    }
    assert!(proxy.requests().is_empty(), "{:#?}", proxy.requests());
}
