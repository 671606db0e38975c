//! The mount as mount(8) starts it: `mount -t fuse.startifact-fs SOURCE MOUNTPOINT -o
//! ...` and an fstab line (`mount -T FSTAB MOUNTPOINT`), through `mount.fuse3`, with no
//! environment (`env -i`): everything comes from `-o` or the configuration file. Each
//! mount reads, stages with `cp`, and `umount` stops the daemon. Also `--config` alone,
//! `df`, and HTTPS endpoints signed by a CA of
//! their own (`ca_bundle`, `AWS_CA_BUNDLE`), and a CA bundle that cannot be used.
//!
//! mount(8) runs `/sbin/mount.fuse` with no environment, which runs `startifact-fs
//! SOURCE MOUNTPOINT -o OPTIONS` through `/bin/sh` and its default PATH: see `OnThePath`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::files::project;
use crate::support::mount::mount_line;
use crate::support::staging::cli_stage;
use crate::support::tls::{Certificates, TlsProxy};
use crate::support::world::{run, run_ok, Kind, World, WorldOptions};

/// mount(8) runs its helpers with no environment at all, so `mount.fuse3`'s `/bin/sh`
/// finds `startifact-fs` on the shell's default PATH (/usr/local/bin, /usr/bin...), as
/// an installed program is found at boot. While a test needs it,
/// /usr/local/bin/startifact-fs links to the built binary; the last test done with it
/// removes the link.
struct OnThePath;

const ON_THE_PATH: &str = "/usr/local/bin/startifact-fs";
static USERS: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

impl OnThePath {
    fn new() -> Self {
        let mut users = USERS.lock().unwrap_or_else(|p| p.into_inner());
        if *users == 0 {
            let link = Path::new(ON_THE_PATH);
            match link.symlink_metadata() {
                // A link left by a test run that was killed: replaced.
                Ok(meta) if meta.file_type().is_symlink() => std::fs::remove_file(link).unwrap(),
                Ok(_) => panic!("{ON_THE_PATH} is installed: remove it to run this test"),
                Err(_) => {}
            }
            std::fs::create_dir_all("/usr/local/bin").unwrap();
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_startifact-fs"), link).unwrap();
        }
        *users += 1;
        OnThePath
    }
}

impl Drop for OnThePath {
    fn drop(&mut self) {
        let mut users = USERS.lock().unwrap_or_else(|p| p.into_inner());
        *users -= 1;
        if *users == 0 {
            let _ = std::fs::remove_file(ON_THE_PATH);
        }
    }
}

/// `env -i PATH=...` and `args`: what mount(8) sees at boot, and no more.
fn without_environment(args: &[&str]) -> Command {
    let mut command = Command::new("env");
    command
        .env_clear()
        .arg("-i")
        .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin")
        .args(args)
        .current_dir("/");
    command
}

/// The processes whose command line names `mountpoint` (the daemon, in the background).
fn daemons_of(mountpoint: &Path) -> Vec<u32> {
    let wanted = mountpoint.as_os_str().as_encoded_bytes().to_vec();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.first().is_some_and(|a| a.ends_with(b"startifact-fs"))
                && args.contains(&wanted.as_slice())
        })
        .collect()
}

/// `umount MOUNTPOINT`, then waits for the daemon to be gone; its log must say it saw
/// the unmount and hold no error.
fn umount_stops_the_daemon(mountpoint: &Path, log: &Path) {
    let daemons = daemons_of(mountpoint);
    assert_eq!(
        daemons.len(),
        1,
        "one daemon serves {}",
        mountpoint.display()
    );
    run_ok(Command::new("umount").arg(mountpoint));
    let deadline = Instant::now() + Duration::from_secs(15);
    while !daemons_of(mountpoint).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the daemon still runs after umount: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(mount_line(mountpoint), None);
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains("was unmounted"), "{text}");
    assert!(!text.contains("ERROR"), "{text}");
}

