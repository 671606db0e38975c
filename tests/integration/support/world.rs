//! A world: one Startifact organisation over three regions, on moto or on the local
//! store, with its own configuration parameter, bucket-name parameter and buckets, so
//! tests share a server without seeing each other. It also builds hermetic commands for
//! our CLI and for the Python peer: inherited `AWS_*` cleared, dummy credentials,
//! explicit endpoints, no instance-metadata probes, empty config files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use startifact::protocol::setup::{LOCAL_BUCKET, LOCAL_BUCKET_NAME_PARAM};
use startifact::protocol::Configuration;
use startifact::storage::local::LocalRegion;
use startifact::storage::{Backend, ObjectInfo, RegionStore, StorageOptions};
use startifact::Session;

use super::moto::Moto;
use super::proxy::FaultProxy;
use super::unique_id;

pub const REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "eu-west-2"];

#[derive(Debug, Clone, Default)]
pub struct WorldOptions {
    pub bucket_key_prefix: String,
    pub parameter_name_prefix: String,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Moto { url: String },
    Local { dir: PathBuf },
}

pub struct World {
    pub kind: Kind,
    pub id: String,
    pub config_param: String,
    pub bucket_param: String,
    pub configuration: Configuration,
    pub buckets: BTreeMap<String, String>,
    /// Per-region endpoints that replace the server's URL (a proxy, say).
    pub region_endpoints: BTreeMap<String, String>,
    pub scratch: tempfile::TempDir,
    sdk_config: SdkConfig,
}

/// An SDK configuration that reads nothing from the environment.
pub async fn test_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .empty_test_environment()
        .test_credentials()
        .region(Region::new("us-east-1"))
        .load()
        .await
}

/// Timeouts short enough that a dead region costs seconds, not minutes.
pub fn test_storage_options(endpoints: BTreeMap<String, String>) -> StorageOptions {
    StorageOptions {
        region_endpoints: endpoints,
        connect_timeout: Duration::from_secs(2),
        short_operation_timeout: Duration::from_secs(5),
        transfer_base_timeout: Duration::from_secs(15),
        max_attempts: 2,
        ..StorageOptions::default()
    }
}

impl World {
    /// A world on the shared moto server.
    pub async fn moto(options: WorldOptions) -> World {
        Self::moto_at(&Moto::shared().url, options).await
    }

