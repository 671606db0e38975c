//! What a mount is told, layer by layer. Each place that can say something (the
//! command line's flags, its `-o` options, the environment, the configuration file) is
//! read into a `Settings` holding only what that place says; the layers are then laid
//! over each other, flags first, then `-o`, then the environment, then the file, and
//! the defaults fill what none of them says (`MountArgs::resolve`).
//!
//! `-o key=value` and the file share one vocabulary (`Settings::apply`): what fstab
//! carries badly (per-region endpoints, credentials) the file carries under the same name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::access::group_id;
use super::options::{parse_part_size, parse_size, Source};
use crate::storage::options::parse_region_endpoints;

/// Declares `Settings` and its `or`, which keeps what `self` says and takes the rest
/// from `lower`.
macro_rules! settings {
    ($($(#[$doc:meta])* $field:ident: $kind:ty,)*) => {
        /// What one layer says; `None` where it says nothing.
        #[derive(Debug, Default, Clone, PartialEq)]
        pub struct Settings {
            $($(#[$doc])* pub $field: Option<$kind>,)*
        }

        impl Settings {
            /// This layer over `lower`.
            pub fn or(self, lower: Settings) -> Settings {
                Settings { $($field: self.$field.or(lower.$field),)* }
            }
        }
    };
}

settings! {
    source: Source,
    foreground: bool,
    read_only: bool,
    regions: String,
    allow_other: bool,
    default_permissions: bool,
    /// The group allowed to change things besides the owner.
    stagers: u32,
    uid: u32,
    gid: u32,
    metadata_ttl: Duration,
    parameter: String,
    endpoints: BTreeMap<String, String>,
    log_file: PathBuf,
    log_level: String,
    cache_dir: PathBuf,
    cache_size: u64,
    /// The kernel reads whole cached artifacts from the cache file (`no_passthrough`: no).
    passthrough: bool,
    staging_dir: PathBuf,
    staging_size: u64,
    part_size: u64,
    multipart_threshold: u64,
    stop_timeout: Duration,
    allow_delete: bool,
    connect_timeout: Duration,
    operation_timeout: Duration,
    max_attempts: u32,
    ca_bundle: PathBuf,
    aws_profile: String,
    aws_credentials_file: PathBuf,
    aws_config_file: PathBuf,
    /// The configuration file to read (flags and `-o` only).
    config_file: PathBuf,
}

/// What `apply` made of a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    Taken,
    /// A generic option of mount(8) (`rw`, `nofail`, `x-systemd.*`...): nothing to us.
    Generic,
    Unknown,
}

/// Options of mount(8) and fstab that mean nothing to us (`mount.fuse3` adds `dev`
/// and `suid` of its own).
fn is_generic_option(key: &str) -> bool {
    matches!(
        key,
        "rw" | "dev"
            | "nodev"
            | "suid"
            | "nosuid"
            | "exec"
            | "noexec"
            | "atime"
            | "noatime"
            | "relatime"
            | "auto"
            | "noauto"
            | "nofail"
            | "_netdev"
            | "user"
            | "users"
            | "defaults"
            | "async"
            | "sync"
            | "comment"
    ) || key.starts_with("x-")
}

pub fn parse_seconds(key: &str, text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{key}={text:?} is not a number of seconds"))
}

fn parse_number(key: &str, text: &str) -> Result<u32, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{key}={text:?} is not a number"))
}

/// A switch: given alone (`-o ro`), or `true`/`false` (the file).
fn parse_switch(key: &str, value: Option<&str>) -> Result<bool, String> {
    match value {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(format!("{key}={other:?} is neither true nor false")),
    }
}

fn text(key: &str, value: Option<&str>) -> Result<String, String> {
    match value {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        _ => Err(format!("{key} needs a value ({key}=...)")),
    }
}

impl Settings {
    /// Takes one `key` or `key=value` (of `-o`, or of the file, where `-` and `_` are
    /// both accepted); a bad value is an error.
    pub fn apply(&mut self, key: &str, value: Option<&str>) -> Result<Applied, String> {
        let path = |v: Option<&str>| text(key, v).map(PathBuf::from);
        match key.replace('-', "_").as_str() {
            "ro" | "read_only" => self.read_only = Some(parse_switch(key, value)?),
            "allow_other" => self.allow_other = Some(parse_switch(key, value)?),
            "default_permissions" => self.default_permissions = Some(parse_switch(key, value)?),
            "foreground" => self.foreground = Some(parse_switch(key, value)?),
            "allow_delete" => self.allow_delete = Some(parse_switch(key, value)?),
            "stagers" => self.stagers = Some(group_id(&text(key, value)?)?),
            "uid" => self.uid = Some(parse_number(key, &text(key, value)?)?),
            "gid" => self.gid = Some(parse_number(key, &text(key, value)?)?),
            // Commas separate options: `-o regions=a:b`, `-o endpoints=r=url;r=url`.
            "regions" => self.regions = Some(text(key, value)?.replace(':', ",")),
            "local_store" => self.source = Some(Source::Local(path(value)?)),
            "metadata_ttl" => self.metadata_ttl = Some(parse_seconds(key, &text(key, value)?)?),
            "parameter" => self.parameter = Some(text(key, value)?),
            "endpoints" => {
                let list = text(key, value)?.replace(';', ",");
                self.endpoints = Some(parse_region_endpoints(&list).map_err(|e| e.to_string())?)
            }
            "log_file" => self.log_file = Some(path(value)?),
            "log_level" => self.log_level = Some(text(key, value)?),
            "cache_dir" => self.cache_dir = Some(path(value)?),
            "cache_size" => self.cache_size = Some(parse_size(&text(key, value)?)?),
            "passthrough" => self.passthrough = Some(parse_switch(key, value)?),
            "no_passthrough" => self.passthrough = Some(!parse_switch(key, value)?),
            "staging_dir" => self.staging_dir = Some(path(value)?),
            "staging_size" => self.staging_size = Some(parse_size(&text(key, value)?)?),
            "part_size" => self.part_size = Some(parse_part_size(&text(key, value)?)?),
            "multipart_threshold" => {
                self.multipart_threshold = Some(parse_size(&text(key, value)?)?)
            }
            "stop_timeout" => self.stop_timeout = Some(parse_seconds(key, &text(key, value)?)?),
            "connect_timeout" => {
                self.connect_timeout = Some(parse_seconds(key, &text(key, value)?)?)
            }
            "operation_timeout" => {
                self.operation_timeout = Some(parse_seconds(key, &text(key, value)?)?)
            }
            "max_attempts" => self.max_attempts = Some(parse_number(key, &text(key, value)?)?),
            "ca_bundle" => self.ca_bundle = Some(path(value)?),
            "aws_profile" => self.aws_profile = Some(text(key, value)?),
            "aws_credentials_file" => self.aws_credentials_file = Some(path(value)?),
            "aws_config_file" => self.aws_config_file = Some(path(value)?),
            "config" => self.config_file = Some(path(value)?),
            _ if is_generic_option(key) => return Ok(Applied::Generic),
            _ => return Ok(Applied::Unknown),
        }
        Ok(Applied::Taken)
    }

    /// The `-o` options, comma-separated, of every `-o` given.
    pub fn from_mount_options(groups: &[String]) -> Result<Settings, String> {
        let mut settings = Settings::default();
        for group in groups {
            for option in group.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                let (key, value) = match option.split_once('=') {
                    Some((k, v)) => (k, Some(v)),
                    None => (option, None),
                };
                match settings.apply(key, value) {
                    Ok(Applied::Unknown) => return Err(format!("unknown mount option {option:?}")),
                    Ok(_) => {}
                    Err(e) => return Err(format!("mount option {option:?}: {e}")),
                }
            }
        }
        Ok(settings)
    }

    /// What the environment says: the `STARTIFACT_*` variables, and those of the AWS
    /// CLI for the CA bundle, the profile and the shared files. `lookup` reads one
    /// variable (the process's environment, or a test's).
    pub fn from_environment(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Settings, String> {
        const NAMES: [(&str, &str); 11] = [
            ("STARTIFACT_REGIONS", "regions"),
            ("STARTIFACT_PARAMETER", "parameter"),
            ("STARTIFACT_LOCAL_STORE", "local_store"),
            ("STARTIFACT_ENDPOINTS", "endpoints"),
            ("STARTIFACT_CONNECT_TIMEOUT", "connect_timeout"),
            ("STARTIFACT_OPERATION_TIMEOUT", "operation_timeout"),
            ("STARTIFACT_MAX_ATTEMPTS", "max_attempts"),
            ("AWS_CA_BUNDLE", "ca_bundle"),
            ("AWS_PROFILE", "aws_profile"),
            ("AWS_SHARED_CREDENTIALS_FILE", "aws_credentials_file"),
            ("AWS_CONFIG_FILE", "aws_config_file"),
        ];
        let mut settings = Settings::default();
        for (variable, key) in NAMES {
            let Some(value) = lookup(variable).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            // The variables keep their own separators: commas, not `:` and `;`.
            let value = match key {
                "regions" => value.replace(':', ","),
                _ => value,
            };
            if key == "endpoints" {
                settings.endpoints =
                    Some(parse_region_endpoints(&value).map_err(|e| e.to_string())?);
                continue;
            }
            // Every key of the table is known.
            settings
                .apply(key, Some(&value))
                .map_err(|e| format!("{variable}: {e}"))?;
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_higher_layer_wins_and_a_lower_one_fills_the_rest() {
        let mut high = Settings::default();
        high.apply("regions", Some("a")).unwrap();
        let mut low = Settings::default();
        low.apply("regions", Some("b")).unwrap();
        low.apply("parameter", Some("/p")).unwrap();
        let both = high.or(low);
        assert_eq!(both.regions.as_deref(), Some("a"));
        assert_eq!(both.parameter.as_deref(), Some("/p"));
    }

    #[test]
    fn the_environment_is_read_through_its_variables() {
        let env = |name: &str| match name {
            "STARTIFACT_REGIONS" => Some("r1,r2".to_string()),
            "STARTIFACT_ENDPOINTS" => Some("r1=http://x,r2=https://y".to_string()),
            "AWS_CA_BUNDLE" => Some("/ca.pem".to_string()),
            "STARTIFACT_MAX_ATTEMPTS" => Some("4".to_string()),
            "AWS_PROFILE" => Some(" ".to_string()),
            _ => None,
        };
        let s = Settings::from_environment(&env).unwrap();
        assert_eq!(s.regions.as_deref(), Some("r1,r2"));
        assert_eq!(s.endpoints.unwrap()["r2"], "https://y");
        assert_eq!(s.ca_bundle, Some(PathBuf::from("/ca.pem")));
        assert_eq!(s.max_attempts, Some(4));
        assert_eq!(s.aws_profile, None, "a blank variable says nothing");
        let bad = |name: &str| (name == "STARTIFACT_CONNECT_TIMEOUT").then(|| "soon".to_string());
        let e = Settings::from_environment(&bad).unwrap_err();
        assert!(e.contains("STARTIFACT_CONNECT_TIMEOUT"), "{e}");
    }

    #[test]
    fn switches_take_true_and_false_and_unknown_keys_are_refused() {
        let mut s = Settings::default();
        s.apply("read-only", Some("false")).unwrap();
        assert_eq!(s.read_only, Some(false));
        assert!(s.apply("ro", Some("perhaps")).is_err());
        assert_eq!(s.apply("x-systemd.automount", None), Ok(Applied::Generic));
        assert_eq!(s.apply("regoins", Some("a")), Ok(Applied::Unknown));
        let e = Settings::from_mount_options(&["ro,regoins=a".to_string()]).unwrap_err();
        assert!(e.contains("unknown mount option \"regoins=a\""), "{e}");
        assert!(s.apply("parameter", None).is_err(), "a value is needed");
    }

    #[test]
    fn no_passthrough_turns_passthrough_off_and_a_flag_wins_over_dash_o() {
        use super::super::options::MountArgs;
        use clap::Parser;
        let resolve = |args: &[&str]| {
            let mut all = vec!["startifact-fs"];
            all.extend_from_slice(args);
            MountArgs::try_parse_from(all)
                .unwrap()
                .resolve_in(&|_| None, std::path::Path::new("/no/such/config.toml"))
                .unwrap()
        };
        assert!(resolve(&["/mnt"]).passthrough, "on by default");
        assert!(!resolve(&["-o", "no_passthrough", "/mnt"]).passthrough);
        assert!(!resolve(&["--no-passthrough", "/mnt"]).passthrough);
        assert!(!resolve(&["--no-passthrough", "-o", "passthrough", "/mnt"]).passthrough);
        assert!(resolve(&["-o", "no_passthrough=false", "/mnt"]).passthrough);
        let mut s = Settings::default();
        assert!(s.apply("no-passthrough", Some("perhaps")).is_err());
    }
}
