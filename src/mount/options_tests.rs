//! The command line and its `-o` forms resolved into a `MountConfig`: sources, sizes,
//! defaults, and which setting wins.

use std::time::Duration;

use super::*;
use crate::arguments::parse_size;

fn resolve(args: &[&str]) -> Result<MountConfig, String> {
    let mut all = vec!["startifact-fs"];
    all.extend_from_slice(args);
    MountArgs::try_parse_from(all)
        .map_err(|e| e.to_string())?
        .resolve_in(&|_| None, Path::new("/no/such/config.toml"))
}

#[test]
fn source_and_mountpoint() {
    let c = resolve(&["/mnt"]).unwrap();
    assert_eq!(c.source, Source::Aws);
    assert_eq!(c.mountpoint, PathBuf::from("/mnt"));
    let c = resolve(&["local:/store", "/mnt"]).unwrap();
    assert_eq!(c.source, Source::Local("/store".into()));
    assert!(resolve(&["s3:x", "/mnt"]).is_err());
}

#[test]
fn dash_o_options_match_the_long_ones() {
    let c = resolve(&[
        "-o",
        "ro,allow_other,uid=5,gid=6,metadata_ttl=2.5,_netdev,nofail",
        "-o",
        "regions=a:b",
        "/mnt",
    ])
    .unwrap();
    assert!(c.read_only && c.allow_other);
    assert_eq!((c.uid, c.gid), (Some(5), Some(6)));
    assert_eq!(c.metadata_ttl, Duration::from_millis(2500));
    assert_eq!(c.regions.as_deref(), Some("a,b"));
    assert!(resolve(&["-o", "bogus", "/mnt"]).is_err());
    assert!(
        c.default_permissions,
        "allow_other always checks permissions"
    );
    let c = resolve(&["-o", "default_permissions,stagers=0", "/mnt"]).unwrap();
    assert!(c.default_permissions && !c.allow_other);
    assert_eq!(c.stagers, Some(0));
    let c = resolve(&["--stagers", "root", "/mnt"]).unwrap();
    assert_eq!(c.stagers, Some(0));
    assert!(resolve(&["-o", "stagers=no-such-group-here", "/mnt"]).is_err());
    assert!(resolve(&["-o", "uid=x", "/mnt"]).is_err());
    let c = resolve(&[
        "-o",
        "staging_dir=/s,staging_size=1G,part_size=16M,allow_delete",
        "/mnt",
    ])
    .unwrap();
    assert_eq!(c.staging_dir, Some(PathBuf::from("/s")));
    assert_eq!((c.staging_size, c.part_size), (1 << 30, 16 << 20));
    assert!(c.allow_delete);
    assert!(resolve(&["-o", "part_size=1M", "/mnt"]).is_err());
    let c = resolve(&["-o", "cache_dir=/c,cache_size=2G", "/mnt"]).unwrap();
    assert_eq!(
        (c.cache_dir, c.cache_size),
        (Some(PathBuf::from("/c")), 2 << 30)
    );
}

#[test]
fn flags_win_over_dash_o_over_the_environment_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        "regions = \"file\"\nparameter = \"/file\"\nstaging_size = \"3M\"\n\
         part_size = \"6M\"\nca_bundle = \"/file.pem\"\n\
         [endpoints]\nfile = \"http://file\"\n",
    )
    .unwrap();
    let env = |name: &str| match name {
        "STARTIFACT_REGIONS" => Some("env".to_string()),
        "STARTIFACT_PARAMETER" => Some("/env".to_string()),
        "AWS_CA_BUNDLE" => Some("/env.pem".to_string()),
        _ => None,
    };
    let resolve_with = |args: &[&str], default_file: &Path| {
        let mut all = vec!["startifact-fs"];
        all.extend_from_slice(args);
        MountArgs::try_parse_from(all)
            .unwrap()
            .resolve_in(&env, default_file)
            .unwrap()
    };
    let config = file.to_str().unwrap();
    let c = resolve_with(
        &[
            "--config",
            config,
            "--regions",
            "flag",
            "-o",
            "regions=o,parameter=/o",
            "/mnt",
        ],
        Path::new("/no/such"),
    );
    assert_eq!(c.regions.as_deref(), Some("flag"), "flags first");
    assert_eq!(c.parameter, "/o", "then -o");
    assert_eq!(
        c.ca_bundle,
        Some(PathBuf::from("/env.pem")),
        "then the environment"
    );
    assert_eq!(
        (c.staging_size, c.part_size),
        (3 << 20, 6 << 20),
        "then the file"
    );
    assert_eq!(c.storage().region_endpoints["file"], "http://file");
    assert_eq!(c.cache_size, 10 << 30, "then the defaults");
    // The default file is read when it exists and no other is named...
    let c = resolve_with(&["/mnt"], &file);
    assert_eq!(c.staging_size, 3 << 20);
    // ... and -o config= names one as --config does.
    let c = resolve_with(
        &["-o", &format!("config={config}"), "/mnt"],
        Path::new("/x"),
    );
    assert_eq!(c.part_size, 6 << 20);
    let missing = MountArgs::try_parse_from(["startifact-fs", "--config", "/no/such.toml", "/mnt"])
        .unwrap()
        .resolve_in(&env, Path::new("/x"))
        .unwrap_err();
    assert!(missing.contains("/no/such.toml"), "{missing}");
}

#[test]
fn sizes_take_suffixes() {
    assert_eq!(parse_size("512").unwrap(), 512);
    assert_eq!(parse_size("3K").unwrap(), 3072);
    assert_eq!(parse_size("5m").unwrap(), 5 << 20);
    assert!(parse_size("5X").is_err());
    assert!(parse_size("G").is_err());
    assert!(parse_size("99999999999T").is_err());
}

#[test]
fn stop_timeout_defaults_to_30_seconds_and_is_set_either_way() {
    let c = resolve(&["/mnt"]).unwrap();
    assert_eq!(c.stop_timeout, Duration::from_secs(30));
    let c = resolve(&["--stop-timeout", "2.5", "/mnt"]).unwrap();
    assert_eq!(c.stop_timeout, Duration::from_millis(2500));
    let c = resolve(&["-o", "stop_timeout=4", "/mnt"]).unwrap();
    assert_eq!(c.stop_timeout, Duration::from_secs(4));
    assert!(resolve(&["-o", "stop_timeout=soon", "/mnt"]).is_err());
    assert!(resolve(&["--stop-timeout", "-1", "/mnt"]).is_err());
}

#[test]
fn the_defaults_are_those_of_the_layers_below() {
    let c = resolve(&["/mnt"]).unwrap();
    let fs = FsOptions::default();
    assert_eq!(c.fs_options(5, 6).metadata_ttl, fs.metadata_ttl);
    assert_eq!((c.fs_options(5, 6).uid, c.fs_options(5, 6).gid), (5, 6));
    let stage = crate::protocol::StageOptions::default();
    assert_eq!(
        (c.part_size, c.multipart_threshold),
        (stage.part_size, stage.multipart_threshold)
    );
    assert!(c.adaptive_sending, "no threshold given");
    let storage = StorageOptions::default();
    assert_eq!(c.storage().connect_timeout, storage.connect_timeout);
    assert_eq!(c.storage().max_attempts, storage.max_attempts);
    assert_eq!(c.source, Source::Aws);
    let c = resolve(&["-o", "max_attempts=0,multipart_threshold=32M", "/mnt"]).unwrap();
    assert_eq!(c.storage().max_attempts, 1, "at least one attempt");
    assert!(!c.adaptive_sending, "a threshold given");
}