    /// A world on the given moto server.
    pub async fn moto_at(url: &str, options: WorldOptions) -> World {
        let world = Self::empty(
            Kind::Moto {
                url: url.to_string(),
            },
            options,
        )
        .await;
        let s3_config = aws_sdk_s3::config::Builder::from(&world.sdk_config)
            .endpoint_url(url)
            .force_path_style(true)
            .build();
        let s3 = aws_sdk_s3::Client::from_conf(s3_config);
        for (region, bucket) in &world.buckets {
            let mut request = s3.create_bucket().bucket(bucket);
            if region != "us-east-1" {
                request = request.create_bucket_configuration(
                    aws_sdk_s3::types::CreateBucketConfiguration::builder()
                        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                            region.as_str(),
                        ))
                        .build(),
                );
            }
            request
                .customize()
                .config_override(
                    aws_sdk_s3::config::Builder::default().region(Region::new(region.clone())),
                )
                .send()
                .await
                .unwrap_or_else(|e| panic!("creating bucket {bucket} in {region}: {e:?}"));
        }
        world.write_parameters().await;
        world
    }

    /// A world on the shared moto server whose regions are each reached through a
    /// proxy of their own (in `REGIONS` order), so a fault can hit one region.
    pub async fn moto_behind_proxies() -> (World, Vec<FaultProxy>) {
        let mut world = Self::moto(WorldOptions::default()).await;
        let proxies: Vec<FaultProxy> = REGIONS
            .iter()
            .map(|_| FaultProxy::start(&Moto::shared().url))
            .collect();
        for (region, proxy) in REGIONS.iter().zip(&proxies) {
            world
                .region_endpoints
                .insert(region.to_string(), proxy.url());
        }
        (world, proxies)
    }

    /// A world on a local store in its own folder.
    pub async fn local(options: WorldOptions) -> World {
        let scratch = tempfile::tempdir().expect("scratch folder");
        let dir = scratch.path().join("store");
        let world = Self::empty_in(Kind::Local { dir: dir.clone() }, options, scratch).await;
        for (region, bucket) in &world.buckets {
            LocalRegion::new(&dir, region)
                .create_bucket(bucket)
                .expect("local bucket");
        }
        world.write_parameters().await;
        world
    }

    /// An empty local store, as a newcomer starts with: the first command sets it up
    /// (one region, `local`; bucket `startifact-local`; the configuration at
    /// `/startifact`), so what the mount shows holds no random names.
    pub async fn local_new() -> World {
        let scratch = tempfile::tempdir().expect("scratch folder");
        let dir = scratch.path().join("store");
        let mut world = Self::empty_in(Kind::Local { dir }, WorldOptions::default(), scratch).await;
        world.config_param = "/startifact".into();
        world.bucket_param = LOCAL_BUCKET_NAME_PARAM.into();
        world.configuration.bucket_name_param = LOCAL_BUCKET_NAME_PARAM.into();
        world.configuration.regions = "local".into();
        world.buckets = [("local".to_string(), LOCAL_BUCKET.to_string())].into();
        world
    }

    async fn empty(kind: Kind, options: WorldOptions) -> World {
        Self::empty_in(kind, options, tempfile::tempdir().expect("scratch folder")).await
    }

    async fn empty_in(kind: Kind, options: WorldOptions, scratch: tempfile::TempDir) -> World {
        let id = unique_id();
        let bucket_param = format!("/t-{id}/bucket-name");
        let configuration = Configuration {
            bucket_name_param: bucket_param.clone(),
            bucket_key_prefix: options.bucket_key_prefix,
            parameter_name_prefix: options.parameter_name_prefix,
            regions: REGIONS.join(","),
            save_ok: "y".into(),
        };
        std::fs::write(scratch.path().join("empty-aws-file"), "").expect("empty file");
        World {
            kind,
            config_param: format!("/t-{id}/startifact"),
            bucket_param,
            configuration,
            buckets: REGIONS
                .iter()
                .map(|r| (r.to_string(), format!("t-{id}-{r}")))
                .collect(),
            region_endpoints: BTreeMap::new(),
            id,
            scratch,
            sdk_config: test_sdk_config().await,
        }
    }

    async fn write_parameters(&self) {
        let json = self.configuration.to_json();
        for region in REGIONS {
            let store = self.raw_store(region);
            for (name, value) in [
                (&self.bucket_param, &self.buckets[region]),
                (&self.config_param, &json),
            ] {
                // A server just started (one per region) may miss the first timeout.
                let mut tries = 0;
                while let Err(e) = store.put_parameter(name, value).await {
                    tries += 1;
                    assert!(tries < 3, "{name} in {region}: {e:?}");
                }
            }
        }
    }

    fn backend_with(&self, endpoints: BTreeMap<String, String>) -> Backend {
        match &self.kind {
            Kind::Moto { .. } => Backend::Aws {
                sdk_config: Box::new(self.sdk_config.clone()),
                options: test_storage_options(endpoints),
            },
            Kind::Local { dir } => Backend::Local { dir: dir.clone() },
        }
    }

    fn endpoints(&self, with_overrides: bool) -> BTreeMap<String, String> {
        match &self.kind {
            Kind::Moto { url } => REGIONS
                .iter()
                .map(|r| {
                    let endpoint = self
                        .region_endpoints
                        .get(*r)
                        .filter(|_| with_overrides)
                        .cloned()
                        .unwrap_or_else(|| url.clone());
                    (r.to_string(), endpoint)
                })
                .collect(),
            Kind::Local { .. } => BTreeMap::new(),
        }
    }

    /// The backend the sessions use (through any per-region overrides).
    pub fn backend(&self) -> Backend {
        self.backend_with(self.endpoints(true))
    }

    /// One region, reached directly (no proxy), to look at what was written.
    pub fn raw_store(&self, region: &str) -> Arc<dyn RegionStore> {
        self.backend_with(self.endpoints(false)).open_region(region)
    }

    /// The head of `key` in `region`'s bucket, read directly (no proxy, no mount).
    pub async fn head_in(&self, region: &str, key: &str) -> ObjectInfo {
        self.raw_store(region)
            .head_object(&self.buckets[region], key)
            .await
            .unwrap_or_else(|e| panic!("{key} in {region}: {e}"))
    }

    /// Makes `region` fail every stage: its bucket-name parameter names a bucket that
    /// does not exist.
    pub async fn lose_bucket(&self, region: &str) {
        self.raw_store(region)
            .put_parameter(&self.bucket_param, "no-such-bucket-here")
            .await
            .unwrap();
    }

    /// A session over the world's regions, visited in the configuration's order.
    pub fn session(&self, read_only: bool) -> Session {
        let regions: Vec<&str> = self.configuration.regions.split(',').collect();
        self.session_in(&regions, read_only)
    }

    /// A read-write session whose storage options `change` adjusts (on moto; the local
    /// store has none).
    pub fn session_adjusted(&self, change: impl FnOnce(&mut StorageOptions)) -> Session {
        let mut backend = self.backend();
        if let Backend::Aws { options, .. } = &mut backend {
            change(options);
        }
        let regions: Vec<&str> = self.configuration.regions.split(',').collect();
        let stores = regions.iter().map(|r| backend.open_region(r)).collect();
        Session::from_stores(backend, stores, false, self.config_param.clone())
    }

    /// A session over the given regions, visited in that order.
    pub fn session_in(&self, regions: &[&str], read_only: bool) -> Session {
        let backend = self.backend();
        let stores = regions.iter().map(|r| backend.open_region(r)).collect();
        Session::from_stores(backend, stores, read_only, self.config_param.clone())
    }

    /// Writes a file into the scratch folder.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.scratch.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("scratch subfolder");
        }
        std::fs::write(&path, bytes).expect("scratch file");
        path
    }

    pub fn dir(&self, name: &str) -> PathBuf {
        let path = self.scratch.path().join(name);
        std::fs::create_dir_all(&path).expect("scratch subfolder");
        path
    }

    /// The environment both CLIs run in.
    pub fn env(&self) -> Vec<(String, String)> {
        let empty = self.scratch.path().join("empty-aws-file");
        let mut env = vec![
            (
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_default(),
            ),
            (
                "HOME".to_string(),
                self.scratch.path().display().to_string(),
            ),
            ("LANG".to_string(), "C.UTF-8".to_string()),
            ("PYTHONIOENCODING".to_string(), "utf-8".to_string()),
            (
                "STARTIFACT_REGIONS".to_string(),
                self.configuration.regions.clone(),
            ),
            (
                "STARTIFACT_PARAMETER".to_string(),
                self.config_param.clone(),
            ),
            ("AWS_ACCESS_KEY_ID".to_string(), "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), "testing".to_string()),
            ("AWS_DEFAULT_REGION".to_string(), "us-east-1".to_string()),
            ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
            ("AWS_CONFIG_FILE".to_string(), empty.display().to_string()),
            (
                "AWS_SHARED_CREDENTIALS_FILE".to_string(),
                empty.display().to_string(),
            ),
            ("STARTIFACT_CONNECT_TIMEOUT".to_string(), "2".to_string()),
            ("STARTIFACT_MAX_ATTEMPTS".to_string(), "2".to_string()),
        ];
        match &self.kind {
            Kind::Moto { url } => {
                env.push(("AWS_ENDPOINT_URL".to_string(), url.clone()));
                if !self.region_endpoints.is_empty() {
                    let pairs: Vec<String> = self
                        .region_endpoints
                        .iter()
                        .map(|(r, u)| format!("{r}={u}"))
                        .collect();
                    env.push(("STARTIFACT_ENDPOINTS".to_string(), pairs.join(",")));
                }
            }
            Kind::Local { dir } => {
                env.push((
                    "STARTIFACT_LOCAL_STORE".to_string(),
                    dir.display().to_string(),
                ));
            }
        }
        env
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .envs(self.env())
            .current_dir(self.scratch.path());
        command
    }

    /// Our `startifact` binary in this world.
    pub fn cli(&self) -> Command {
        self.command(Path::new(env!("CARGO_BIN_EXE_startifact")))
    }

    /// The Python `startifact` 1.0a10 in this world (moto worlds only).
    pub fn python(&self) -> Command {
        self.command(&super::venv().join("bin/startifact"))
    }
}

/// Runs a command, returning (exit code, stdout, stderr).
pub fn run(command: &mut Command) -> (i32, String, String) {
    let output = command.output().expect("command runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs a command that must succeed; returns its stdout.
pub fn run_ok(command: &mut Command) -> String {
    let (code, stdout, stderr) = run(command);
    assert_eq!(
        code, 0,
        "{command:?} failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    stdout
}

/// The README's rule for every failure of the CLI: exit 1, and one line on stderr
/// starting 🔥. Returns that line.
pub fn assert_one_fire_line(output: (i32, String, String), what: &str) -> String {
    let (code, stdout, stderr) = output;
    assert_eq!(code, 1, "{what}\nstdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
    assert!(stderr.starts_with("🔥 "), "{what}: {stderr}");
    stderr
}
