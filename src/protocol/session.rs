//! A Startifact session: its regions (shuffled once), whether it may write, the
//! organisation configuration (read once, from every region at once, the first answer
//! wins), each region's bucket name (read once per region, inside the failover of
//! whatever needs it) and each region's recent health (`storage::health`), whose breaker
//! every request of a built session goes through.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use futures::stream::{FuturesUnordered, StreamExt};

use crate::storage::breaker::BreakerPolicy;
use crate::storage::{Backend, HealthBoard, RegionHealth, RegionStore, StorageOptions};

use super::configuration::{configuration_parameter_from_env, Configuration};
use super::error::Error;
use super::regions::{regions_from_env, shuffle};
use super::setup::open_local_store;

/// The configuration and the region it was read from.
#[derive(Debug, Clone)]
pub struct LoadedConfiguration {
    pub configuration: Configuration,
    pub region: String,
}

/// How to build a session; anything left unset comes from the environment.
#[derive(Debug, Default, Clone)]
pub struct SessionBuilder {
    pub regions: Option<Vec<String>>,
    pub read_only: bool,
    /// Use the local store in this folder instead of AWS (else `STARTIFACT_LOCAL_STORE`).
    pub local_store: Option<PathBuf>,
    pub configuration_parameter: Option<String>,
    pub storage_options: Option<StorageOptions>,
    /// Keep the regions in the given order (tests); sessions shuffle by default.
    pub keep_region_order: bool,
}

