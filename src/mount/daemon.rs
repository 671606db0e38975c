//! The `startifact-fs` daemon's life: check the mount point (and clean up a stale
//! one), fork into the background before any thread, the tokio runtime or the SDK
//! clients exist, mount, tell the waiting parent once the mount answers (or why it
//! failed), and unmount cleanly on SIGINT/SIGTERM (after the stages in flight, see
//! `shutdown`; detaching only when the mount stays busy). Under systemd it says so too
//! (`notify`); SIGHUP reopens the log file (`logging`). The folders it keeps files in,
//! and its log, are checked at start: see `crate::fs::host::private_dir`.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::arguments::parse_arguments;
use crate::fs::staging::ABANDONED_TTL;
use crate::fs::{ArtifactFs, DiskCache};

use super::access::Access;
use super::fuse::FuseAdapter;
use super::invalidations::Invalidations;
use super::notify;
use super::options::{MountArgs, MountConfig, Source};
use super::staging_folder::{self, check_private_folder, StagingFolder};

const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;
/// Read-ahead asked of the kernel for the mount, in KiB.
const READ_AHEAD_KB: u32 = 1024;
/// How long a busy mount is retried before it is detached.
const BUSY_UNMOUNT_WAIT: Duration = Duration::from_secs(10);

/// The write end of the pipe the parent waits on, in the background case.
struct Readiness(Option<std::fs::File>);

impl Readiness {
    fn report(&mut self, message: &str) {
        if let Some(mut pipe) = self.0.take() {
            let _ = pipe.write_all(message.as_bytes());
        }
    }
}

/// Buffers of at least this size are mapped and unmapped on their own.
#[cfg(target_env = "gnu")]
const MMAP_THRESHOLD: libc::c_int = 2 << 20;

/// Free memory at the top of a heap past this size is given back to the system.
#[cfg(target_env = "gnu")]
const TRIM_THRESHOLD: libc::c_int = 2 << 20;

/// Memory freed is given back: glibc raises its mmap threshold each time a large block
/// is freed, after which 8 MiB part buffers, allocated on many short-lived worker
/// threads, land in per-thread heaps that keep them. A fixed threshold keeps them mapped
/// on their own, so a 200 MB stage ends near where it started. It lies above 1 MiB, the
/// largest read or write the kernel sends: a buffer of one (a read's answer joined from
/// the body's frames, a write's bytes) comes from a heap, and a heap keeps up to 2 MiB
/// free at its top (glibc's default is 128 KiB), so that such buffers are not given
/// back and faulted in again on every call. Measured on a cold `cat` of 200 MB from
/// moto: the daemon's CPU went from 0.36-0.42 s to 0.29-0.31 s (most of it the kernel's
/// page faults). 8 MiB saved more (0.22-0.28 s) but took the peak of 8 readers at once
/// past 128 MiB in one round of five.
fn give_back_large_buffers() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets a tunable of the allocator, before any thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

