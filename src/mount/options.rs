//! The `startifact-fs` command line: `startifact-fs [OPTIONS] [SOURCE] MOUNTPOINT`.
//! Every option also has an `-o key=value` form, because `/etc/fstab` and
//! `mount -t fuse.startifact-fs` pass nothing else (and no environment at boot).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use super::access::group_id;
use super::config_file::{self, DEFAULT_CONFIG_FILE};
use super::settings::{self, Settings};
use super::staging_folder::StagingFolder;
use crate::protocol::StageOptions;
use crate::storage::options::parse_region_endpoints;
use crate::storage::StorageOptions;

#[derive(Debug, Parser)]
#[command(
    name = "startifact-fs",
    version,
    about = "Mounts Startifact artifacts as a filesystem: MOUNT/{project}/{version}/{file}, MOUNT/{project}/latest",
    after_help = super::help::EXAMPLES
)]
pub struct MountArgs {
    /// Where the artifacts live: "aws" (the default) or "local:DIR".
    #[arg(value_name = "SOURCE")]
    pub first: String,
    /// The folder to mount on.
    #[arg(value_name = "MOUNTPOINT")]
    pub second: Option<String>,

    /// Stay in the foreground (tests, systemd); by default the command returns once the
    /// mount answers and the daemon serves in the background.
    #[arg(short = 'f', long)]
    pub foreground: bool,
    /// Refuse every change (EROFS).
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Regions, comma-separated (instead of STARTIFACT_REGIONS).
    #[arg(long)]
    pub regions: Option<String>,
    /// Use the local store in this folder (same as SOURCE local:DIR).
    #[arg(long = "local-store", value_name = "DIR")]
    pub local_store: Option<PathBuf>,
    /// Let users other than the one mounting use the mount: everyone may read, only the
    /// daemon's owner and the --stagers group may change anything (the kernel checks the
    /// modes shown, and the daemon checks every change again).
    #[arg(long = "allow-other")]
    pub allow_other: bool,
    /// A group (name or number) whose members may stage, set metadata, move `latest`
    /// and yank, besides the daemon's owner.
    #[arg(long, value_name = "GROUP")]
    pub stagers: Option<String>,
    /// Owner shown on every file (default: the user mounting).
    #[arg(long)]
    pub uid: Option<u32>,
    /// Group shown on every file (default: the user's group).
    #[arg(long)]
    pub gid: Option<u32>,
    /// Seconds listings, `latest` and missing names are trusted (default 10).
    #[arg(long = "metadata-ttl", value_name = "SECONDS")]
    pub metadata_ttl: Option<f64>,
    /// Name of the configuration parameter (instead of STARTIFACT_PARAMETER).
    #[arg(long, value_name = "NAME")]
    pub parameter: Option<String>,
    /// One endpoint per region, region=url,... (instead of STARTIFACT_ENDPOINTS).
    #[arg(long, value_name = "LIST")]
    pub endpoints: Option<String>,
    /// Keep whole artifacts in this folder: repeated reads at local-disk speed, and
    /// cached versions readable when every region is down.
    #[arg(long = "cache-dir", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Size limit of the cache, with K/M/G/T suffixes (default 10G).
    #[arg(long = "cache-size", value_name = "BYTES")]
    pub cache_size: Option<String>,
    /// Read cached artifacts through the daemon, not by the kernel from the cache file.
    #[arg(long = "no-passthrough")]
    pub no_passthrough: bool,
    /// Keep staging folders and the files written into them here (default: a folder per
    /// store, named from its regions, endpoints, parameter and profile, under
    /// /var/lib/startifact-fs/staging as root, else under $XDG_STATE_HOME or
    /// ~/.local/state). One daemon at a time may use a staging folder.
    #[arg(long = "staging-dir", value_name = "DIR")]
    pub staging_dir: Option<PathBuf>,
    /// Size limit of the staging folder, with K/M/G/T suffixes (default 10G); writing
    /// past it answers ENOSPC.
    #[arg(long = "staging-size", value_name = "BYTES")]
    pub staging_size: Option<String>,
    /// Part size of multipart uploads, at least 5M (default 8M).
    #[arg(long = "part-size", value_name = "BYTES")]
    pub part_size: Option<String>,
    /// Files larger than this are staged in parts, several at once per region; smaller
    /// ones in one request each (default 16M).
    #[arg(long = "multipart-threshold", value_name = "BYTES")]
    pub multipart_threshold: Option<String>,
    /// Seconds SIGTERM/SIGINT wait for stages in flight before unmounting (default 30);
    /// a stage still running then is kept and resumes at the next start.
    #[arg(long = "stop-timeout", value_name = "SECONDS")]
    pub stop_timeout: Option<f64>,
    /// Let `rm -r MOUNT/P/V` yank a staged version from every region.
    #[arg(long = "allow-delete")]
    pub allow_delete: bool,
    /// Write the log here (a daemon in the background has no terminal).
    #[arg(long = "log-file", value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Log level of our own lines: error, warn, info (default), debug, trace. Without
    /// it, RUST_LOG (any tracing filter, e.g. startifact=debug,aws_smithy_runtime=debug)
    /// decides.
    #[arg(long = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Read this configuration file (TOML, the keys of -o) instead of
    /// /etc/startifact-fs/config.toml, e.g. --config /etc/startifact-fs/ci.toml.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Trust only the certificate authorities in this PEM file for HTTPS endpoints
    /// (instead of AWS_CA_BUNDLE).
    #[arg(long = "ca-bundle", value_name = "PATH")]
    pub ca_bundle: Option<PathBuf>,
    /// The AWS profile whose credentials to use (instead of AWS_PROFILE).
    #[arg(long = "aws-profile", value_name = "NAME")]
    pub aws_profile: Option<String>,
    /// The AWS shared credentials file (instead of AWS_SHARED_CREDENTIALS_FILE): how a
    /// mount started by mount(8) or fstab, with no environment, finds its credentials.
    #[arg(long = "aws-credentials-file", value_name = "PATH")]
    pub aws_credentials_file: Option<PathBuf>,
    /// Mount options, comma-separated: ro, allow_other, default_permissions, stagers=GROUP, uid=N, gid=N, regions=...,
    /// local_store=DIR, metadata_ttl=S, parameter=NAME, endpoints=LIST, log_file=PATH,
    /// log_level=L, cache_dir=DIR, cache_size=BYTES, no_passthrough, staging_dir=DIR, staging_size=BYTES,
    /// part_size=BYTES, multipart_threshold=BYTES, stop_timeout=S, allow_delete, foreground, config=PATH,
    /// ca_bundle=PATH, aws_profile=NAME, aws_credentials_file=PATH, aws_config_file=PATH,
    /// connect_timeout=S, operation_timeout=S, max_attempts=N; the generic ones of
    /// mount(8) are accepted and ignored. Example:
    /// -o ro,regions=us-east-1:eu-west-2,aws_credentials_file=/etc/startifact-fs/credentials
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Vec<String>,
}

