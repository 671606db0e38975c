//! The name an S3 server gives itself in its answers (the `Server` header: `AmazonS3`
//! on Amazon S3), kept per region from the last answer that carried one, so that what
//! is chosen before anything is learned of a server (how the first large file goes to
//! it) can follow what the server is, not only the address it is reached at.

use std::sync::{Arc, Mutex, PoisonError};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Longest name kept: a server's header is not ours to trust with memory.
const LONGEST: usize = 128;

/// The last `Server` header one region's S3 client saw; cloned into the client as an
/// interceptor, read by the region.
#[derive(Debug, Clone, Default)]
pub(super) struct ServerName(Arc<Mutex<Option<String>>>);

impl ServerName {
    /// The name, once an answer carried one.
    pub(super) fn get(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn seen(&self, name: &str) {
        let name: String = name.trim().chars().take(LONGEST).collect();
        if name.is_empty() {
            return;
        }
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.as_deref() != Some(name.as_str()) {
            *kept = Some(name);
        }
    }
}

impl Intercept for ServerName {
    fn name(&self) -> &'static str {
        "ServerName"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(name) = context.response().headers().get("server") {
            self.seen(name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_name_is_kept_trimmed_and_bounded() {
        let name = ServerName::default();
        assert_eq!(name.get(), None);
        name.seen("  ");
        assert_eq!(name.get(), None, "a blank header is no name");
        name.seen(" AmazonS3 ");
        assert_eq!(name.get().as_deref(), Some("AmazonS3"));
        let long = "x".repeat(10_000);
        name.clone().seen(&long);
        assert_eq!(name.get().map(|n| n.len()), Some(LONGEST));
    }
}
