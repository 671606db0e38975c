//! A real mount of `startifact-fs` (in the foreground, as systemd runs it) over a
//! world, on a fresh folder; unmounted by SIGTERM when dropped (or by another signal).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::world::World;

pub struct Mount {
    pub path: PathBuf,
    /// The daemon's own default staging folder is used (`start_with_default_staging`).
    default_staging: bool,
    child: Option<Child>,
    /// Holds the mount point and the log; `None` only while being handed on.
    dir: Option<tempfile::TempDir>,
    /// The daemon's log: in `dir`, unless the test gave one (`--log-file`, `-o log_file=`).
    log: PathBuf,
}

/// The log file a test gave the daemon itself, if any: the harness then adds none, since
/// a flag of its own would win over the test's `-o log_file=`.
fn given_log_file(args: &[&str]) -> Option<PathBuf> {
    args.iter().enumerate().find_map(|(i, arg)| {
        if *arg == "--log-file" {
            return args.get(i + 1).map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--log-file=") {
            return Some(PathBuf::from(path));
        }
        arg.split(',')
            .find_map(|option| option.strip_prefix("log_file="))
            .map(PathBuf::from)
    })
}

/// The line of /proc/mounts for a mount point, if it is mounted.
pub fn mount_line(path: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let wanted = path.display().to_string();
    mounts
        .lines()
        .find(|line| line.split(' ').nth(1) == Some(wanted.as_str()))
        .map(str::to_string)
}

pub fn daemon_command(world: &World) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_startifact-fs"));
    command.env_clear().envs(world.env());
    command
}

impl Mount {
    /// Mounts in the foreground with `args` before the mount point.
    pub fn start(world: &World, args: &[&str]) -> Mount {
        Self::start_with_env(world, args, &[])
    }

    /// Mounts with `env` set over the world's environment.
    pub fn start_with_env(world: &World, args: &[&str], env: &[(&str, &str)]) -> Mount {
        let dir = tempfile::tempdir().expect("mount folder");
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).expect("mount point");
        Self::start_in(world, args, env, dir, path, Some("1"))
    }

    /// Mounts with the staging folder the daemon chooses itself (as root: under
    /// `/var/lib/startifact-fs/staging`, one per store), not one of the test's own.
    pub fn start_with_default_staging(world: &World, args: &[&str]) -> Mount {
        let dir = tempfile::tempdir().expect("mount folder");
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).expect("mount point");
        Self::start_as(world, args, &[], dir, path, Some("1"), true)
    }

    /// Mounts with the daemon's own `--metadata-ttl` (every other mount trusts what it
    /// read for 1 s, so that tests see changes made elsewhere at once).
    pub fn start_with_default_metadata_ttl(world: &World, args: &[&str]) -> Mount {
        let dir = tempfile::tempdir().expect("mount folder");
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).expect("mount point");
        Self::start_in(world, args, &[], dir, path, None)
    }

    /// Mounts again on the mount point of `previous` (whose daemon is gone).
    pub fn restart(world: &World, args: &[&str], mut previous: Mount) -> Mount {
        previous.kill();
        let dir = previous.dir.take().expect("mount folder");
        let path = previous.path.clone();
        Self::start_as(
            world,
            args,
            &[],
            dir,
            path,
            Some("1"),
            previous.default_staging,
        )
    }

    /// Kills the daemon with SIGKILL, leaving its mount stale.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn start_in(
        world: &World,
        args: &[&str],
        env: &[(&str, &str)],
        dir: tempfile::TempDir,
        path: PathBuf,
        metadata_ttl: Option<&str>,
    ) -> Mount {
        Self::start_as(world, args, env, dir, path, metadata_ttl, false)
    }

    fn start_as(
        world: &World,
        args: &[&str],
        env: &[(&str, &str)],
        dir: tempfile::TempDir,
        path: PathBuf,
        metadata_ttl: Option<&str>,
        default_staging: bool,
    ) -> Mount {
        let given_log = given_log_file(args);
        let log = given_log
            .clone()
            .unwrap_or_else(|| dir.path().join("daemon.log"));
        let mut command = daemon_command(world);
        command.envs(env.iter().copied());
        command.arg("-f");
        if let Some(seconds) = metadata_ttl {
            command.args(["--metadata-ttl", seconds]);
        }
        command.args(["--log-level", "debug"]);
        if given_log.is_none() {
            command.arg("--log-file").arg(&log);
        }
        // A staging folder of its own (kept across `restart`), never the machine's.
        if !default_staging && !args.iter().any(|a| a.starts_with("--staging-dir")) {
            command.arg("--staging-dir").arg(dir.path().join("staging"));
        }
        let child = command
            .args(args)
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("startifact-fs starts");
        let mut mount = Mount {
            path,
            default_staging,
            child: Some(child),
            dir: Some(dir),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        // Mounted and answering (a stale mount at the same place does not answer).
        let answering = |path: &Path| mount_line(path).is_some() && daemon_answers(path);
        while !answering(&mount.path) {
            if let Some(status) = mount
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("startifact-fs exited with {status}: {}", mount.log());
            }
            assert!(
                Instant::now() < deadline,
                "not mounted within 30 s: {}",
                mount.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        mount
    }

    /// The staging folder the mount keeps its spool in (unless the test gave one).
    pub fn staging_dir(&self) -> PathBuf {
        assert!(!self.default_staging, "the daemon chose its staging folder");
        self.dir
            .as_ref()
            .map(|d| d.path().join("staging"))
            .unwrap_or_default()
    }

    /// The daemon's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; returns the daemon's exit code once it is gone.
    pub fn stop(&mut self) -> Option<i32> {
        self.stop_with(libc::SIGTERM)
    }

    /// Sends `signal`; returns the daemon's exit code once it is gone (None when it
    /// was still there 20 s later, or died of a signal).
    pub fn stop_with(&mut self, signal: libc::c_int) -> Option<i32> {
        let mut child = self.child.take()?;
        unsafe { libc::kill(child.id() as i32, signal) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = Command::new("fusermount3")
                    .arg("-uz")
                    .arg(&self.path)
                    .status();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn join(&self, relative: &str) -> PathBuf {
        self.path.join(relative)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether the daemon of the mount at `path` answers: a `statfs`, which the kernel never
/// answers from a cache (a stat may be answered from the root's cached attributes, even
/// on a stale mount) and which needs no region (the root cannot be listed when every
/// region is down).
fn daemon_answers(path: &Path) -> bool {
    let Ok(path) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: a zeroed statvfs is a valid value to be overwritten, and `path` is a
    // NUL-terminated string that outlives the call.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    unsafe { libc::statvfs(path.as_ptr(), &mut stat) == 0 }
}
