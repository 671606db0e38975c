//! Running as a service: every unit of `systemd/` passes `systemd-analyze verify` (with
//! no systemd running), the notify protocol seen from a socket of the test (`READY=1`
//! only once the mount answers, `STATUS=`, `STOPPING=1` at SIGTERM), and the log as a
//! service writes it: plain text on a redirected stderr, one line per stage, `RUST_LOG`,
//! and SIGHUP reopening the log file for logrotate.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::files::project;
use crate::support::mount::{daemon_command, mount_line};
use crate::support::world::{World, WorldOptions, REGIONS};

const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

/// A daemon in the foreground on a mount point of its own, as systemd runs it; stopped
/// with SIGTERM (and the mount detached if it hangs) when dropped.
struct Service {
    child: Option<Child>,
    mountpoint: PathBuf,
    dir: tempfile::TempDir,
}

impl Service {
    /// Starts `startifact-fs -f ARGS MOUNTPOINT` with `env` over the world's, its
    /// stderr into `stderr.log` of its folder; does not wait for the mount.
    fn spawn(world: &World, args: &[&str], env: &[(&str, &str)]) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let mountpoint = dir.path().join("mnt");
        std::fs::create_dir(&mountpoint).unwrap();
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = daemon_command(world)
            .envs(env.iter().copied())
            .arg("-f")
            .arg("--staging-dir")
            .arg(dir.path().join("staging"))
            .args(args)
            .arg(&mountpoint)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Service {
            child: Some(child),
            mountpoint,
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    fn signal(&self, signal: libc::c_int) {
        unsafe { libc::kill(self.pid(), signal) };
    }

    /// Waits until the mount answers (listing it works).
    fn wait_until_mounted(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(mount_line(&self.mountpoint).is_some()
            && std::fs::read_dir(&self.mountpoint).is_ok())
        {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("exited with {status}: {}", self.read("stderr.log"));
            }
            assert!(Instant::now() < deadline, "not mounted within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM; the exit code once the daemon is gone (None: still there after 20 s).
    fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let _ = Command::new("fusermount3")
                    .arg("-uz")
                    .arg(&self.mountpoint)
                    .status();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits (up to 10 s) until `done`.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn statfs_type(path: &Path) -> Option<i64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(path.as_ptr(), &mut stat) } == 0).then_some(stat.f_type)
}

/// The units of `systemd/`, as `systemd-analyze verify` would find them installed: the
/// template as one instance, and the daemon at the path of the binary just built.
fn units_to_verify(into: &Path) -> Vec<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let mut units = Vec::new();
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let is_unit = [".service", ".mount", ".automount"]
            .iter()
            .any(|suffix| name.ends_with(suffix));
        if !is_unit {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "/usr/bin/startifact-fs",
            env!("CARGO_BIN_EXE_startifact-fs"),
        );
        let installed = into.join(name.replace("@.service", "@mnt-artifacts.service"));
        std::fs::write(&installed, text).unwrap();
        units.push(installed);
    }
    units.sort();
    units
}

#[test]
fn every_unit_of_the_systemd_folder_passes_systemd_analyze_verify() {
    let scratch = tempfile::tempdir().unwrap();
    let units = units_to_verify(scratch.path());
    let names: Vec<String> = units
        .iter()
        .map(|u| u.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "mnt-artifacts.automount",
            "mnt-artifacts.mount",
            "startifact-fs@mnt-artifacts.service"
        ]
    );
    for unit in &units {
        let output = Command::new("systemd-analyze")
            .arg("verify")
            .arg(unit)
            .current_dir(scratch.path())
            .output()
            .expect("systemd-analyze (Debian's systemd package; scripts/test.sh installs it)");
        // Verify exits 0 on unknown keys too, with a warning: any output is a defect.
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success() && said.trim().is_empty(),
            "{}: {said}",
            unit.display()
        );
    }
}