/// Reads 1.0.0 of `p`, stages 2.0.0 with `cp`, and reads it back through the CLI.
fn read_and_stage_through(world: &World, mountpoint: &Path, p: &str) {
    assert_eq!(
        std::fs::read(mountpoint.join(format!("{p}/1.0.0/{p}@1.0.0"))).unwrap(),
        b"mounted by mount(8)"
    );
    std::fs::create_dir(mountpoint.join(format!("{p}/2.0.0"))).unwrap();
    let source = world.file("new.tar", b"staged through mount(8)");
    run_ok(
        Command::new("cp")
            .arg(&source)
            .arg(mountpoint.join(format!("{p}/2.0.0/new.tar"))),
    );
    let downloaded = world.scratch.path().join("downloaded");
    run_ok(
        world
            .cli()
            .args([p, "2.0.0", "--download"])
            .arg(&downloaded),
    );
    assert_eq!(
        std::fs::read(downloaded).unwrap(),
        b"staged through mount(8)"
    );
}

/// The `-o` options that give a mount of `world` everything it needs: the store, the
/// parameter, a staging folder and a log (and, on moto, regions, endpoints and files
/// for the credentials and the SDK's region).
fn options_for(world: &World, log: &Path) -> String {
    options_reaching(world, log, None)
}

/// `options_for`, with every region of a moto world at `endpoint` when given.
fn options_reaching(world: &World, log: &Path, endpoint: Option<&str>) -> String {
    let mut options = vec![
        format!("parameter={}", world.config_param),
        format!(
            "staging_dir={}",
            world.scratch.path().join("staging").display()
        ),
        "staging_size=1M".to_string(),
        format!("log_file={}", log.display()),
        "metadata_ttl=1".to_string(),
    ];
    if let Kind::Moto { url } = &world.kind {
        let url = endpoint.unwrap_or(url);
        let regions: Vec<&str> = world.configuration.regions.split(',').collect();
        let endpoints: Vec<String> = regions.iter().map(|r| format!("{r}={url}")).collect();
        let credentials = world.file(
            "aws/credentials",
            b"[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
        );
        let config = world.file("aws/config", b"[default]\nregion = us-east-1\n");
        options.push(format!("regions={}", regions.join(":")));
        options.push(format!("endpoints={}", endpoints.join(";")));
        options.push(format!("aws_credentials_file={}", credentials.display()));
        options.push(format!("aws_config_file={}", config.display()));
        options.push("connect_timeout=2".to_string());
    }
    options.join(",")
}

fn source_of(world: &World) -> String {
    match &world.kind {
        Kind::Moto { .. } => "aws".to_string(),
        Kind::Local { dir } => format!("local:{}", dir.display()),
    }
}

/// Runs a mount command with no environment; it must exit 0 (else the daemon's log is
/// shown).
fn mount_succeeds(command: &[&str], log: &Path) {
    let (code, stdout, stderr) = run(&mut without_environment(command));
    let logged = std::fs::read_to_string(log).unwrap_or_default();
    assert_eq!(code, 0, "{stdout}{stderr}{logged}");
}

async fn mount_t_with_dash_o_and_no_environment_reads_stages_and_umount_stops_it(world: World) {
    let _on_the_path = OnThePath::new();
    let p = project(&world, "MountT");
    cli_stage(&world, &p, "1.0.0", b"mounted by mount(8)", &[]);
    let mountpoint = world.dir("mnt");
    let log = world.scratch.path().join("daemon.log");
    let options = options_for(&world, &log);
    mount_succeeds(
        &[
            "mount",
            "-t",
            "fuse.startifact-fs",
            &source_of(&world),
            mountpoint.to_str().unwrap(),
            "-o",
            &options,
        ],
        &log,
    );
    let line = mount_line(&mountpoint).expect("mounted when mount(8) returns");
    assert!(line.contains(" fuse.startifact-fs "), "{line}");
    read_and_stage_through(&world, &mountpoint, &p);
    // `df`: the staging limit of 1M, in blocks of 4096 bytes.
    let stat = run_ok(
        Command::new("stat")
            .args(["-f", "-c", "%S %b"])
            .arg(&mountpoint),
    );
    assert_eq!(stat.trim(), "4096 256");
    umount_stops_the_daemon(&mountpoint, &log);
}
on_both_backends!(mount_t_with_dash_o_and_no_environment_reads_stages_and_umount_stops_it);

