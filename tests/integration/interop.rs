//! Interop with the Python `startifact` 1.0a10 on moto, both ways.

use std::process::Command;

use startifact::protocol::{python_dumps, Metadata};

use crate::support::venv;
use crate::support::world::{run_ok, World, WorldOptions, REGIONS};

fn info_lines(out: &str) -> Vec<String> {
    // The lines that do not depend on the shuffled region order.
    out.lines()
        .filter(|l| !l.contains("Configuration loaded from") && !l.contains(" claims "))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_stages_and_we_read() {
    for options in [
        WorldOptions::default(),
        WorldOptions {
            bucket_key_prefix: "team/".into(),
            parameter_name_prefix: "/team".into(),
        },
    ] {
        let world = World::moto(options).await;
        let content = b"staged by python".repeat(100);
        let file = world.file("app-1.2.3.tar.gz", &content);
        run_ok(
            world
                .python()
                .args(["PyApp", "1.2.3", "--stage"])
                .arg(&file)
                .args([
                    "--metadata",
                    "lang=python",
                    "--metadata",
                    "ключ=значение ✓",
                    "--filename",
                ]),
        );

        let ours = run_ok(world.cli().args(["PyApp", "--info"]));
        let theirs = run_ok(world.python().args(["PyApp", "--info"]));
        assert_eq!(
            info_lines(&ours),
            info_lines(&theirs),
            "ours:\n{ours}\ntheirs:\n{theirs}"
        );
        // The Python tool pads keys to the length of the greatest key ("ключ"), not the longest.
        assert!(ours.contains("🌍   ключ = значение ✓"), "{ours}");
        assert!(ours.contains("🌍   lang = python"), "{ours}");

        let folder = world.dir("restored");
        run_ok(
            world
                .cli()
                .args(["PyApp", "--download"])
                .arg(&folder)
                .arg("--filename"),
        );
        assert_eq!(
            std::fs::read(folder.join("app-1.2.3.tar.gz")).unwrap(),
            content
        );

        let session = world.session(true);
        let artifact = session.get("PyApp", None).await.unwrap();
        assert_eq!(artifact.version().to_string(), "1.2.3");
        let metadata = artifact.metadata().await.unwrap();
        assert_eq!(metadata["startifact:filename"], "app-1.2.3.tar.gz");
        assert_eq!(metadata["ключ"], "значение ✓");
        // The Python tool staged in one request, through boto3, which sends a CRC32
        // the server keeps: that is what the download is checked against (not the MD5
        // of its ETag, which a CRC beats).
        let download = artifact
            .download_to_path(&world.scratch.path().join("x"))
            .await
            .unwrap();
        assert!(
            matches!(
                download.verification,
                startifact::protocol::Verification::Checked(
                    startifact::checksum::Checksum::Crc32(_)
                        | startifact::checksum::Checksum::Crc32c(_)
                        | startifact::checksum::Checksum::Crc64Nvme(_)
                )
            ),
            "{download:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_stage_and_python_reads() {
    let world = World::moto(WorldOptions {
        bucket_key_prefix: "p/".into(),
        parameter_name_prefix: "/pp".into(),
    })
    .await;
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 7) as u8).collect();
    let file = world.file("dist.zip", &content);
    run_ok(
        world
            .cli()
            .args(["RustApp", "0.1.0-beta.2", "--stage"])
            .arg(&file)
            .args([
                "--metadata",
                "quote=\"q\" \\ tab\t",
                "--metadata",
                "emoji=😀",
                "--filename",
            ]),
    );

    let theirs = run_ok(world.python().args(["RustApp", "--info"]));
    let ours = run_ok(world.cli().args(["RustApp", "--info"]));
    assert!(
        theirs.contains("🌍 The latest version of RustApp is 0.1.0-beta.2."),
        "{theirs}"
    );
    assert!(theirs.contains("🌍   emoji               = 😀"), "{theirs}");
    assert!(
        theirs.contains("🌍   startifact:filename = dist.zip"),
        "{theirs}"
    );
    assert_eq!(info_lines(&ours), info_lines(&theirs));

    let folder = world.dir("restored");
    run_ok(
        world
            .python()
            .args(["RustApp", "0.1.0-beta.2", "--download"])
            .arg(&folder)
            .arg("--filename"),
    );
    assert_eq!(std::fs::read(folder.join("dist.zip")).unwrap(), content);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_refuses_a_version_we_staged() {
    let world = World::moto(WorldOptions::default()).await;
    let file = world.file("f", b"ours");
    run_ok(world.cli().args(["Both", "1.0.0", "--stage"]).arg(&file));
    let other = world.file("g", b"theirs");
    let output = world
        .python()
        .args(["Both", "1.0.0", "--stage"])
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Both@1.0.0 exists in"), "{stdout}");
    // Our stage of what Python staged meanwhile, with other bytes, fails in every region.
    run_ok(
        world
            .python()
            .args(["Both", "2.0.0", "--stage"])
            .arg(&other),
    );
    let (code, _, stderr) =
        crate::support::world::run(world.cli().args(["Both", "2.0.0", "--stage"]).arg(&file));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("0 of 3 regions hold it") && stderr.contains("other content"),
        "{stderr}"
    );
    for region in REGIONS {
        assert!(stderr.contains(region), "{stderr}");
    }
}

#[test]
fn metadata_bytes_equal_python_json_dumps() {
    let samples: Vec<Metadata> = vec![
        [("lang", "dotnet")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        [
            ("ключ", "значение"),
            ("emoji 😀", "\u{1F600}\u{10FFFF}"),
            ("ctl", "\u{0}\u{1f}\u{7f}\u{80}\u{2028}"),
            ("esc", "\"\\/\u{8}\u{c}\n\r\t"),
            ("Z", ""),
            ("a", "é"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    ];
    for sample in samples {
        let json = serde_json::to_string(&sample).unwrap();
        let output = Command::new(venv().join("bin/python"))
            .args([
                "-c",
                "import json, sys; sys.stdout.buffer.write(json.dumps(json.loads(sys.argv[1]), indent=2, sort_keys=True).encode('utf-8'))",
                &json,
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            python_dumps(&sample)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sees_a_rollback() {
    let world = World::moto(WorldOptions::default()).await;
    let file = world.file("f", b"f");
    run_ok(
        world
            .python()
            .args(["PyRoll", "1.0.0", "--stage"])
            .arg(&file),
    );
    run_ok(
        world
            .python()
            .args(["PyRoll", "1.1.0", "--stage"])
            .arg(&file),
    );
    run_ok(world.cli().args(["PyRoll", "1.0.0", "--set-latest"]));
    let theirs = run_ok(world.python().args(["PyRoll", "--info"]));
    assert!(
        theirs.contains("🌍 The latest version of PyRoll is 1.0.0."),
        "{theirs}"
    );
}
