//! The `startifact` command line's arguments: the Python tool's flags, plus ours, and
//! the session they ask for.

use std::path::PathBuf;

use clap::Parser;

use super::console::Failure;
use crate::protocol::{regions::parse_regions, Session, SessionBuilder};

/// Shown after the options by `--help`, and in the man page.
const EXAMPLES: &str = "\
Examples:
  startifact SugarWater 1.2.0 --stage dist.tar.gz --filename --metadata lang=rust
                                       stage to every region (a majority must take it)
  startifact SugarWater 1.2.0 --stage dist.tar.gz --require-all-regions
  startifact SugarWater 1.2.0 --dry-run dist.tar.gz
  startifact SugarWater --download dist.tar.gz          the latest version, to a path
  startifact SugarWater 1.2.0 --download out/ --filename
                                       into a folder, under the name saved when staging
  startifact SugarWater latest --download - | tar -xz
  startifact SugarWater latest --info --json
  startifact SugarWater --list
  startifact SugarWater 1.1.0 --set-latest              roll back
  startifact --repair SugarWater --dry-run              then without --dry-run
  startifact --setup --regions us-east-1,eu-west-2 --bucket-name-param /startifact/bucket \\
      --bucket-key-prefix artifacts/ --parameter-name-prefix /artifacts
  startifact SugarWater --list --local-store ~/artifacts     the embedded local store
  startifact SugarWater --list --log-level DEBUG

Environment:
  STARTIFACT_REGIONS      regions, comma-separated (us-east-1,eu-west-2)
  STARTIFACT_PARAMETER    the configuration parameter (default /startifact)
  STARTIFACT_LOCAL_STORE  a local store folder instead of AWS
  STARTIFACT_ENDPOINTS    one endpoint per region (us-east-1=http://127.0.0.1:5000,...)
  STARTIFACT_CONNECT_TIMEOUT, STARTIFACT_OPERATION_TIMEOUT, STARTIFACT_MAX_ATTEMPTS
  AWS_* (credentials, profile, region endpoints) as the AWS SDK reads them

Exit status: 0 on success, 1 on any failure (one line on stderr says why).";

#[derive(Debug, Parser)]
#[command(
    name = "startifact",
    about = "Stages artifacts to several regions of Amazon S3 and SSM Parameter Store, and gets them back",
    disable_version_flag = true,
    after_help = EXAMPLES
)]
pub struct Args {
    /// Project name.
    pub project: Option<String>,
    /// Artifact version (Semantic Versioning 2.0); for --download and --info, a missing
    /// version or "latest" means the latest.
    pub artifact_version: Option<String>,

    /// Stage an artifact from a local path (project and version required).
    #[arg(long, value_name = "FROM", group = "task")]
    pub stage: Option<PathBuf>,
    /// Dry-run the staging of an artifact: heads and reads, no writes. With --repair
    /// (and no FROM): print the repair plan and change nothing.
    #[arg(long = "dry-run", value_name = "FROM", group = "task", num_args = 0..=1)]
    pub dry_run: Option<Option<PathBuf>>,
    /// Download an artifact to a path, into a folder, or to standard output with "-".
    #[arg(long, value_name = "TO", group = "task")]
    pub download: Option<PathBuf>,
    /// Print the artifact's version and metadata.
    #[arg(long, group = "task")]
    pub info: bool,
    /// List the versions of a project, highest first.
    #[arg(long, group = "task")]
    pub list: bool,
    /// Move `latest` to this (staged) version in every region: roll back, or pin.
    #[arg(long = "set-latest", group = "task")]
    pub set_latest: bool,
    /// Copy the versions, metadata, `latest` and configuration that some regions lack
    /// from the regions that have them (PROJECT: only that project); see --dry-run.
    #[arg(long, conflicts_with_all = ["stage", "download", "info", "list", "set_latest", "setup"])]
    pub repair: bool,
    /// Perform the organisation setup then exit (asks for what the options below leave out).
    #[arg(long, group = "task")]
    pub setup: bool,