/// The service keeps the mount visible to the host, and is what systemd expects of a
/// daemon that mounts: none of the settings that give it a mount namespace.
#[test]
fn the_service_unit_is_type_notify_and_never_hides_its_mount_in_a_namespace() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let unit = std::fs::read_to_string(folder.join("startifact-fs@.service")).unwrap();
    let settings: Vec<&str> = unit
        .lines()
        .filter(|line| !line.starts_with('#') && line.contains('='))
        .collect();
    for wanted in [
        "Type=notify",
        "Restart=on-failure",
        "EnvironmentFile=-/etc/default/startifact-fs",
        "StateDirectory=startifact-fs",
        "CacheDirectory=startifact-fs/%i",
        "CapabilityBoundingSet=CAP_SYS_ADMIN CAP_SYS_PTRACE CAP_DAC_READ_SEARCH",
        "SystemCallFilter=@system-service @mount",
        "LockPersonality=yes",
    ] {
        assert!(settings.contains(&wanted), "{wanted} missing");
    }
    let exec = settings
        .iter()
        .find(|line| line.starts_with("ExecStart="))
        .unwrap();
    assert!(
        exec.contains(" -f ") && exec.contains("--cache-dir ${CACHE_DIRECTORY}"),
        "{exec}"
    );
    for namespaced in [
        "PrivateTmp=",
        "ProtectSystem=",
        "ProtectHome=",
        "PrivateDevices=",
        "ReadWritePaths=",
        "ReadOnlyPaths=",
        "InaccessiblePaths=",
        "ProtectKernelTunables=",
        "ProtectKernelModules=",
        "ProtectControlGroups=",
        "PrivateMounts=",
        "TemporaryFileSystem=",
        "BindPaths=",
    ] {
        assert!(
            !settings.iter().any(|line| line.starts_with(namespaced)),
            "{namespaced} would hide the mount from the host"
        );
    }
    let fstab = std::fs::read_to_string(folder.join("fstab.example")).unwrap();
    let line = fstab.lines().find(|l| !l.starts_with('#')).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        &fields[..3],
        ["aws", "/mnt/artifacts", "fuse.startifact-fs"]
    );
    for option in ["_netdev", "x-systemd.automount", "nofail"] {
        assert!(fields[3].split(',').any(|o| o == option), "{line}");
    }
    let default = std::fs::read_to_string(folder.join("startifact-fs.default")).unwrap();
    for variable in ["STARTIFACT_REGIONS=", "STARTIFACT_FS_OPTIONS=", "RUST_LOG="] {
        assert!(default.contains(variable), "{variable}");
    }
}