/// Where the artifacts live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Aws,
    Local(PathBuf),
}

/// Everything the daemon needs, resolved from arguments and `-o` options.
#[derive(Debug, Clone)]
pub struct MountConfig {
    pub source: Source,
    pub mountpoint: PathBuf,
    pub foreground: bool,
    pub read_only: bool,
    pub regions: Option<String>,
    pub allow_other: bool,
    /// Let the kernel check the modes shown (always with `allow_other`).
    pub default_permissions: bool,
    /// The group allowed to change things besides the owner.
    pub stagers: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub metadata_ttl: Duration,
    pub parameter: Option<String>,
    pub log_file: Option<PathBuf>,
    /// `None`: `RUST_LOG` decides (see `super::logging`).
    pub log_level: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub cache_size: u64,
    /// Whole cached artifacts are read by the kernel from the cache file (not `--no-passthrough`).
    pub passthrough: bool,
    pub staging_dir: Option<PathBuf>,
    pub staging_size: u64,
    pub part_size: u64,
    /// Files larger than this are staged in parts, or as each region's earlier
    /// stages advise when `adaptive_sending`.
    pub multipart_threshold: u64,
    /// No threshold was given: each region is sent large files the way that was faster
    /// there (the figures are kept in the staging folder).
    pub adaptive_sending: bool,
    /// How long SIGTERM/SIGINT wait for stages in flight.
    pub stop_timeout: Duration,
    pub allow_delete: bool,
    /// Endpoints, timeouts, credentials and the CA bundle of the AWS regions.
    pub storage: StorageOptions,
}

