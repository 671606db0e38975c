//! Where a session's regions live: AWS (or S3/SSM-compatible servers), or the local
//! store. A backend opens any region by name, which setup needs for regions that a
//! session does not hold yet.

use std::path::PathBuf;
use std::sync::Arc;

use aws_config::SdkConfig;

use super::aws::{load_sdk_config, AwsRegion};
use super::local::LocalRegion;
use super::options::{OptionsError, StorageOptions};
use super::store::RegionStore;

#[derive(Clone)]
pub enum Backend {
    Aws {
        sdk_config: Box<SdkConfig>,
        options: StorageOptions,
    },
    Local {
        dir: PathBuf,
    },
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Aws { options, .. } => f
                .debug_struct("Aws")
                .field("region_endpoints", &options.region_endpoints)
                .finish(),
            Backend::Local { dir } => f.debug_struct("Local").field("dir", dir).finish(),
        }
    }
}

impl Backend {
    /// AWS through the standard `aws-config` chain (and the options' profile, shared
    /// files and CA bundle).
    pub async fn aws(options: StorageOptions) -> Result<Self, OptionsError> {
        Ok(Backend::Aws {
            sdk_config: Box::new(load_sdk_config(&options).await?),
            options,
        })
    }

    /// Opens one region.
    pub fn open_region(&self, region: &str) -> Arc<dyn RegionStore> {
        match self {
            Backend::Aws {
                sdk_config,
                options,
            } => Arc::new(AwsRegion::new(sdk_config, region, options)),
            Backend::Local { dir } => Arc::new(LocalRegion::new(dir, region)),
        }
    }
}
