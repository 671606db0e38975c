//! Credentials over a daemon's life, and in its logs: credentials that expire are fetched
//! again before they expire (nothing caches a client's credentials past their expiry),
//! and no credential ever reaches a log, of the mount or of the command line.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::files::project;
use crate::support::mount::Mount;
use crate::support::staging::cli_stage;
use crate::support::world::{run, World, WorldOptions};

/// A `credential_process` that notes each call in `credential-calls` (when it ran and
/// when the credentials it handed out expire, both in seconds since the epoch) and hands
/// out credentials expiring `lifetime_seconds` ahead. Returns the AWS config file that
/// names it.
fn counting_credential_process(world: &World, lifetime_seconds: u32) -> std::path::PathBuf {
    let calls = world.scratch.path().join("credential-calls");
    let script = world.file(
        "credential-process.sh",
        format!(
            "#!/bin/sh\n\
             now=$(date +%s.%N)\n\
             expires=$(( ${{now%.*}} + {lifetime_seconds} ))\n\
             echo \"$now $expires\" >> '{calls}'\n\
             printf '{{\"Version\": 1, \"AccessKeyId\": \"AKIAPROCESS\", \
             \"SecretAccessKey\": \"process-secret\", \"SessionToken\": \"process-token\", \
             \"Expiration\": \"%s\"}}' \"$(date -u -d @$expires +%Y-%m-%dT%H:%M:%SZ)\"\n",
            calls = calls.display()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    world.file(
        "aws-config-with-process",
        format!("[default]\ncredential_process = {}\n", script.display()).as_bytes(),
    )
}

/// One call of the credential process: when it ran, and when what it handed out expires.
#[derive(Debug, Clone, Copy)]
struct Fetch {
    at: f64,
    expires: f64,
}

fn fetches(world: &World) -> Vec<Fetch> {
    std::fs::read_to_string(world.scratch.path().join("credential-calls"))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let (at, expires) = line.split_once(' ').expect("two fields");
            Fetch {
                at: at.parse().expect("a time"),
                expires: expires.parse().expect("an expiry"),
            }
        })
        .collect()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The SDK refreshes credentials some seconds before they expire (when less than a
/// buffer of 10 s, less a random jitter of up to half of it, is left). These expire 30 s
/// after they are fetched, and the second read comes about 4 s before that: within the
/// buffer whatever the jitter, so a mount whose clients refresh their credentials fetches
/// new ones then, before the old ones expire, and signs nothing with expired ones. A mount
/// that cached a client's credentials would make no second fetch at all (moto does not
/// check credentials, so the fetches are timed instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_running_mount_fetches_credentials_again_before_they_expire() {
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
    let first = fetches(&world);
    assert_eq!(
        first.len(),
        1,
        "one fetch serves every request until the refresh: {first:?}"
    );
    let first = first[0];
    // Between 3.5 and 4.5 s before the expiry the SDK saw (whole seconds).
    let read_at = first.at + 25.5;
    std::thread::sleep(Duration::from_secs_f64((read_at - now()).max(0.0)));
    let two = mount.join(&format!("{p}/2.0.0/{p}@2.0.0"));
    assert_eq!(std::fs::read(two).unwrap(), b"two");
    let read_done = now();
    let all = fetches(&world);
    assert!(
        all.len() >= 2,
        "the expiring credentials were fetched again: {all:?}\n{}",
        mount.log()
    );
    assert!(
        all[1].at < first.expires,
        "the second fetch came {:.1} s after the first credentials expired (the read \
         ended {:.1} s after they did): {all:?}",
        all[1].at - first.expires,
        read_done - first.expires
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
