//! Which staging folder a mount keeps its spool in, and its opening: the one given
//! (`--staging-dir`), else one per store under the state folder (`default_staging_base`).
//!
//! A store is what a daemon stages to: for AWS, its regions, its endpoints
//! (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_SSM` and the per-region
//! `--endpoints`), its configuration parameter and its profile; for `local:DIR`, the
//! folder. The default folder is named `aws-HASH` (or `local-HASH`), HASH the first 12
//! hex digits of the MD5 of a canonical description of the store, which is also written
//! into the folder (`@store.txt`) for operators. So mounts of two stores never see, take
//! up, resume or repair each other's files; the spool's lock (`crate::fs::staging::spool_lock`) keeps
//! each folder to one daemon.
//!
//! Daemons before this rule kept every AWS store's spool in one folder, `aws`. It is
//! left alone: its entries may be any store's, and resuming them into the wrong one is
//! what the rule prevents. While it holds staging versions, each start says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use super::declaration::MountConfig;
use super::option_values::Source;
use crate::digest::Md5;
use crate::fs::host::private_dir::PrivateDir;
use crate::fs::Staging;
use crate::protocol::configuration::DEFAULT_CONFIGURATION_PARAMETER;
use crate::protocol::regions::parse_regions;
use crate::protocol::{SendingCosts, StageOptions};

/// The folder that all AWS stores shared before each store had its own.
const SHARED_AWS_FOLDER: &str = "aws";

/// The endpoint variables the SDK reads itself, in the order the description lists them.
const ENDPOINT_VARIABLES: [(&str, &str); 3] = [
    ("AWS_ENDPOINT_URL", "endpoint_url"),
    ("AWS_ENDPOINT_URL_S3", "endpoint_url_s3"),
    ("AWS_ENDPOINT_URL_SSM", "endpoint_url_ssm"),
];

/// The staging folder a mount uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagingFolder {
    pub dir: PathBuf,
    /// What makes the store, as written into `@store.txt`.
    pub store: String,
    /// The default, named from the store (not given with `--staging-dir`).
    pub chosen: bool,
}

/// What makes a store, and the name of its default staging folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    /// A canonical description: `key = "value"` lines, every key always present.
    pub description: String,
    pub folder_name: String,
}

impl Store {
    /// The store `config` stages to; `env` reads the daemon's environment (the endpoint
    /// variables, which the SDK reads itself rather than through the settings).
    pub fn of(config: &MountConfig, env: &dyn Fn(&str) -> Option<String>) -> Store {
        match &config.source {
            Source::Local(dir) => {
                let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
                let text = canonical.to_string_lossy();
                // The name older daemons gave it too: the hash of the path alone.
                Store {
                    description: format!("source = \"local\"\ndir = {text:?}\n"),
                    folder_name: format!("local-{}", short_hash(text.as_bytes())),
                }
            }
            Source::Aws => {
                let mut regions = parse_regions(config.regions.as_deref().unwrap_or(""));
                regions.sort();
                regions.dedup();
                // An endpoint of a region not in use changes nothing of the store.
                let endpoints: BTreeMap<&String, &String> = config
                    .endpoints
                    .iter()
                    .flatten()
                    .filter(|(region, _)| regions.contains(region))
                    .collect();
                let endpoints = endpoints
                    .iter()
                    .map(|(region, url)| format!("{region}={url}"))
                    .collect::<Vec<_>>()
                    .join(",");
                let parameter = Some(config.parameter.trim())
                    .filter(|p| !p.is_empty())
                    .unwrap_or(DEFAULT_CONFIGURATION_PARAMETER);
                let mut description = format!(
                    "source = \"aws\"\nregions = {:?}\nparameter = {parameter:?}\nprofile = {:?}\n",
                    regions.join(","),
                    config.aws_profile.as_deref().unwrap_or(""),
                );
                for (variable, key) in ENDPOINT_VARIABLES {
                    let value = env(variable)
                        .map(|v| v.trim().to_string())
                        .unwrap_or_default();
                    description.push_str(&format!("{key} = {value:?}\n"));
                }
                description.push_str(&format!("endpoints = {endpoints:?}\n"));
                Store {
                    folder_name: format!("aws-{}", short_hash(description.as_bytes())),
                    description,
                }
            }
        }
    }
}

fn short_hash(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))[..12].to_string()
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

/// Refuses a folder others could plant links in or move away (and tightens ours): the
/// staging folders, and the cache's.
pub(super) fn check_private_folder(what: &str, dir: &Path) -> Result<(), String> {
    PrivateDir::open(dir)
        .map(drop)
        .map_err(|e| format!("refusing the {what} folder: {e}"))
}