/// How long SIGTERM waits for stages in flight by default: enough for a stage of a few
/// hundred MB, and well under systemd's 90 s before it sends SIGKILL.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The default part size of multipart uploads.
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;

pub(super) fn parse_part_size(text: &str) -> Result<u64, String> {
    let size = parse_size(text)?;
    if size < crate::protocol::stage::MIN_PART_SIZE {
        return Err(format!(
            "part size {text:?} is under S3's smallest part, 5M"
        ));
    }
    Ok(size)
}

/// The default size limit of the on-disk cache.
pub const DEFAULT_CACHE_SIZE: u64 = 10 << 30;

pub use crate::arguments::parse_size;

impl MountConfig {
    /// Where the spool is kept: the option, else a folder per store (see
    /// `staging_folder`).
    pub fn staging_folder(&self) -> Result<StagingFolder, String> {
        super::staging_folder::choose(self, &|name| std::env::var(name).ok())
    }
}

/// The folder that holds the default staging folders: `/var/lib/startifact-fs/staging`
/// for root, else under `$XDG_STATE_HOME` or `~/.local/state` (absolute paths only, as
/// the XDG specification asks).
pub fn default_staging_base(
    euid: u32,
    xdg_state_home: Option<&std::ffi::OsStr>,
    home: Option<&std::ffi::OsStr>,
) -> Result<PathBuf, String> {
    let absolute = |value: Option<&std::ffi::OsStr>| {
        value.map(PathBuf::from).filter(|path| path.is_absolute())
    };
    if euid == 0 {
        Ok(PathBuf::from("/var/lib/startifact-fs/staging"))
    } else if let Some(state) = absolute(xdg_state_home) {
        Ok(state.join("startifact-fs/staging"))
    } else if let Some(home) = absolute(home) {
        Ok(home.join(".local/state/startifact-fs/staging"))
    } else {
        Err(
            "no folder to keep staging folders in: neither HOME nor XDG_STATE_HOME is set \
             to an absolute path; set one, give --staging-dir DIR, or mount with --read-only"
                .to_string(),
        )
    }
}

impl MountArgs {
    /// Lays the flags over `-o`, the environment, the configuration file and the
    /// defaults (see `settings`).
    pub fn resolve(self) -> Result<MountConfig, String> {
        self.resolve_in(
            &|name| std::env::var(name).ok(),
            Path::new(DEFAULT_CONFIG_FILE),
        )
    }

    /// `resolve`, with the environment read through `env` and `default_file` read
    /// when it exists and no file is named.
    pub fn resolve_in(
        self,
        env: &dyn Fn(&str) -> Option<String>,
        default_file: &Path,
    ) -> Result<MountConfig, String> {
        let (flags, mountpoint) = self.flag_settings()?;
        let options = Settings::from_mount_options(&self.options)?;
        let environment = Settings::from_environment(env)?;
        let file = match flags.config_file.as_ref().or(options.config_file.as_ref()) {
            Some(path) => config_file::read(path)?,
            None if default_file.exists() => config_file::read(default_file)?,
            None => Settings::default(),
        };
        MountConfig::from_settings(flags.or(options).or(environment).or(file), mountpoint)
    }