impl SessionBuilder {
    pub async fn build(self) -> Result<Session, Error> {
        let configuration_parameter = self
            .configuration_parameter
            .unwrap_or_else(configuration_parameter_from_env);
        let local_store = self.local_store.or_else(|| {
            std::env::var_os("STARTIFACT_LOCAL_STORE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let (backend, regions) = match local_store {
            Some(dir) => {
                let held = open_local_store(&dir, &configuration_parameter).await?;
                let regions = match self.regions {
                    Some(regions) => regions,
                    None => regions_from_env().unwrap_or(held),
                };
                (Backend::Local { dir }, regions)
            }
            None => {
                let regions = match self.regions {
                    Some(regions) => regions,
                    None => regions_from_env()?,
                };
                let options = match self.storage_options {
                    Some(options) => options,
                    None => {
                        StorageOptions::from_env().map_err(|e| Error::Options(e.to_string()))?
                    }
                };
                (
                    Backend::aws(options)
                        .await
                        .map_err(|e| Error::Options(e.to_string()))?,
                    regions,
                )
            }
        };
        if regions.is_empty() {
            return Err(Error::NoRegionsConfigured);
        }
        let health = HealthBoard::new(BreakerPolicy::default());
        let mut stores: Vec<_> = regions
            .iter()
            .map(|r| health.guard(backend.open_region(r)))
            .collect();
        if !self.keep_region_order {
            shuffle(&mut stores);
        }
        Ok(Session::assemble(
            backend,
            stores,
            self.read_only,
            configuration_parameter,
            health,
        ))
    }
}

/// A Startifact session; cheap to clone and share between tasks.
#[derive(Clone, Debug)]
pub struct Session {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    stores: Vec<Arc<dyn RegionStore>>,
    read_only: bool,
    configuration_parameter: String,
    configuration: OnceCell<LoadedConfiguration>,
    buckets: Mutex<HashMap<String, String>>,
    health: HealthBoard,
}

impl Session {
    /// A session from the environment: `STARTIFACT_REGIONS`, `STARTIFACT_LOCAL_STORE`,
    /// `STARTIFACT_PARAMETER`, `STARTIFACT_ENDPOINTS` and the AWS chain.
    pub async fn from_env(read_only: bool) -> Result<Session, Error> {
        SessionBuilder {
            read_only,
            ..Default::default()
        }
        .build()
        .await
    }

    /// A session over stores already opened, visited in the order given, with no
    /// breaker in front of them (tests that script a store's failures see each one).
    pub fn from_stores(
        backend: Backend,
        stores: Vec<Arc<dyn RegionStore>>,
        read_only: bool,
        configuration_parameter: String,
    ) -> Session {
        Session::assemble(
            backend,
            stores,
            read_only,
            configuration_parameter,
            HealthBoard::default(),
        )
    }

    fn assemble(
        backend: Backend,
        stores: Vec<Arc<dyn RegionStore>>,
        read_only: bool,
        configuration_parameter: String,
        health: HealthBoard,
    ) -> Session {
        Session {
            inner: Arc::new(Inner {
                backend,
                stores,
                read_only,
                configuration_parameter,
                configuration: OnceCell::new(),
                buckets: Mutex::new(HashMap::new()),
                health,
            }),
        }
    }

    pub fn read_only(&self) -> bool {
        self.inner.read_only
    }

    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    pub fn configuration_parameter(&self) -> &str {
        &self.inner.configuration_parameter
    }

    /// The regions in the order this session visits them.
    pub fn regions(&self) -> Vec<String> {
        self.inner
            .stores
            .iter()
            .map(|s| s.region().to_string())
            .collect()
    }

    /// Each region's recent health: last success, last error, breaker state.
    pub fn health(&self) -> Vec<RegionHealth> {
        self.inner.health.report()
    }

    /// Told each time a region whose breaker had opened answers again.
    pub fn region_returned(&self) -> Arc<tokio::sync::Notify> {
        self.inner.health.returned()
    }

    pub(crate) fn stores(&self) -> &[Arc<dyn RegionStore>] {
        &self.inner.stores
    }

    /// The organisation configuration from the first region that has it. Every region
    /// is asked at once, so a region that is down or hung delays nothing while another
    /// has it. A region without the parameter does not count as answering.
    pub async fn configuration(&self) -> Result<&LoadedConfiguration, Error> {
        self.inner
            .configuration
            .get_or_try_init(|| async {
                let name = &self.inner.configuration_parameter;
                let mut answers: FuturesUnordered<_> = self
                    .inner
                    .stores
                    .iter()
                    .map(|store| async move { (store.region(), store.get_parameter(name).await) })
                    .collect();
                let mut reasons = Vec::new();
                let mut denied = true;
                while let Some((region, answer)) = answers.next().await {
                    match answer {
                        Ok(text) => match Configuration::from_json(&text) {
                            Ok(configuration) => {
                                tracing::debug!(region, "configuration loaded");
                                return Ok(LoadedConfiguration {
                                    configuration,
                                    region: region.to_string(),
                                });
                            }
                            Err(reason) => {
                                tracing::warn!(
                                    region,
                                    "configuration {name} is unreadable: {reason}"
                                );
                                reasons.push(format!("{region}: {name} is unreadable: {reason}"));
                                denied = false;
                            }
                        },
                        Err(e) => {
                            tracing::warn!(region, "failed to read configuration: {e}");
                            reasons.push(format!("{region}: {e}"));
                            denied &= e.is_access_denied();
                        }
                    }
                }
                Err(Error::NoRegionsAvailable {
                    regions: self.regions(),
                    denied: denied && !reasons.is_empty(),
                    reasons,
                })
            })
            .await
    }

    /// The configuration, refusing one where setup never ran.
    pub async fn ready_configuration(&self) -> Result<&Configuration, Error> {
        let configuration = &self.configuration().await?.configuration;
        if configuration.bucket_name_param.is_empty() {
            return Err(Error::NoConfiguration {
                key: "bucket_name_param".to_string(),
            });
        }
        Ok(configuration)
    }

    /// The name of a region's bucket, read once per region per session.
    pub async fn bucket(&self, store: &dyn RegionStore) -> Result<String, Error> {
        let region = store.region();
        if let Some(name) = self.cached_bucket(region) {
            return Ok(name);
        }
        let parameter = self.ready_configuration().await?.bucket_name_param.clone();
        let name = store
            .get_parameter(&parameter)
            .await
            .map_err(|source| Error::Parameter {
                name: parameter.clone(),
                region: region.to_string(),
                source,
            })?;
        let name = name.trim().to_string();
        if let Ok(mut buckets) = self.inner.buckets.lock() {
            buckets.insert(region.to_string(), name.clone());
        }
        Ok(name)
    }

    fn cached_bucket(&self, region: &str) -> Option<String> {
        self.inner.buckets.lock().ok()?.get(region).cloned()
    }
}