/// The staging folder of `config`: the one given, else its store's under the state
/// folder. A daemon that is not root and has no state folder of its own is told so: it
/// never falls back to a folder others can write to.
pub fn choose(
    config: &MountConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<StagingFolder, String> {
    let store = Store::of(config, env);
    if let Some(dir) = &config.staging_dir {
        return Ok(StagingFolder {
            dir: dir.clone(),
            store: store.description,
            chosen: false,
        });
    }
    let base = default_staging_base(
        unsafe { libc::geteuid() },
        env("XDG_STATE_HOME").as_deref().map(std::ffi::OsStr::new),
        env("HOME").as_deref().map(std::ffi::OsStr::new),
    )?;
    Ok(StagingFolder {
        dir: base.join(store.folder_name),
        store: store.description,
        chosen: true,
    })
}

/// Opens the spool, which takes its lock (a second daemon on the folder stops here,
/// before any region is asked anything), and says which store it is for.
pub fn open(config: &MountConfig, folder: &StagingFolder) -> Result<Staging, String> {
    if folder.chosen {
        // The default's base folder holds only ours: it need not be readable either.
        if let Some(base) = folder.dir.parent() {
            check_private_folder("staging", base)?;
        }
    }
    check_private_folder("staging", &folder.dir)?;
    let stage_options = StageOptions {
        part_size: config.part_size,
        multipart_threshold: config.multipart_threshold,
        // Taken up from, and kept in, the staging folder.
        sending: config
            .adaptive_sending
            .then(|| Arc::new(SendingCosts::in_memory())),
        ..StageOptions::default()
    };
    let staging = Staging::open(&folder.dir, config.staging_size, stage_options).map_err(|e| {
        if folder.chosen {
            format!("{e} (each store has a staging folder of its own: another mount of this store needs --staging-dir DIR)")
        } else {
            e.to_string()
        }
    })?;
    if let Some(before) = staging.record_store(&folder.store) {
        tracing::warn!(
            "the staging folder {} was used for another store before:\n{before}its versions are staged to this one now:\n{}",
            folder.dir.display(),
            folder.store
        );
    }
    report_shared_folder(folder);
    Ok(staging)
}

/// Says, at start, what the folder all AWS stores once shared still holds: its
/// staging versions are left where they are (a warning names them), an empty one is
/// only mentioned.
fn report_shared_folder(folder: &StagingFolder) {
    if !folder.chosen || !folder.store.starts_with("source = \"aws\"") {
        return;
    }
    let Some(shared) = folder.dir.parent().map(|base| base.join(SHARED_AWS_FOLDER)) else {
        return;
    };
    let is_folder = std::fs::symlink_metadata(&shared).is_ok_and(|m| m.is_dir());
    if !is_folder {
        return;
    }
    let versions = staging_versions(&shared);
    if versions.is_empty() {
        tracing::info!(
            "{} (the staging folder every AWS store shared before each had its own) holds no \
             staging version: it is not used and may be removed",
            shared.display()
        );
        return;
    }
    let mut named = versions
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if versions.len() > 5 {
        named.push_str(", ...");
    }
    tracing::warn!(
        "{} (the staging folder every AWS store shared before each had its own) holds {} \
         staging versions ({named}), left alone since they may be any store's; this \
         daemon's is {}. If they are this store's, stop the daemon and move their folders \
         there (or mount once with --staging-dir {})",
        shared.display(),
        versions.len(),
        folder.dir.display(),
        shared.display()
    );
}

/// `project/version` of every staging version folder under `dir`.
fn staging_versions(dir: &Path) -> Vec<String> {
    let folders = |dir: &Path| -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        names.sort();
        names
    };
    folders(dir)
        .into_iter()
        .flat_map(|project| {
            folders(&dir.join(&project))
                .into_iter()
                .map(move |version| format!("{project}/{version}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::options::MountArgs;
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> MountConfig {
        let mut all = vec!["startifact-fs"];
        all.extend_from_slice(args);
        all.push("/mnt");
        MountArgs::try_parse_from(all)
            .unwrap()
            .resolve_in(&|_| None, Path::new("/no/such/config.toml"))
            .unwrap()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const BASE: [&str; 4] = [
        "--regions",
        "us-east-1,eu-west-2",
        "--endpoints",
        "us-east-1=http://a",
    ];

    fn store(extra: &[&str], env: &dyn Fn(&str) -> Option<String>) -> Store {
        let mut args = BASE.to_vec();
        args.extend_from_slice(extra);
        Store::of(&config(&args), env)
    }

    #[test]
    fn the_name_is_stable_and_readable() {
        let one = store(&[], &no_env);
        assert_eq!(one, store(&[], &no_env));
        assert!(one.folder_name.starts_with("aws-"), "{}", one.folder_name);
        assert_eq!(one.folder_name.len(), "aws-".len() + 12);
        assert!(one
            .description
            .contains("regions = \"eu-west-2,us-east-1\""));
        assert!(one.description.contains("parameter = \"/startifact\""));
        // Pinned: a daemon of another release must find the same folder.
        let pinned = Store::of(&config(&["--regions", "r"]), &no_env);
        assert_eq!(
            pinned.description,
            "source = \"aws\"\nregions = \"r\"\nparameter = \"/startifact\"\nprofile = \"\"\n\
             endpoint_url = \"\"\nendpoint_url_s3 = \"\"\nendpoint_url_ssm = \"\"\nendpoints = \"\"\n"
        );
        assert_eq!(
            pinned.folder_name,
            format!(
                "aws-{}",
                &hex::encode(Md5::digest(pinned.description.as_bytes()))[..12]
            )
        );
    }

    #[test]
    fn the_order_of_the_regions_and_an_unused_endpoint_do_not_matter() {
        let base = store(&[], &no_env);
        let reordered = Store::of(
            &config(&[
                "--regions",
                "eu-west-2, us-east-1",
                "--endpoints",
                "us-east-1=http://a,ap-south-1=http://z",
            ]),
            &no_env,
        );
        assert_eq!(base, reordered);
        // The parameter's default, said or not.
        assert_eq!(base, store(&["--parameter", "/startifact"], &no_env));
    }

    #[test]
    fn each_part_of_the_store_changes_the_name() {
        let base = store(&[], &no_env).folder_name;
        let mut names = vec![base.clone()];
        for args in [
            &[
                "--regions",
                "us-east-1",
                "--endpoints",
                "us-east-1=http://a",
            ][..],
            &[
                "--regions",
                "us-east-1,eu-west-2",
                "--endpoints",
                "us-east-1=http://b",
            ],
        ] {
            names.push(Store::of(&config(args), &no_env).folder_name);
        }
        for extra in [&["--parameter", "/other"][..], &["--aws-profile", "ci"]] {
            names.push(store(extra, &no_env).folder_name);
        }
        for (variable, _) in ENDPOINT_VARIABLES {
            let env = |name: &str| (name == variable).then(|| "http://127.0.0.1:5000".to_string());
            names.push(store(&[], &env).folder_name);
        }
        let distinct: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
    }

    #[test]
    fn a_local_store_is_named_from_its_canonical_folder_as_before() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("store");
        std::fs::create_dir(&dir).unwrap();
        let canonical = std::fs::canonicalize(&dir).unwrap();
        let roundabout = format!("local:{}/../store", dir.display());
        let a = Store::of(&config(&[&format!("local:{}", dir.display())]), &no_env);
        let b = Store::of(&config(&[&roundabout]), &no_env);
        assert_eq!(a, b);
        let before = hex::encode(Md5::digest(canonical.to_string_lossy().as_bytes()));
        assert_eq!(a.folder_name, format!("local-{}", &before[..12]));
        assert!(a
            .description
            .contains(&format!("{:?}", canonical.to_string_lossy())));
    }

    #[test]
    fn a_given_folder_is_used_as_given() {
        let given = config(&["--regions", "r", "--staging-dir", "/srv/spool"]);
        let folder = choose(&given, &no_env).unwrap();
        assert_eq!(folder.dir, PathBuf::from("/srv/spool"));
        assert!(!folder.chosen);
        let chosen = choose(&config(&["--regions", "r"]), &|name| {
            (name == "HOME").then(|| "/h".to_string())
        })
        .unwrap();
        assert!(chosen.chosen);
        let name = Store::of(&config(&["--regions", "r"]), &no_env).folder_name;
        assert!(chosen.dir.ends_with(&name), "{}", chosen.dir.display());
    }

    #[test]
    fn the_shared_folder_of_older_daemons_lists_its_versions() {
        let scratch = tempfile::tempdir().unwrap();
        for path in ["P/1.0.0", "P/2.0.0", "Q/0.1.0"] {
            std::fs::create_dir_all(scratch.path().join(path)).unwrap();
        }
        std::fs::write(scratch.path().join("status.json"), b"{}").unwrap();
        assert_eq!(
            staging_versions(scratch.path()),
            ["P/1.0.0", "P/2.0.0", "Q/0.1.0"]
        );
    }

    #[test]
    fn staging_folders_default_to_a_state_folder_never_to_tmp() {
        use std::ffi::OsStr;
        let root = default_staging_base(0, None, None).unwrap();
        assert_eq!(root, PathBuf::from("/var/lib/startifact-fs/staging"));
        let xdg = default_staging_base(1000, Some(OsStr::new("/x")), Some(OsStr::new("/h")));
        assert_eq!(xdg.unwrap(), PathBuf::from("/x/startifact-fs/staging"));
        let home = default_staging_base(1000, None, Some(OsStr::new("/h")));
        assert_eq!(
            home.unwrap(),
            PathBuf::from("/h/.local/state/startifact-fs/staging")
        );
        // Relative values are not state folders.
        let relative = default_staging_base(1000, Some(OsStr::new("x")), Some(OsStr::new("/h")));
        assert_eq!(
            relative.unwrap(),
            PathBuf::from("/h/.local/state/startifact-fs/staging")
        );
        for (xdg, home) in [
            (None, None),
            (Some(""), Some("")),
            (Some("rel"), Some("rel")),
        ] {
            let e =
                default_staging_base(1000, xdg.map(OsStr::new), home.map(OsStr::new)).unwrap_err();
            assert!(e.contains("neither HOME nor XDG_STATE_HOME"), "{e}");
            assert!(e.contains("--staging-dir"), "{e}");
        }
    }
}