    /// What the flags say, and the mount point.
    fn flag_settings(&self) -> Result<(Settings, PathBuf), String> {
        let (source_text, mountpoint) = match &self.second {
            Some(mountpoint) => (Some(self.first.as_str()), mountpoint.clone()),
            None => (None, self.first.clone()),
        };
        let mut source = match source_text {
            None => None,
            Some("aws") => Some(Source::Aws),
            Some(text) => match text.strip_prefix("local:") {
                Some(dir) if !dir.is_empty() => Some(Source::Local(PathBuf::from(dir))),
                _ => {
                    return Err(format!(
                        "SOURCE {text:?} is neither \"aws\" nor \"local:DIR\""
                    ))
                }
            },
        };
        if let Some(dir) = &self.local_store {
            source = Some(Source::Local(dir.clone()));
        }
        let on = |flag: bool| flag.then_some(true);
        let size = |text: &Option<String>| text.as_deref().map(parse_size).transpose();
        let seconds = |key: &str, value: Option<f64>| {
            value
                .map(|v| settings::parse_seconds(key, &v.to_string()))
                .transpose()
        };
        let flags = Settings {
            source,
            foreground: on(self.foreground),
            read_only: on(self.read_only),
            regions: self.regions.clone(),
            allow_other: on(self.allow_other),
            stagers: self.stagers.as_deref().map(group_id).transpose()?,
            uid: self.uid,
            gid: self.gid,
            metadata_ttl: seconds("--metadata-ttl", self.metadata_ttl)?,
            parameter: self.parameter.clone(),
            endpoints: self
                .endpoints
                .as_deref()
                .map(parse_region_endpoints)
                .transpose()
                .map_err(|e| e.to_string())?,
            log_file: self.log_file.clone(),
            log_level: self.log_level.clone(),
            cache_dir: self.cache_dir.clone(),
            cache_size: size(&self.cache_size)?,
            passthrough: self.no_passthrough.then_some(false),
            staging_dir: self.staging_dir.clone(),
            staging_size: size(&self.staging_size)?,
            part_size: self.part_size.as_deref().map(parse_part_size).transpose()?,
            multipart_threshold: size(&self.multipart_threshold)?,
            stop_timeout: seconds("--stop-timeout", self.stop_timeout)?,
            allow_delete: on(self.allow_delete),
            ca_bundle: self.ca_bundle.clone(),
            aws_profile: self.aws_profile.clone(),
            aws_credentials_file: self.aws_credentials_file.clone(),
            config_file: self.config.clone(),
            ..Settings::default()
        };
        Ok((flags, PathBuf::from(mountpoint)))
    }
}

impl MountConfig {
    /// The defaults under what the layers say.
    fn from_settings(s: Settings, mountpoint: PathBuf) -> Result<MountConfig, String> {
        let defaults = StorageOptions::default();
        let storage = StorageOptions {
            region_endpoints: s.endpoints.unwrap_or_default(),
            connect_timeout: s.connect_timeout.unwrap_or(defaults.connect_timeout),
            short_operation_timeout: s
                .operation_timeout
                .unwrap_or(defaults.short_operation_timeout),
            max_attempts: s.max_attempts.unwrap_or(defaults.max_attempts).max(1),
            ca_bundle: s.ca_bundle,
            aws_profile: s.aws_profile,
            aws_credentials_file: s.aws_credentials_file,
            aws_config_file: s.aws_config_file,
            ..defaults
        };
        let allow_other = s.allow_other.unwrap_or(false);
        Ok(MountConfig {
            source: s.source.unwrap_or(Source::Aws),
            mountpoint,
            foreground: s.foreground.unwrap_or(false),
            read_only: s.read_only.unwrap_or(false),
            regions: s.regions,
            allow_other,
            // The kernel always checks the modes shown on a shared mount.
            default_permissions: allow_other || s.default_permissions.unwrap_or(false),
            stagers: s.stagers,
            uid: s.uid,
            gid: s.gid,
            metadata_ttl: s.metadata_ttl.unwrap_or(Duration::from_secs(10)),
            parameter: s.parameter,
            log_file: s.log_file,
            // None: RUST_LOG, else info (see `logging`).
            log_level: s.log_level,
            cache_dir: s.cache_dir,
            cache_size: s.cache_size.unwrap_or(DEFAULT_CACHE_SIZE),
            passthrough: s.passthrough.unwrap_or(true),
            staging_dir: s.staging_dir,
            staging_size: s
                .staging_size
                .unwrap_or(crate::fs::spool::DEFAULT_STAGING_SIZE),
            part_size: s.part_size.unwrap_or(DEFAULT_PART_SIZE),
            adaptive_sending: s.multipart_threshold.is_none(),
            multipart_threshold: s
                .multipart_threshold
                .unwrap_or(StageOptions::default().multipart_threshold),
            stop_timeout: s.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT),
            allow_delete: s.allow_delete.unwrap_or(false),
            storage,
        })
    }
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;