#[tokio::test]
async fn an_fstab_line_mounts_with_mount_dash_capital_t() {
    let world = World::local(WorldOptions::default()).await;
    let _on_the_path = OnThePath::new();
    let p = project(&world, "Fstab");
    cli_stage(&world, &p, "1.0.0", b"mounted by mount(8)", &[]);
    let mountpoint = world.dir("mnt");
    let log = world.scratch.path().join("daemon.log");
    let fstab = world.file(
        "fstab",
        format!(
            "# a test fstab\n{} {} fuse.startifact-fs {},_netdev,nofail,x-systemd.automount 0 0\n",
            source_of(&world),
            mountpoint.display(),
            options_for(&world, &log)
        )
        .as_bytes(),
    );
    mount_succeeds(
        &[
            "mount",
            "-T",
            fstab.to_str().unwrap(),
            mountpoint.to_str().unwrap(),
        ],
        &log,
    );
    read_and_stage_through(&world, &mountpoint, &p);
    umount_stops_the_daemon(&mountpoint, &log);
}

#[tokio::test]
async fn a_mount_with_only_a_configuration_file() {
    let world = World::local(WorldOptions::default()).await;
    let p = project(&world, "ConfigOnly");
    cli_stage(&world, &p, "1.0.0", b"mounted by mount(8)", &[]);
    let Kind::Local { dir } = &world.kind else {
        unreachable!("a local world")
    };
    let mountpoint = world.dir("mnt");
    let log = world.scratch.path().join("daemon.log");
    let config = world.file(
        "config.toml",
        format!(
            "# everything this mount needs\nlocal_store = \"{}\"\nparameter = \"{}\"\n\
             staging_dir = \"{}\"\nlog_file = \"{}\"\nmetadata_ttl = 1\n",
            dir.display(),
            world.config_param,
            world.scratch.path().join("staging").display(),
            log.display()
        )
        .as_bytes(),
    );
    mount_succeeds(
        &[
            env!("CARGO_BIN_EXE_startifact-fs"),
            "--config",
            config.to_str().unwrap(),
            mountpoint.to_str().unwrap(),
        ],
        &log,
    );
    read_and_stage_through(&world, &mountpoint, &p);
    umount_stops_the_daemon(&mountpoint, &log);
}

