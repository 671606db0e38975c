//! Every option of the mount, declared once: its kind of value, heading, key (of `-o`
//! and the configuration file), flag, environment variable, default and why. The
//! flags, `-o`, the file, the environment, `--help`, the man page and the README's
//! option table are all read from here (see `super::option_spec`); adding an option is
//! one entry here, and its use.
//!
//! An option without a flag is set by `-o`, the file and its variable only. The help of
//! each is its doc comment, one sentence or two; the default is shown after it.

use std::path::PathBuf;
use std::time::Duration;

use super::option_spec::declare_options;
use super::option_values::{
    Endpoints, Group, LocalStore, Number, OffSwitch, PartSize, Path, Regions, Seconds, Size,
    Source, Switch, Text,
};
use crate::fs::staging::DEFAULT_STAGING_SIZE;
use crate::fs::DEFAULT_METADATA_TTL;
use crate::protocol::{StageOptions, DEFAULT_CONFIGURATION_PARAMETER};
use crate::storage::StorageOptions;

declare_options! {
    /// Everything the daemon needs: every option, resolved (the flags over `-o`, over
    /// the environment, over the file, over the defaults), and the mount point.
    pub struct MountConfig {
        /// The folder mounted on.
        pub mountpoint: PathBuf,
        /// No threshold was given: each region is sent large files the way that was
        /// faster there (the figures are kept in the staging folder).
        pub adaptive_sending: bool,
    }

    /// Stay in the foreground (tests, systemd); by default the command returns once the
    /// mount answers and the daemon serves in the background.
    foreground: Switch {
        heading: Options,
        key: "foreground",
        flag: "--foreground",
        short: 'f',
        default: (false),
        why: "a mount started by hand, by mount(8) or by fstab returns once it answers, \
              as other filesystems do; the systemd unit gives -f (Type=notify)",
    }

    /// Read this configuration file (TOML, the keys of -o), which must exist, e.g.
    /// --config /etc/startifact-fs/ci.toml.
    config_file: Path {
        heading: Options,
        key: "config",
        flag: "--config",
        value: "PATH",
        in_file: false,
        default: "/etc/startifact-fs/config.toml, when it exists",
        why: "one file for what fstab and environment files carry badly: per-region \
              endpoints, timeouts, credentials",
    }

    /// Use the local store in this folder (same as SOURCE local:DIR).
    source: LocalStore {
        heading: Store,
        key: "local_store",
        flag: "--local-store",
        value: "DIR",
        env: "STARTIFACT_LOCAL_STORE",
        default: (Source::Aws),
        why: "the Python tool's store: S3 and SSM Parameter Store in each region",
    }

    /// Regions, comma-separated.
    regions: Regions {
        heading: Store,
        key: "regions",
        flag: "--regions",
        value: "REGIONS",
        env: "STARTIFACT_REGIONS",
        default: "a local store's own regions; AWS needs them",
        why: "the configuration is read from the regions, so only the mount can name them",
    }

    /// Name of the configuration parameter.
    parameter: Text {
        heading: Store,
        key: "parameter",
        flag: "--parameter",
        value: "NAME",
        env: "STARTIFACT_PARAMETER",
        default: (DEFAULT_CONFIGURATION_PARAMETER.to_string()),
        why: "the Python tool's, so both find one configuration",
    }

    /// One endpoint per region, region=url,... (S3-compatible stores).
    endpoints: Endpoints {
        heading: Store,
        key: "endpoints",
        flag: "--endpoints",
        value: "LIST",
        env: "STARTIFACT_ENDPOINTS",
        default: "the SDK's: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_SSM, AWS_ENDPOINT_URL, \
                   else AWS",
        why: "a region named here is reached at its own URL, for S3 and SSM alike",
    }

    /// Trust only the certificate authorities in this PEM file for HTTPS endpoints.
    ca_bundle: Path {
        heading: Store,
        key: "ca_bundle",
        flag: "--ca-bundle",
        value: "PATH",
        env: "AWS_CA_BUNDLE",
        default: "the system's certificate authorities",
        why: "as with the AWS CLI, a bundle replaces the system's roots",
    }

    /// The AWS profile whose credentials to use.
    aws_profile: Text {
        heading: Store,
        key: "aws_profile",
        flag: "--aws-profile",
        value: "NAME",
        env: "AWS_PROFILE",
        default: "the SDK's default profile",
        why: "as the AWS CLI; an instance role needs no profile",
    }

    /// The AWS shared credentials file: how a mount started by mount(8) or fstab, with
    /// no environment, finds its credentials.
    aws_credentials_file: Path {
        heading: Store,
        key: "aws_credentials_file",
        flag: "--aws-credentials-file",
        value: "PATH",
        env: "AWS_SHARED_CREDENTIALS_FILE",
        default: "the SDK's, ~/.aws/credentials",
        why: "as the AWS CLI; never put keys in fstab, which everyone can read",
    }

    /// The AWS shared config file, where a profile may name a role to assume or a
    /// credential_process.
    aws_config_file: Path {
        heading: Store,
        key: "aws_config_file",
        value: "PATH",
        env: "AWS_CONFIG_FILE",
        default: "the SDK's, ~/.aws/config",
        why: "as the AWS CLI",
    }

    /// Seconds a connection to a region may take.
    connect_timeout: Seconds {
        heading: Store,
        key: "connect_timeout",
        value: "SECONDS",
        env: "STARTIFACT_CONNECT_TIMEOUT",
        default: (StorageOptions::default().connect_timeout),
        why: "a region that does not accept a connection by then is down for that request, \
              and the others answer",
    }

    /// Seconds a request may take (a download until its first byte).
    operation_timeout: Seconds {
        heading: Store,
        key: "operation_timeout",
        value: "SECONDS",
        env: "STARTIFACT_OPERATION_TIMEOUT",
        default: (StorageOptions::default().short_operation_timeout),
        why: "bounds what a hung region costs, then less while its circuit breaker is open",
    }

    /// Attempts per request per region (at least 1).
    max_attempts: Number {
        heading: Store,
        key: "max_attempts",
        value: "N",
        env: "STARTIFACT_MAX_ATTEMPTS",
        default: (StorageOptions::default().max_attempts),
        why: "a passing error is retried; a region that keeps failing is left to the others",
    }

    /// Refuse every change (EROFS).
    read_only: Switch {
        heading: Mount,
        key: "read_only",
        dash_o: "ro",
        flag: "--read-only",
        default: (false),
        why: "a mount stages, moves latest and sets metadata unless told not to",
    }

    /// Let users other than the one mounting use the mount: everyone may read, only the
    /// daemon's owner and the --stagers group may change anything (the kernel checks the
    /// modes shown, and the daemon checks every change again).
    allow_other: Switch {
        heading: Mount,
        key: "allow_other",
        flag: "--allow-other",
        default: (false),
        why: "FUSE's rule: a mount is its owner's unless shared on purpose",
    }

    /// Let the kernel check the modes shown.
    default_permissions: Switch {
        heading: Mount,
        key: "default_permissions",
        default: (false),
        why: "always on with allow_other; alone, the daemon checks every change itself",
    }

    /// A group (name or number) whose members may stage, set metadata, move `latest`
    /// and yank, besides the daemon's owner.
    stagers: Group {
        heading: Mount,
        key: "stagers",
        flag: "--stagers",
        value: "GROUP",
        default: "none (only the daemon's owner changes anything)",
        why: "changes are the owner's unless a group is named",
    }

    /// Owner shown on every file.
    uid: Number {
        heading: Mount,
        key: "uid",
        flag: "--uid",
        value: "UID",
        default: "the user mounting",
        why: "as every FUSE mount shows its files",
    }

    /// Group shown on every file.
    gid: Number {
        heading: Mount,
        key: "gid",
        flag: "--gid",
        value: "GID",
        default: "the user's group",
        why: "as every FUSE mount shows its files",
    }

    /// Let `rm -r MOUNT/P/V` yank a staged version from every region.
    allow_delete: Switch {
        heading: Mount,
        key: "allow_delete",
        flag: "--allow-delete",
        default: (false),
        why: "a yank removes a version for everyone: a stray rm -r must not",
    }

    /// Seconds listings, `latest` and missing names are trusted.
    metadata_ttl: Seconds {
        heading: Caching,
        key: "metadata_ttl",
        flag: "--metadata-ttl",
        value: "SECONDS",
        default: (DEFAULT_METADATA_TTL),
        why: "a version staged elsewhere shows within it, and a listing asks each region \
              at most once in it",
    }

    /// Keep whole artifacts in this folder: repeated reads at local-disk speed, and
    /// cached versions readable when every region is down.
    cache_dir: Path {
        heading: Caching,
        key: "cache_dir",
        flag: "--cache-dir",
        value: "DIR",
        default: "none (every read asks a region)",
        why: "the disk is the host's to give",
    }

    /// Size limit of the cache, with K/M/G/T suffixes.
    cache_size: Size {
        heading: Caching,
        key: "cache_size",
        flag: "--cache-size",
        value: "BYTES",
        default: (10 << 30),
        why: "room for many artifacts on most disks; the least recently used go first",
    }

    /// Read cached artifacts through the daemon, not by the kernel from the cache file.
    passthrough: OffSwitch {
        heading: Caching,
        key: "no_passthrough",
        also: "passthrough",
        flag: "--no-passthrough",
        default: (true),
        why: "the kernel reads a whole, checked cached artifact itself (FUSE passthrough, \
              Linux 6.9 or later, as root), at local-disk speed",
    }

    /// Keep staging folders and the files written into them here. One daemon at a time
    /// may use a staging folder.
    staging_dir: Path {
        heading: Staging,
        key: "staging_dir",
        flag: "--staging-dir",
        value: "DIR",
        default: "a folder per store, named from its regions, endpoints, parameter and \
                  profile, under /var/lib/startifact-fs/staging as root, else under \
                  $XDG_STATE_HOME or ~/.local/state",
        why: "files kept for a retry survive a restart, and mounts of two stores never \
              take up each other's",
    }

    /// Size limit of the staging folder, with K/M/G/T suffixes; writing past it answers
    /// ENOSPC.
    staging_size: Size {
        heading: Staging,
        key: "staging_size",
        flag: "--staging-size",
        value: "BYTES",
        default: (DEFAULT_STAGING_SIZE),
        why: "room for large files in flight and awaiting repair; a runaway writer fills \
              no disk",
    }

    /// Part size of multipart uploads, at least 5M.
    part_size: PartSize {
        heading: Staging,
        key: "part_size",
        flag: "--part-size",
        value: "BYTES",
        default: (StageOptions::default().part_size),
        why: "two parts in flight per region fit the 64 MiB a stage's parts share",
    }

    /// Files larger than this are staged in parts, several at once per region; smaller
    /// ones in one request each.
    multipart_threshold: Size {
        heading: Staging,
        key: "multipart_threshold",
        flag: "--multipart-threshold",
        value: "BYTES",
        default: (StageOptions::default().multipart_threshold),
        why: "not given, each region is sent larger files the way its earlier stages were \
              faster (in parts, or in one request); given, always in parts",
    }

    /// Seconds SIGTERM/SIGINT wait for stages in flight before unmounting; a stage still
    /// running then is kept and resumes at the next start.
    stop_timeout: Seconds {
        heading: Staging,
        key: "stop_timeout",
        flag: "--stop-timeout",
        value: "SECONDS",
        default: (Duration::from_secs(30)),
        why: "enough for a stage of a few hundred MB, and well under systemd's 90 s \
              before it sends SIGKILL",
    }

    /// Write the log here (a daemon in the background has no terminal); SIGHUP
    /// reopens it.
    log_file: Path {
        heading: Logging,
        key: "log_file",
        flag: "--log-file",
        value: "PATH",
        default: "stderr (the journal, under systemd)",
        why: "under systemd the journal keeps it; a daemon in the background needs a file",
    }

    /// Log level of our own lines: error, warn, info, debug, trace. Without it, RUST_LOG
    /// (any tracing filter, e.g. startifact=debug,aws_smithy_runtime=debug) decides.
    log_level: Text {
        heading: Logging,
        key: "log_level",
        flag: "--log-level",
        value: "LEVEL",
        default: "RUST_LOG, else info",
        why: "RUST_LOG can say more: any tracing filter, the SDK's lines too",
    }
}

#[cfg(test)]
#[path = "declaration_tests.rs"]
mod tests;