pub fn main() -> ExitCode {
    give_back_large_buffers();
    let args: MountArgs = match parse_arguments("startifact-fs: ", "") {
        Ok(args) => args,
        Err(code) => return code,
    };
    let config = match args.resolve() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("startifact-fs: {message}");
            return ExitCode::FAILURE;
        }
    };
    // Before anything else: a daemon with nowhere safe to keep its spool says so.
    let choose = || staging_folder::choose(&config, &|name| std::env::var(name).ok());
    let staging_folder = match (!config.read_only).then(choose) {
        None => None,
        Some(Ok(folder)) => Some(folder),
        Some(Err(message)) => {
            eprintln!("startifact-fs: {message}");
            return ExitCode::FAILURE;
        }
    };
    // A CA bundle that cannot be used is said on the terminal, before the daemon forks.
    if let (Source::Aws, Some(bundle)) = (&config.source, &config.ca_bundle) {
        if let Err(e) = crate::storage::trust::read_bundle(bundle) {
            eprintln!("startifact-fs: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mountpoint = match prepare_mountpoint(&config.mountpoint) {
        Ok(path) => path,
        Err(message) => {
            eprintln!("startifact-fs: {message}");
            return ExitCode::FAILURE;
        }
    };
    let readiness = if config.foreground {
        Readiness(None)
    } else {
        match daemonize() {
            Ok(pipe) => Readiness(Some(pipe)),
            Err(message) => {
                eprintln!("startifact-fs: {message}");
                return ExitCode::FAILURE;
            }
        }
    };
    serve(config, staging_folder, mountpoint, readiness)
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// Resolves the mount point; a stale FUSE mount left by a killed daemon is detached
/// with `fusermount3 -uz` (and said so), anything else unusable is a clear error.
fn prepare_mountpoint(path: &Path) -> Result<PathBuf, String> {
    // A stale mount may still answer `stat` from the kernel's attribute cache; listing
    // it always asks the (dead) daemon.
    let probe = std::fs::metadata(path).and_then(|meta| {
        if meta.is_dir() {
            std::fs::read_dir(path).map(|_| meta)
        } else {
            Ok(meta)
        }
    });
    match probe {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(format!("{} is not a folder", path.display())),
        Err(e) if errno_of(&e) == libc::ENOTCONN => {
            eprintln!(
                "startifact-fs: {} is a stale mount (Transport endpoint is not connected); detaching it",
                path.display()
            );
            let status = std::process::Command::new("fusermount3")
                .arg("-uz")
                .arg(path)
                .status();
            let detached = status.is_ok_and(|s| s.success()) || detach(path).is_ok();
            if !detached || std::fs::metadata(path).is_err() {
                return Err(format!(
                    "{} is a stale mount that could not be detached: run fusermount3 -u {}",
                    path.display(),
                    path.display()
                ));
            }
        }
        Err(e) => {
            return Err(format!(
                "cannot use {} as a mount point: {e}",
                path.display()
            ))
        }
    }
    std::fs::canonicalize(path).map_err(|e| format!("cannot resolve {}: {e}", path.display()))
}

/// Forks; the parent waits until the child reports and exits with its verdict (it
/// never returns). Returns, in the child, the pipe to report on.
fn daemonize() -> Result<std::fs::File, String> {
    let mut fds = [0; 2];
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    match unsafe { libc::fork() } {
        -1 => Err(format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            drop(read_end);
            unsafe { libc::setsid() };
            redirect_stdio_to_null();
            Ok(std::fs::File::from(write_end))
        }
        _child => {
            drop(write_end);
            let mut message = String::new();
            let _ = std::fs::File::from(read_end).read_to_string(&mut message);
            if message == "ready" {
                std::process::exit(0);
            }
            if message.is_empty() {
                message = "the daemon exited before the mount answered (see its log)".into();
            }
            eprintln!("startifact-fs: {message}");
            std::process::exit(1);
        }
    }
}

fn redirect_stdio_to_null() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        for fd in 0..3 {
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

fn serve(
    config: MountConfig,
    staging_folder: Option<StagingFolder>,
    mountpoint: PathBuf,
    mut readiness: Readiness,
) -> ExitCode {
    match run(&config, staging_folder, &mountpoint, &mut readiness) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            readiness.report(&message);
            notify::failed(&message);
            if config.foreground {
                eprintln!("startifact-fs: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(
    config: &MountConfig,
    staging_folder: Option<StagingFolder>,
    mountpoint: &Path,
    readiness: &mut Readiness,
) -> Result<(), String> {
    let log = super::logging::init(config)?;
    notify::starting(mountpoint);
    // Before any region is asked anything.
    let staging = staging_folder
        .as_ref()
        .map(|folder| staging_folder::open(config, folder))
        .transpose()?;
    if let Some(dir) = &config.cache_dir {
        check_private_folder("cache", dir)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("startifact-io")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    // Listened for from here on: a SIGTERM while the daemon starts waits for the mount,
    // then unmounts it cleanly, instead of killing the daemon half way (and a SIGHUP
    // reopens the log instead of ending it).
    let (mut term, mut int, mut hup) = runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(term), Ok(int), Ok(hup)) => Ok((term, int, hup)),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                Err(format!("cannot listen for signals: {e}"))
            }
        }
    })?;

    // Flags, `-o`, the environment and the file are already laid over each other.
    let session = runtime
        .block_on(config.session_builder().build())
        .map_err(|e| e.to_string())?;
    let fs_options = config.fs_options(unsafe { libc::getuid() }, unsafe { libc::getgid() });
    let watched = session.clone();
    let mut fs = ArtifactFs::new(session.clone(), fs_options);
    let mut kept_staging = None;
    if let Some(staging) = staging {
        let mut staging = staging.sending_to(session.clone());
        if config.allow_other {
            // Others write here too: no one user fills the spool for everyone.
            staging = staging.with_share(config.staging_size / 2);
        }
        tracing::info!(dir = %staging.dir().display(), limit = config.staging_size, "staging folder (status.json says what it holds, @store.txt which store it is for)");
        let staging = Arc::new(staging);
        let sweeper = Arc::clone(&staging);
        runtime.spawn(async move {
            let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
            loop {
                every_hour.tick().await;
                let expiring = Arc::clone(&sweeper);
                let _ =
                    tokio::task::spawn_blocking(move || expiring.expire_abandoned(ABANDONED_TTL))
                        .await;
            }
        });
        // Resumes the stages a stopped daemon left, and repairs, in the background.
        runtime.spawn(Arc::clone(&staging).keep_repairing(session.clone()));
        kept_staging = Some(Arc::clone(&staging));
        fs = fs.with_staging(staging);
    }
    if let Some(dir) = &config.cache_dir {
        let cache = DiskCache::open(dir, config.cache_size)
            .map_err(|e| format!("cannot use the cache folder {}: {e}", dir.display()))?;
        tracing::info!(dir = %dir.display(), used = cache.used(), limit = config.cache_size, "on-disk cache");
        fs = fs.with_cache(Arc::new(cache));
    }
    let fs = Arc::new(fs);
    for hint in runtime.block_on(fs.listing_hints()) {
        tracing::warn!("{hint}");
    }

    let mut fuse_config = fuser::Config::default();
    fuse_config.mount_options = vec![
        fuser::MountOption::FSName(source_name(&config.source)),
        fuser::MountOption::Subtype("startifact-fs".to_string()),
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
    ];
    if config.read_only {
        fuse_config.mount_options.push(fuser::MountOption::RO);
    }
    if config.allow_other {
        fuse_config.acl = fuser::SessionACL::All;
    }
    fuse_config.n_threads = Some(2);

    if config.default_permissions {
        fuse_config
            .mount_options
            .push(fuser::MountOption::DefaultPermissions);
    }
    let access = Access::new(unsafe { libc::geteuid() }, fs.options().uid, config.stagers);
    let (invalidations, teller) = Invalidations::new();
    let invalidations = Arc::new(invalidations);
    let adapter = FuseAdapter::new(
        Arc::clone(&fs),
        runtime.handle().clone(),
        access,
        Arc::clone(&invalidations),
    );
    let session = mount_session(adapter, mountpoint, &fuse_config, config)?;
    teller.start(session.notifier());
    fs.set_invalidator(Box::new(move |parent, name| {
        invalidations.forget(parent, name)
    }));
    let background = session
        .spawn()
        .map_err(|e| format!("cannot start serving: {e}"))?;

    wait_until_answering(mountpoint)?;
    raise_read_ahead(mountpoint);
    tracing::info!(mountpoint = %mountpoint.display(), "mounted");
    readiness.report("ready");
    runtime.spawn(notify::keep_status(
        mountpoint.to_path_buf(),
        watched,
        kept_staging.clone(),
    ));

    let (ended_tx, mut ended_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = background.join();
        let _ = ended_tx.send(result);
    });
    let signal = runtime.block_on(async {
        loop {
            tokio::select! {
                _ = term.recv() => return Ok(Some("SIGTERM")),
                _ = int.recv() => return Ok(Some("SIGINT")),
                _ = hup.recv() => log.reopen(),
                ended = &mut ended_rx => {
                    return match ended {
                        Ok(Ok(())) => Ok(None),
                        Ok(Err(e)) => Err(format!("the FUSE session ended: {e}")),
                        Err(_) => Ok(None),
                    }
                }
            }
        }
    })?;
    notify::stopping(&match (signal, &kept_staging) {
        (None, _) => format!("{} was unmounted: stopping", mountpoint.display()),
        (Some(signal), Some(staging)) => format!(
            "{signal}: stopping after {} stages in flight, then unmounting",
            staging.stages_in_flight()
        ),
        (Some(signal), None) => format!("{signal}: unmounting"),
    });
    if let Some(signal) = signal {
        if let Some(staging) = &kept_staging {
            super::shutdown::finish_stages(&runtime, staging, config.stop_timeout);
        }
        tracing::info!("{signal}: unmounting {}", mountpoint.display());
        unmount(mountpoint);
    } else {
        tracing::info!("{} was unmounted", mountpoint.display());
    }
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

/// The kernel offers FUSE filesystems 128 KiB of read-ahead and `init` cannot raise it;
/// as root, the mount's backing device can. Larger kernel reads mean fewer round trips
/// through the daemon. Best effort: without the right, 128 KiB stays.
///
/// The device is read from `/proc/self/mountinfo`, never by a `stat` of the mount: that
/// would be a request to this daemon, and a daemon killed while its own request is
/// being answered waits for it forever (the kernel cannot end it, so the mount never
/// goes stale).
fn raise_read_ahead(mountpoint: &Path) {
    let Some(device) = mount_device(mountpoint) else {
        return;
    };
    let setting = format!("/sys/class/bdi/{device}/read_ahead_kb");
    if let Err(e) = std::fs::write(&setting, READ_AHEAD_KB.to_string()) {
        tracing::debug!("cannot raise the read-ahead ({setting}): {e}");
    }
}

/// The "major:minor" of the last mount on `mountpoint`, from `/proc/self/mountinfo`.
fn mount_device(mountpoint: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // Fields: ID, parent ID, major:minor, root, mount point (spaces as \040), ...
    let target = mountpoint.to_str()?.replace(' ', "\\040");
    info.lines().rev().find_map(|line| {
        let mut fields = line.split(' ');
        let device = fields.nth(2)?;
        (fields.nth(1)? == target).then(|| device.to_string())
    })
}

/// Waits until the mount point is our FUSE mount and answers.
fn wait_until_answering(mountpoint: &Path) -> Result<(), String> {
    let path = CString::new(mountpoint.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statfs(path.as_ptr(), &mut stat) } == 0 && stat.f_type == FUSE_SUPER_MAGIC
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "the mount on {} did not answer within 30 s",
        mountpoint.display()
    ))
}