    /// Set metadata when staging (repeatable; split on the first "=").
    #[arg(long, value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
    /// Save the file name as metadata when staging; restore it when downloading (TO is then a folder).
    #[arg(long)]
    pub filename: bool,
    /// Succeed only when every region took the artifact (the Python tool's rule), not a majority.
    #[arg(long = "require-all-regions")]
    pub require_all_regions: bool,
    /// Staging: files larger than this go up in parts, several at once per region; smaller ones in one request each. Without it, files above 16M go to each region the way that was faster there before (parts at first; see README).
    #[arg(long = "multipart-threshold", value_name = "SIZE", value_parser = crate::arguments::parse_size)]
    pub multipart_threshold: Option<u64>,
    /// Print --info and --list as JSON.
    #[arg(long)]
    pub json: bool,

    /// Regions to use instead of STARTIFACT_REGIONS (for --setup: the regions to set up).
    #[arg(long, value_name = "REGIONS")]
    pub regions: Option<String>,
    /// Use the local store in this folder instead of AWS (also STARTIFACT_LOCAL_STORE).
    #[arg(long = "local-store", value_name = "DIR")]
    pub local_store: Option<PathBuf>,

    /// Setup: the name of the SSM parameter that holds each region's bucket name.
    #[arg(long = "bucket-name-param", value_name = "NAME")]
    pub bucket_name_param: Option<String>,
    /// Setup: the prefix of every S3 key ("" or ending with "/").
    #[arg(long = "bucket-key-prefix", value_name = "PREFIX")]
    pub bucket_key_prefix: Option<String>,
    /// Setup: the prefix of every project parameter ("" or "/..." not ending with "/").
    #[arg(long = "parameter-name-prefix", value_name = "PREFIX")]
    pub parameter_name_prefix: Option<String>,

    /// Show the version then exit.
    #[arg(long)]
    pub version: bool,
    /// Log level: CRITICAL (default), ERROR, WARNING, INFO, DEBUG.
    #[arg(long = "log-level", value_name = "LEVEL", default_value = "CRITICAL")]
    pub log_level: String,
}

/// The tracing filter for a Python-style log level.
pub fn log_filter(level: &str) -> Option<&'static str> {
    Some(match level.to_ascii_uppercase().as_str() {
        "CRITICAL" | "FATAL" | "ERROR" => "error",
        "WARNING" | "WARN" => "warn",
        "INFO" => "info",
        "DEBUG" => "debug",
        "TRACE" | "NOTSET" => "trace",
        _ => return None,
    })
}

/// Splits `KEY=VALUE` pairs on the first `=`.
pub fn parse_metadata(pairs: &[String]) -> Result<crate::Metadata, String> {
    let mut metadata = crate::Metadata::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--metadata {pair:?} is not of the form KEY=VALUE"))?;
        if key.is_empty() {
            return Err(format!("--metadata {pair:?} has an empty key"));
        }
        metadata.insert(key.to_string(), value.to_string());
    }
    Ok(metadata)
}

/// The session the arguments ask for (its regions, local store, and whether it writes).
pub(crate) async fn session(args: &Args, read_only: bool) -> Result<Session, Failure> {
    let builder = SessionBuilder {
        regions: args.regions.as_deref().map(parse_regions),
        read_only,
        local_store: args.local_store.clone(),
        ..Default::default()
    };
    Ok(builder.build().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_splits_on_the_first_equals() {
        let m = parse_metadata(&["a=b=c".into(), "empty=".into()]).unwrap();
        assert_eq!(m["a"], "b=c");
        assert_eq!(m["empty"], "");
        assert!(parse_metadata(&["novalue".into()]).is_err());
        assert!(parse_metadata(&["=v".into()]).is_err());
    }

    #[test]
    fn python_log_levels_map_to_filters() {
        assert_eq!(log_filter("critical"), Some("error"));
        assert_eq!(log_filter("DEBUG"), Some("debug"));
        assert_eq!(log_filter("loud"), None);
    }
}