/// The datagrams received on `socket` until one has `line` (or 30 s pass).
fn receive_until(socket: &UnixDatagram, line: &str, seen: &mut Vec<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buffer = [0u8; 4096];
    loop {
        assert!(
            Instant::now() < deadline,
            "no {line} within 30 s; received: {seen:?}"
        );
        let Ok(n) = socket.recv(&mut buffer) else {
            continue;
        };
        let message = String::from_utf8_lossy(&buffer[..n]).to_string();
        seen.push(message.clone());
        if message.lines().any(|l| l == line) {
            return message;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_notifies_ready_only_once_the_mount_answers_then_status_and_stopping_at_sigterm()
{
    let world = World::local(WorldOptions::default()).await;
    let sockets = tempfile::tempdir().unwrap();
    let socket_path = sockets.path().join("notify");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut service = Service::spawn(
        &world,
        &[],
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
    );
    let mut seen = Vec::new();
    let ready = receive_until(&socket, "READY=1", &mut seen);
    // At the moment READY=1 is read, the mount is there and answers.
    let kind = statfs_type(&service.mountpoint);
    let listed = std::fs::read_dir(&service.mountpoint).map(|_| ());
    assert_eq!(
        kind,
        Some(FUSE_SUPER_MAGIC),
        "not mounted at READY=1: {seen:?}"
    );
    assert!(listed.is_ok(), "{listed:?}");
    assert_eq!(
        seen.iter().filter(|m| m.contains("READY=1")).count(),
        1,
        "{seen:?}"
    );
    assert!(
        ready.contains(&format!("MAINPID={}", service.pid())),
        "{ready}"
    );
    let serving = format!(
        "STATUS=serving {}; 0 stages in flight; all 3 regions answer",
        service.mountpoint.display()
    );
    assert!(ready.lines().any(|l| l == serving), "{ready}");
    assert!(
        seen[0].starts_with("STATUS=starting"),
        "a status while it starts: {seen:?}"
    );

    service.signal(libc::SIGTERM);
    let stopping = receive_until(&socket, "STOPPING=1", &mut seen);
    assert!(stopping.contains("STATUS=SIGTERM: stopping"), "{stopping}");
    assert_eq!(service.stop(), Some(0), "{}", service.read("stderr.log"));
    assert!(mount_line(&service.mountpoint).is_none(), "still mounted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirected_stderr_log_is_plain_text_with_one_line_per_stage() {
    let world = World::local(WorldOptions::default()).await;
    let mut service = Service::spawn(&world, &[], &[]);
    service.wait_until_mounted();
    let p = project(&world, "Logged");
    let folder = service.mountpoint.join(format!("{p}/1.0.0"));
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("dist.bin"), vec![7u8; 12345]).unwrap();
    assert_eq!(service.stop(), Some(0));

    let log = service.read("stderr.log");
    assert!(log.contains("mounted"), "{log}");
    assert!(!log.contains('\u{1b}'), "escape codes in the log: {log:?}");
    let stage_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" stage: ") && l.contains(&p))
        .collect();
    assert_eq!(stage_lines.len(), 1, "{log}");
    let line = stage_lines[0];
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("3 of 3 regions hold it"), "{line}");
    assert!(
        line.contains(&format!("project=\"{p}\"")) || line.contains(&format!("project={p}")),
        "{line}"
    );
    assert!(
        line.contains("version=1.0.0") && line.contains("size=12345"),
        "{line}"
    );
    assert!(line.contains("seconds="), "{line}");
    for region in REGIONS {
        assert!(
            line.contains(&format!("{region}: staged, latest moved to it")),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reopens_the_log_file_so_logrotate_can_move_it_away() {
    let world = World::local(WorldOptions::default()).await;
    let log = tempfile::tempdir().unwrap();
    let path = log.path().join("daemon.log");
    let mut service = Service::spawn(&world, &["--log-file", path.to_str().unwrap()], &[]);
    service.wait_until_mounted();
    let rotated = log.path().join("daemon.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    service.signal(libc::SIGHUP);
    wait_until("a new log at the original path", || {
        std::fs::read_to_string(&path).is_ok_and(|text| text.contains("log file reopened"))
    });
    assert_eq!(service.stop(), Some(0), "SIGHUP does not end the daemon");
    let old = std::fs::read_to_string(&rotated).unwrap();
    let new = std::fs::read_to_string(&path).unwrap();
    assert!(old.contains("mounted"), "{old}");
    assert!(!old.contains("SIGTERM"), "{old}");
    let said = format!("SIGTERM: unmounting {}", service.mountpoint.display());
    assert!(new.contains(&said) && !new.contains(" mounted "), "{new}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_log_filters_the_log_without_log_level_and_log_level_wins_over_it() {
    let world = World::local(WorldOptions::default()).await;
    // The daemon's own module quiet, the rest at info.
    let rust_log = [("RUST_LOG", "startifact=info,startifact::mount::daemon=warn")];
    for (args, daemon_lines) in [(&[][..], false), (&["--log-level", "info"][..], true)] {
        let mut service = Service::spawn(&world, args, &rust_log);
        service.wait_until_mounted();
        // An info line of another module: the filter lets the log through at all.
        service.signal(libc::SIGHUP);
        wait_until("the SIGHUP line", || {
            service.read("stderr.log").contains("SIGHUP")
        });
        assert_eq!(service.stop(), Some(0));
        let log = service.read("stderr.log");
        assert_eq!(
            log.contains("SIGTERM: unmounting"),
            daemon_lines,
            "{args:?}: {log}"
        );
    }
}
