//! How the storage backends are reached: endpoints, timeouts and retries.
//!
//! The AWS SDK sets a connect timeout but no operation timeout, so a server that
//! accepts a connection and never answers would stall a request for ever. Every
//! request here gets a connect timeout and an operation timeout: short for heads,
//! parameters, listings and downloads (whose operation ends at the answer's headers),
//! scaled to the size for uploads. Bodies are also protected against stalls (the SDK's
//! stalled-stream protection).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Endpoints, timeouts and retries for every region of a session.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// One endpoint per region (`STARTIFACT_ENDPOINTS=region=url,...`); a region not
    /// named here uses the SDK's own resolution (`AWS_ENDPOINT_URL*`, then AWS).
    pub region_endpoints: BTreeMap<String, String>,
    pub connect_timeout: Duration,
    /// Heads, parameters, listings, and downloads until their answer starts.
    pub short_operation_timeout: Duration,
    /// Uploads get this plus the time the size takes at
    /// `min_throughput_bytes_per_second`.
    pub transfer_base_timeout: Duration,
    pub min_throughput_bytes_per_second: u64,
    /// Attempts per request in one region (1 = no retry).
    pub max_attempts: u32,
    /// A body that moves no bytes for this long fails.
    pub stall_grace_period: Duration,
    /// Trust only the certificate authorities in this PEM file for HTTPS
    /// (`AWS_CA_BUNDLE`, as the AWS CLI reads it): private S3-compatible stores and
    /// proxies that re-sign. `None`: the system's roots.
    pub ca_bundle: Option<PathBuf>,
    /// The AWS profile whose credentials are used (`AWS_PROFILE`).
    pub aws_profile: Option<String>,
    /// The shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`), for a daemon
    /// started with no environment (fstab, `mount -t`).
    pub aws_credentials_file: Option<PathBuf>,
    /// The shared config file (`AWS_CONFIG_FILE`).
    pub aws_config_file: Option<PathBuf>,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            region_endpoints: BTreeMap::new(),
            connect_timeout: Duration::from_secs(3),
            short_operation_timeout: Duration::from_secs(10),
            transfer_base_timeout: Duration::from_secs(30),
            min_throughput_bytes_per_second: 1024 * 1024,
            max_attempts: 3,
            stall_grace_period: Duration::from_secs(10),
            ca_bundle: None,
            aws_profile: None,
            aws_credentials_file: None,
            aws_config_file: None,
        }
    }
}

/// Error in the storage options given by the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OptionsError(pub String);

impl StorageOptions {
    /// Defaults, then `STARTIFACT_ENDPOINTS`, `STARTIFACT_CONNECT_TIMEOUT`,
    /// `STARTIFACT_OPERATION_TIMEOUT` (seconds), `STARTIFACT_MAX_ATTEMPTS` and
    /// `AWS_CA_BUNDLE` (the profile and the shared files the SDK reads itself).
    pub fn from_env() -> Result<Self, OptionsError> {
        let mut options = StorageOptions::default();
        if let Ok(text) = std::env::var("STARTIFACT_ENDPOINTS") {
            options.region_endpoints = parse_region_endpoints(&text)?;
        }
        if let Some(secs) = env_number("STARTIFACT_CONNECT_TIMEOUT")? {
            options.connect_timeout = Duration::from_secs_f64(secs);
        }
        if let Some(secs) = env_number("STARTIFACT_OPERATION_TIMEOUT")? {
            options.short_operation_timeout = Duration::from_secs_f64(secs);
        }
        if let Some(attempts) = env_number("STARTIFACT_MAX_ATTEMPTS")? {
            options.max_attempts = (attempts as u32).max(1);
        }
        options.ca_bundle = std::env::var_os("AWS_CA_BUNDLE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Ok(options)
    }

    /// The timeout of a transfer of `size` bytes.
    pub fn transfer_timeout(&self, size: u64) -> Duration {
        let per_byte = self.min_throughput_bytes_per_second.max(1);
        self.transfer_base_timeout + Duration::from_secs(size / per_byte)
    }
}

fn env_number(name: &str) -> Result<Option<f64>, OptionsError> {
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => {
            let value: f64 = text
                .trim()
                .parse()
                .map_err(|_| OptionsError(format!("{name}={text:?} is not a number")))?;
            if !(value.is_finite() && value > 0.0) {
                return Err(OptionsError(format!("{name}={text:?} must be positive")));
            }
            Ok(Some(value))
        }
        _ => Ok(None),
    }
}

/// Parses `region=url,region=url`.
pub fn parse_region_endpoints(text: &str) -> Result<BTreeMap<String, String>, OptionsError> {
    let mut endpoints = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (region, url) = pair.split_once('=').ok_or_else(|| {
            OptionsError(format!(
                "STARTIFACT_ENDPOINTS entry {pair:?} is not of the form region=url"
            ))
        })?;
        let (region, url) = (region.trim(), url.trim());
        if region.is_empty() || !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(OptionsError(format!(
                "STARTIFACT_ENDPOINTS entry {pair:?} needs a region and an http(s) URL"
            )));
        }
        endpoints.insert(region.to_string(), url.to_string());
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_per_region() {
        let parsed =
            parse_region_endpoints(" us-east-1=http://127.0.0.1:1 , eu-west-2=https://x ").unwrap();
        assert_eq!(parsed["us-east-1"], "http://127.0.0.1:1");
        assert_eq!(parsed["eu-west-2"], "https://x");
    }

    #[test]
    fn endpoints_refuse_malformed_entries() {
        assert!(parse_region_endpoints("us-east-1").is_err());
        assert!(parse_region_endpoints("us-east-1=ftp://x").is_err());
        assert!(parse_region_endpoints("=http://x").is_err());
    }

    #[test]
    fn transfer_timeout_grows_with_size() {
        let options = StorageOptions::default();
        assert!(options.transfer_timeout(1 << 30) > options.transfer_timeout(1));
    }
}
