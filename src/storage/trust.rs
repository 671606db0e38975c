//! Custom certificate authorities for HTTPS endpoints (`AWS_CA_BUNDLE`, `ca_bundle=`):
//! private S3-compatible stores and proxies that re-sign traffic. The SDK does not read
//! `AWS_CA_BUNDLE` itself, and its HTTP client panics at the first connection on a
//! bundle it cannot parse; so the file is read and every certificate checked here, at
//! start, and a bad one is an error naming the file.

use std::path::Path;

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use rustls::pki_types::{pem::PemObject, CertificateDer};

use super::options::OptionsError;

/// An HTTPS client that trusts the certificate authorities of the PEM file at `path`,
/// and only those (as the AWS CLI does with `AWS_CA_BUNDLE`).
pub fn http_client_trusting(path: &Path) -> Result<SharedHttpClient, OptionsError> {
    let pem = read_bundle(path)?;
    let context = TlsContext::builder()
        .with_trust_store(
            TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(pem),
        )
        .build()
        .map_err(|e| bad(path, &e.to_string()))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https())
}

/// The bundle's bytes, once every certificate in it is known to parse as a trust anchor.
pub fn read_bundle(path: &Path) -> Result<Vec<u8>, OptionsError> {
    let pem = std::fs::read(path).map_err(|e| bad(path, &e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(path, &format!("not PEM: {e}")))?;
        roots.add(cert).map_err(|e| {
            bad(
                path,
                &format!("a certificate cannot be a trust anchor: {e}"),
            )
        })?;
    }
    if roots.is_empty() {
        return Err(bad(path, "it holds no PEM certificate"));
    }
    Ok(pem)
}

fn bad(path: &Path, reason: &str) -> OptionsError {
    OptionsError(format!(
        "cannot use the CA bundle {} (AWS_CA_BUNDLE or ca_bundle): {reason}",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_bundle_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-ca.pem");
        let e = read_bundle(&missing).unwrap_err().to_string();
        assert!(e.contains(&missing.display().to_string()), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = read_bundle(&empty).unwrap_err().to_string();
        assert!(
            e.contains("empty.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = read_bundle(&broken).unwrap_err().to_string();
        assert!(e.contains("broken.pem"), "{e}");
    }
}