#[tokio::test]
async fn a_bad_configuration_file_is_an_error_naming_its_line() {
    let world = World::local(WorldOptions::default()).await;
    let config = world.file(
        "config.toml",
        b"parameter = \"/p\"\nstaging_size = \"lots\"\n",
    );
    let (code, _, stderr) = run(&mut without_environment(&[
        env!("CARGO_BIN_EXE_startifact-fs"),
        "-o",
        &format!("config={}", config.display()),
        world.dir("mnt").to_str().unwrap(),
    ]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "bad configuration file {}, line 2",
            config.display()
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_ca_bundle_that_cannot_be_used_is_an_error_naming_it() {
    let world = World::local(WorldOptions::default()).await;
    let missing = world.scratch.path().join("no-such-ca.pem");
    let not_pem = world.file("not-a-ca.pem", b"hello\n");
    let mountpoint = world.dir("mnt");
    for (how, args) in [
        (
            "--ca-bundle",
            vec!["--ca-bundle".to_string(), missing.display().to_string()],
        ),
        (
            "-o ca_bundle",
            vec!["-o".to_string(), format!("ca_bundle={}", not_pem.display())],
        ),
        (
            "AWS_CA_BUNDLE",
            vec![format!("AWS_CA_BUNDLE={}", missing.display())],
        ),
    ] {
        let bad = if how == "-o ca_bundle" {
            &not_pem
        } else {
            &missing
        };
        let mut all: Vec<&str> = Vec::new();
        let env_first = how == "AWS_CA_BUNDLE";
        if env_first {
            all.push(&args[0]);
        }
        all.push(env!("CARGO_BIN_EXE_startifact-fs"));
        if !env_first {
            all.extend(args.iter().map(String::as_str));
        }
        all.extend(["aws", mountpoint.to_str().unwrap()]);
        let (code, _, stderr) = run(&mut without_environment(&all));
        assert_eq!(code, 1, "{how}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot use the CA bundle {}", bad.display())),
            "{how}: {stderr}"
        );
        assert_eq!(mount_line(&mountpoint), None, "{how}");
    }
}

/// Mounts `world` (moto) through the TLS proxy with `-o options`, `env` set, no other
/// environment; returns the mount point and the log, and whether it read 1.0.0 of `p`.
fn read_over_https(
    world: &World,
    proxy: &TlsProxy,
    name: &str,
    extra_option: Option<String>,
    env: &[String],
    p: &str,
) -> (PathBuf, PathBuf, std::io::Result<Vec<u8>>) {
    let mountpoint = world.dir(name);
    let log = world.scratch.path().join(format!("{name}.log"));
    // One mount at a time: they share the world's staging folder.
    let mut options = options_reaching(world, &log, Some(&proxy.url()));
    if let Some(extra) = extra_option {
        options.push(',');
        options.push_str(&extra);
    }
    let mut args: Vec<&str> = env.iter().map(String::as_str).collect();
    args.extend([
        env!("CARGO_BIN_EXE_startifact-fs"),
        "aws",
        mountpoint.to_str().unwrap(),
        "-o",
        &options,
    ]);
    let (code, stdout, stderr) = run(&mut without_environment(&args));
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(code, 0, "{name}: {stdout}{stderr}{logged}");
    let read = std::fs::read(mountpoint.join(format!("{p}/1.0.0/{p}@1.0.0")));
    (mountpoint, log, read)
}

#[tokio::test]
async fn https_endpoints_of_a_private_ca_are_trusted_through_the_ca_bundle_only() {
    // On moto only: the local store has no HTTP to put TLS in front of.
    let world = World::moto(WorldOptions::default()).await;
    let p = project(&world, "Https");
    cli_stage(&world, &p, "1.0.0", b"mounted by mount(8)", &[]);
    let certificates = Certificates::make(&world.dir("tls"));
    let Kind::Moto { url } = &world.kind else {
        unreachable!("a moto world")
    };
    let proxy = TlsProxy::start(&certificates, url);

    let by_option = format!("ca_bundle={}", certificates.ca.display());
    let (mountpoint, log, read) =
        read_over_https(&world, &proxy, "option", Some(by_option), &[], &p);
    assert_eq!(
        read.unwrap(),
        b"mounted by mount(8)",
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    umount_stops_the_daemon(&mountpoint, &log);

    let by_variable = [format!("AWS_CA_BUNDLE={}", certificates.ca.display())];
    let (mountpoint, log, read) =
        read_over_https(&world, &proxy, "variable", None, &by_variable, &p);
    assert_eq!(
        read.unwrap(),
        b"mounted by mount(8)",
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    umount_stops_the_daemon(&mountpoint, &log);

    // Without the bundle the system's roots do not know the CA: nothing is read, and
    // the log says why.
    let (mountpoint, log, read) = read_over_https(&world, &proxy, "none", None, &[], &p);
    assert!(read.is_err(), "read without trusting the CA");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.to_lowercase().contains("certificate"), "{logged}");
    run_ok(Command::new("umount").arg(&mountpoint));
}
