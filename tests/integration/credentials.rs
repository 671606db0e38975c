//! Credentials over a daemon's life, and in its logs: credentials that expire are fetched
//! again (nothing caches a client's credentials past their expiry), and no credential
//! ever reaches a log, of the mount or of the command line.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::support::files::project;
use crate::support::mount::Mount;
use crate::support::staging::cli_stage;
use crate::support::world::{run, World, WorldOptions};

/// A `credential_process` that counts its calls in `count` and hands out credentials
/// expiring `lifetime_seconds` ahead. Returns the AWS config file that names it.
fn counting_credential_process(world: &World, lifetime_seconds: u32) -> std::path::PathBuf {
    let count = world.scratch.path().join("credential-calls");
    let script = world.file(
        "credential-process.sh",
        format!(
            "#!/bin/sh\n\
             echo call >> '{count}'\n\
             expires=$(date -u -d '+{lifetime_seconds} seconds' +%Y-%m-%dT%H:%M:%SZ)\n\
             printf '{{\"Version\": 1, \"AccessKeyId\": \"AKIAPROCESS\", \
             \"SecretAccessKey\": \"process-secret\", \"SessionToken\": \"process-token\", \
             \"Expiration\": \"%s\"}}' \"$expires\"\n",
            count = count.display()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    world.file(
        "aws-config-with-process",
        format!("[default]\ncredential_process = {}\n", script.display()).as_bytes(),
    )
}

fn calls(world: &World) -> usize {
    std::fs::read_to_string(world.scratch.path().join("credential-calls"))
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

/// The SDK refreshes credentials some seconds before they expire (a buffer of 10 s, less
/// a random jitter of up to half of it); these expire 30 s after they are fetched, and
/// the second request comes 32 s after the first: a mount that kept them would use them
/// past their expiry (moto does not check them, so the calls are counted instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_running_mount_fetches_credentials_again_when_they_expire() {
    let world = World::moto(WorldOptions::default()).await;
    let p = project(&world, "Refresh");
    cli_stage(&world, &p, "1.0.0", b"one", &[]);
    cli_stage(&world, &p, "2.0.0", b"two", &[]);
    let config = counting_credential_process(&world, 30);
    let config = config.to_str().unwrap();
    // Blank variables are no credentials: the chain goes on to the profile.
    let env = [
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
        ("AWS_CONFIG_FILE", config),
    ];
    let mount = Mount::start_with_env(&world, &[], &env);
    let one = mount.join(&format!("{p}/1.0.0/{p}@1.0.0"));
    assert_eq!(std::fs::read(one).unwrap(), b"one");
    assert_eq!(
        calls(&world),
        1,
        "one fetch serves every request until the refresh"
    );
    std::thread::sleep(Duration::from_secs(32));
    let two = mount.join(&format!("{p}/2.0.0/{p}@2.0.0"));
    assert_eq!(std::fs::read(two).unwrap(), b"two");
    assert!(
        calls(&world) >= 2,
        "the expiring credentials were fetched again: {} call(s)\n{}",
        calls(&world),
        mount.log()
    );
}

/// The command line's log at its most verbose level, through a stage and a download.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_appears_in_the_command_lines_log_at_trace_level() {
    let world = World::moto(WorldOptions::default()).await;
    let p = project(&world, "SecretCli");
    let (key_id, secret, token) = (
        "AKIAZZSECRETLOOKING2",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzCLISECRETzz",
        "FwoGZXIvYXdzEBCLISECRETSESSIONTOKENzz",
    );
    let file = world.file("dist", b"secret-free");
    let with_secrets = |command: &mut std::process::Command| {
        command
            .env("AWS_ACCESS_KEY_ID", key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_SESSION_TOKEN", token)
            .args(["--log-level", "TRACE"]);
    };
    let mut stage = world.cli();
    stage.args([p.as_str(), "1.0.0", "--stage"]).arg(&file);
    with_secrets(&mut stage);
    let mut download = world.cli();
    download.args([p.as_str(), "1.0.0", "--download", "-"]);
    with_secrets(&mut download);
    let mut log = String::new();
    for command in [&mut stage, &mut download] {
        let (code, stdout, stderr) = run(command);
        assert_eq!(code, 0, "{stdout}{stderr}");
        log.push_str(&stdout);
        log.push_str(&stderr);
    }
    assert!(log.contains("TRACE") || log.contains("DEBUG"), "{log}");
    for credential in [key_id, secret, token] {
        assert!(!log.contains(credential), "{credential} is in the log");
    }
}
