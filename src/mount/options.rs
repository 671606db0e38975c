//! The `startifact-fs` command line: `startifact-fs [OPTIONS] [SOURCE] MOUNTPOINT`,
//! resolved into a `MountConfig`. The options are declared in `super::declaration`;
//! every one also has an `-o key=value` form, because `/etc/fstab` and
//! `mount -t fuse.startifact-fs` pass nothing else (and no environment at boot).

use std::path::{Path, PathBuf};

use clap::Parser;

use super::config_file::{self, DEFAULT_CONFIG_FILE};
pub use super::declaration::MountConfig;
use super::flags::Flags;
pub use super::option_values::Source;
use super::settings::Settings;
use crate::fs::FsOptions;
use crate::protocol::regions::parse_regions;
use crate::protocol::SessionBuilder;
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
    /// One flag per option of `super::declaration` that has one.
    #[command(flatten)]
    pub flags: Flags,
    #[arg(short = 'o', value_name = "OPTIONS", help = super::help::dash_o_help())]
    pub options: Vec<String>,
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
        let settings = flags.or(options).or(environment).or(file);
        let adaptive_sending = settings.multipart_threshold.is_none();
        let mut config = MountConfig::with_defaults(settings, mountpoint, adaptive_sending);
        // The kernel always checks the modes shown on a shared mount.
        config.default_permissions |= config.allow_other;
        Ok(config)
    }

    /// What the flags say (SOURCE among them, under `--local-store`), and the mount
    /// point.
    fn flag_settings(&self) -> Result<(Settings, PathBuf), String> {
        let (source_text, mountpoint) = match &self.second {
            Some(mountpoint) => (Some(self.first.as_str()), mountpoint.clone()),
            None => (None, self.first.clone()),
        };
        let source = match source_text {
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
        let mut flags = self.flags.settings()?;
        flags.source = flags.source.or(source);
        Ok((flags, PathBuf::from(mountpoint)))
    }
}

impl MountConfig {
    /// Endpoints, timeouts, credentials and the CA bundle of the AWS regions.
    pub fn storage(&self) -> StorageOptions {
        StorageOptions {
            region_endpoints: self.endpoints.clone().unwrap_or_default(),
            connect_timeout: self.connect_timeout,
            short_operation_timeout: self.operation_timeout,
            max_attempts: self.max_attempts.max(1),
            ca_bundle: self.ca_bundle.clone(),
            aws_profile: self.aws_profile.clone(),
            aws_credentials_file: self.aws_credentials_file.clone(),
            aws_config_file: self.aws_config_file.clone(),
            ..StorageOptions::default()
        }
    }

    /// The session of the store mounted.
    pub fn session_builder(&self) -> SessionBuilder {
        SessionBuilder {
            regions: self.regions.as_deref().map(parse_regions),
            read_only: self.read_only,
            local_store: match &self.source {
                Source::Local(dir) => Some(dir.clone()),
                Source::Aws => None,
            },
            configuration_parameter: Some(self.parameter.clone()),
            storage_options: Some(self.storage()),
            keep_region_order: false,
        }
    }

    /// How the filesystem behaves; `uid` and `gid` are the user's mounting when not
    /// given.
    pub fn fs_options(&self, uid: u32, gid: u32) -> FsOptions {
        FsOptions {
            read_only: self.read_only,
            uid: self.uid.unwrap_or(uid),
            gid: self.gid.unwrap_or(gid),
            stagers: self.stagers,
            metadata_ttl: self.metadata_ttl,
            allow_delete: self.allow_delete,
            passthrough: self.passthrough,
            ..FsOptions::default()
        }
    }
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;
