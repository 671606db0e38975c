//! The `startifact` command line: tasks, output, exit codes, and bad input.

use crate::support::files::project;
use crate::support::staging::assert_latest_everywhere;
use crate::support::world::{run, run_ok, World, WorldOptions, REGIONS};

async fn stage_download_list_info(world: World) {
    let file = world.file("dist.tar.gz", b"the artifact");
    let out = run_ok(
        world
            .cli()
            .args(["CliApp", "1.0.0", "--stage"])
            .arg(&file)
            .args([
                "--metadata",
                "lang=dotnet",
                "--metadata",
                "eq=a=b",
                "--filename",
            ]),
    );
    assert!(
        out.contains("startifact CliApp 1.0.0 --download <PATH>"),
        "{out}"
    );
    for region in REGIONS {
        assert!(out.contains(&format!("📦 Staged to {region}.")), "{out}");
    }
    run_ok(world.cli().args(["CliApp", "1.1.0", "--stage"]).arg(&file));

    let listed = run_ok(world.cli().args(["CliApp", "--list"]));
    assert_eq!(listed, "1.1.0\n1.0.0\n");
    let json = run_ok(world.cli().args(["CliApp", "--list", "--json"]));
    assert_eq!(json.trim(), r#"["1.1.0","1.0.0"]"#);

    let info = run_ok(world.cli().args(["CliApp", "1.0.0", "--info"]));
    assert!(
        info.contains("🌍 The latest version of CliApp is 1.0.0."),
        "{info}"
    );
    assert!(
        info.contains("🌍 This version of CliApp has metadata:"),
        "{info}"
    );
    assert!(info.contains("🌍   eq                  = a=b"), "{info}");
    assert!(
        info.contains("🌍   startifact:filename = dist.tar.gz"),
        "{info}"
    );
    let latest = run_ok(world.cli().args(["CliApp", "--info"]));
    assert!(
        latest.contains("🌍 The latest version of CliApp is 1.1.0."),
        "{latest}"
    );
    assert!(
        latest.contains("This version of CliApp has no metadata."),
        "{latest}"
    );
    assert!(latest.contains(" claims CliApp at 1.1.0."), "{latest}");
    let json: serde_json::Value = serde_json::from_str(&run_ok(
        world.cli().args(["CliApp", "1.0.0", "--info", "--json"]),
    ))
    .unwrap();
    assert_eq!(json["version"], "1.0.0");
    assert_eq!(json["metadata"]["lang"], "dotnet");
    assert_eq!(json["size"], 12);

    let folder = world.dir("restored");
    run_ok(
        world
            .cli()
            .args(["CliApp", "1.0.0", "--download"])
            .arg(&folder)
            .arg("--filename"),
    );
    assert_eq!(
        std::fs::read(folder.join("dist.tar.gz")).unwrap(),
        b"the artifact"
    );
    let target = world.scratch.path().join("plain");
    run_ok(
        world
            .cli()
            .args(["CliApp", "latest", "--download"])
            .arg(&target),
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"the artifact");

    let output = world
        .cli()
        .args(["CliApp", "--download", "-"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(output.stdout, b"the artifact");
    assert!(String::from_utf8_lossy(&output.stderr).contains("📦 Downloaded CliApp 1.1.0"));
}
on_both_backends!(stage_download_list_info);

async fn bad_input_exits_1_with_one_line(world: World) {
    let file = world.file("f", b"f");
    let cases: Vec<Vec<String>> = vec![
        vec![
            "..".into(),
            "1.0.0".into(),
            "--stage".into(),
            file.display().to_string(),
        ],
        vec![
            ".".into(),
            "1.0.0".into(),
            "--stage".into(),
            file.display().to_string(),
        ],
        vec![
            "bad\n".into(),
            "1.0.0".into(),
            "--stage".into(),
            file.display().to_string(),
        ],
        vec![
            "P".into(),
            "1.0".into(),
            "--stage".into(),
            file.display().to_string(),
        ],
        vec![
            "P".into(),
            "latest".into(),
            "--stage".into(),
            file.display().to_string(),
        ],
        vec![
            "P".into(),
            "1.0.0".into(),
            "--stage".into(),
            "/no/such/file".into(),
        ],
        vec![
            "P".into(),
            "1.0.0".into(),
            "--stage".into(),
            world.scratch.path().display().to_string(),
        ],
        vec![
            "P".into(),
            "1.0.0".into(),
            "--stage".into(),
            file.display().to_string(),
            "--metadata".into(),
            "startifact:x=y".into(),
        ],
        vec![
            "P".into(),
            "1.0.0".into(),
            "--stage".into(),
            file.display().to_string(),
            "--metadata".into(),
            "novalue".into(),
        ],
        vec!["P".into(), "--stage".into(), file.display().to_string()],
        vec!["P".into(), "1.0.0".into(), "--no-such-flag".into()],
        vec!["P".into(), "1.0.0".into(), "--info".into(), "--list".into()],
        vec!["P".into()],
        vec![
            "P".into(),
            "--info".into(),
            "--log-level".into(),
            "LOUD".into(),
        ],
    ];
    for args in cases {
        let (code, stdout, stderr) = run(world.cli().args(&args));
        assert_eq!(code, 1, "{args:?}\nstdout: {stdout}\nstderr: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("🔥 "), "{args:?}: {stderr}");
    }
    // Nothing was written anywhere.
    let listed = run_ok(world.cli().args(["P", "--list"]));
    assert_eq!(listed, "");
    let (code, _, stderr) = run(world.cli().args(["P", "--info"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("latest version of P"), "{stderr}");
}
on_both_backends!(bad_input_exits_1_with_one_line);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_regions_is_a_clear_error() {
    let world = World::moto(WorldOptions::default()).await;
    let (code, _, stderr) = run(world
        .cli()
        .env_remove("STARTIFACT_REGIONS")
        .args(["P", "--info"]));
    assert_eq!(code, 1);
    assert_eq!(stderr.trim(), "🔥 STARTIFACT_REGIONS is empty or not set.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_without_prompts_writes_every_region() {
    let world = World::moto(WorldOptions::default()).await;
    let parameter = format!("/t-{}/fresh-configuration", world.id);
    let out = run_ok(
        world
            .cli()
            .env("STARTIFACT_PARAMETER", &parameter)
            .args([
                "--setup",
                "--regions",
                &REGIONS.join(","),
                "--bucket-name-param",
            ])
            .arg(&world.bucket_param)
            .args([
                "--bucket-key-prefix",
                "team/",
                "--parameter-name-prefix",
                "/team",
            ]),
    );
    assert!(
        out.contains("Successfully saved the configuration to every region."),
        "{out}"
    );
    for region in REGIONS {
        let saved = world
            .raw_store(region)
            .get_parameter(&parameter)
            .await
            .unwrap();
        let configuration = startifact::protocol::Configuration::from_json(&saved).unwrap();
        assert_eq!(configuration.bucket_key_prefix, "team/");
        assert_eq!(configuration.parameter_name_prefix, "/team");
        assert_eq!(configuration.save_ok, "y");
    }
    // The new configuration is in use at once.
    let file = world.file("f", b"f");
    run_ok(
        world
            .cli()
            .env("STARTIFACT_PARAMETER", &parameter)
            .args(["P", "1.0.0", "--stage"])
            .arg(&file),
    );
    let key = world
        .raw_store(REGIONS[0])
        .head_object(&world.buckets[REGIONS[0]], "team/P@1.0.0")
        .await;
    assert!(key.is_ok(), "{key:?}");
    // Dropping a region deletes its configuration.
    run_ok(
        world
            .cli()
            .env("STARTIFACT_PARAMETER", &parameter)
            .args([
                "--setup",
                "--regions",
                "us-east-1,us-west-2",
                "--bucket-name-param",
            ])
            .arg(&world.bucket_param),
    );
    let dropped = world.raw_store("eu-west-2").get_parameter(&parameter).await;
    assert!(dropped.is_err_and(|e| e.is_not_found()));
    // Bad answers are refused before anything is written.
    let (code, _, stderr) = run(world.cli().env("STARTIFACT_PARAMETER", &parameter).args([
        "--setup",
        "--regions",
        "us-east-1",
        "--bucket-name-param",
        "/b",
        "--bucket-key-prefix",
        "no-slash",
    ]));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("bucket key prefix"), "{stderr}");
}

#[test]
fn an_empty_local_store_sets_itself_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let file = dir.path().join("app.tar.gz");
    std::fs::write(&file, b"hello").unwrap();
    let cli = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_startifact"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .arg("--local-store")
            .arg(&store);
        command
    };
    run_ok(
        cli()
            .args(["app", "1.0.0", "--stage"])
            .arg(&file)
            .arg("--filename"),
    );
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    run_ok(
        cli()
            .args(["app", "--download"])
            .arg(&out)
            .arg("--filename"),
    );
    assert_eq!(std::fs::read(out.join("app.tar.gz")).unwrap(), b"hello");
    assert!(
        store.join("local").is_dir(),
        "the default region is 'local'"
    );
}

async fn set_latest_rolls_back(world: World) {
    let p = project(&world, "Roll");
    let file = world.file("f", b"f");
    run_ok(world.cli().args([&p, "1.0.0", "--stage"]).arg(&file));
    run_ok(world.cli().args([&p, "2.0.0", "--stage"]).arg(&file));
    let out = run_ok(world.cli().args([&p, "1.0.0", "--set-latest"]));
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("is now 1.0.0 in"))
            .count(),
        3,
        "{out}"
    );
    // What every region holds, not what the command says it did.
    assert_latest_everywhere(&world, &p, "1.0.0").await;
    let info = run_ok(world.cli().args([&p, "--info"]));
    assert!(
        info.contains(&format!("The latest version of {p} is 1.0.0.")),
        "{info}"
    );
    // Only a staged version can be the latest; bad input changes nothing.
    for version in ["9.9.9", "latest", "x.y"] {
        let (code, _, stderr) = run(world.cli().args([&p, version, "--set-latest"]));
        assert_eq!(code, 1, "{version}: {stderr}");
    }
    assert_latest_everywhere(&world, &p, "1.0.0").await;
    let info = run_ok(world.cli().args([&p, "--info"]));
    assert!(
        info.contains(&format!("The latest version of {p} is 1.0.0.")),
        "{info}"
    );
    // Staging a higher version moves it forward again.
    run_ok(world.cli().args([&p, "2.1.0", "--stage"]).arg(&file));
    assert_latest_everywhere(&world, &p, "2.1.0").await;
    let info = run_ok(world.cli().args([&p, "--info"]));
    assert!(
        info.contains(&format!("The latest version of {p} is 2.1.0.")),
        "{info}"
    );
}
on_both_backends!(set_latest_rolls_back);