/// Unmounts; a busy mount (EBUSY, as root) is retried for a while, then detached.
fn unmount(mountpoint: &Path) {
    let Ok(path) = CString::new(mountpoint.as_os_str().as_bytes()) else {
        return;
    };
    let deadline = Instant::now() + BUSY_UNMOUNT_WAIT;
    loop {
        if unsafe { libc::umount2(path.as_ptr(), 0) } == 0 {
            return;
        }
        let error = std::io::Error::last_os_error();
        match errno_of(&error) {
            libc::EBUSY if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200))
            }
            libc::EINVAL | libc::ENOENT => return,
            libc::EPERM => {
                // Not root: fusermount3 unmounts what it mounted.
                let _ = std::process::Command::new("fusermount3")
                    .arg("-u")
                    .arg(mountpoint)
                    .status();
                return;
            }
            _ => {
                tracing::warn!(
                    "unmounting {} failed ({error}): detaching it",
                    mountpoint.display()
                );
                if let Err(e) = detach(mountpoint) {
                    tracing::error!("detaching {} failed: {e}", mountpoint.display());
                }
                return;
            }
        }
    }
}

/// What `mount` shows as the mount's source.
fn source_name(source: &Source) -> String {
    match source {
        Source::Aws => "startifact:aws".to_string(),
        Source::Local(dir) => format!("startifact:local:{}", dir.display()),
    }
}

/// Mounts with the type `fuse.startifact-fs` (what `mount` shows and fstab names),
/// which fuser's own mount cannot set; without the right to mount (not root), falls
/// back to fuser's, through fusermount3.
fn mount_session(
    adapter: FuseAdapter,
    mountpoint: &Path,
    fuse_config: &fuser::Config,
    config: &MountConfig,
) -> Result<fuser::Session<FuseAdapter>, String> {
    let device = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map_err(|e| format!("cannot open /dev/fuse: {e}"))?;
    use std::os::fd::AsRawFd;
    let mut data = format!(
        "fd={},rootmode=40000,user_id={},group_id={}",
        device.as_raw_fd(),
        unsafe { libc::getuid() },
        unsafe { libc::getgid() }
    );
    if config.allow_other {
        data.push_str(",allow_other");
    }
    if config.default_permissions {
        data.push_str(",default_permissions");
    }
    let mut flags = libc::MS_NOSUID | libc::MS_NODEV;
    if config.read_only {
        flags |= libc::MS_RDONLY;
    }
    let source = source_name(&config.source);
    let c = |text: &str| CString::new(text).map_err(|e| e.to_string());
    let (source, target, kind, data) = (
        c(&source)?,
        CString::new(mountpoint.as_os_str().as_bytes()).map_err(|e| e.to_string())?,
        c("fuse.startifact-fs")?,
        c(&data)?,
    );
    let mounted = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            kind.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if mounted != 0 {
        let error = std::io::Error::last_os_error();
        if errno_of(&error) == libc::EPERM {
            return fuser::Session::new(adapter, mountpoint, fuse_config)
                .map_err(|e| format!("cannot mount on {}: {e}", mountpoint.display()));
        }
        return Err(format!("cannot mount on {}: {error}", mountpoint.display()));
    }
    fuser::Session::from_fd(
        adapter,
        OwnedFd::from(device),
        fuse_config.acl,
        fuse_config.clone(),
    )
    .map_err(|e| {
        let _ = detach(mountpoint);
        format!(
            "cannot start the FUSE session on {}: {e}",
            mountpoint.display()
        )
    })
}

fn detach(mountpoint: &Path) -> std::io::Result<()> {
    let path = CString::new(mountpoint.as_os_str().as_bytes())?;
    if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
