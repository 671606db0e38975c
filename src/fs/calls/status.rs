//! The mount's status, computed when asked: what is staging, what failed and why, what
//! awaits repair (the spool's `status.json`, as the staging journal last wrote it), the
//! last background repair's outcome, and each region's recent health (last success,
//! last error, breaker state) with how many of this mount's versions await repair there.
//!
//! It is served as the attribute `user.startifact:status` of the mount's root, so anyone
//! who can see the mount can read it (`startifact-fs status`, `getfattr`) without the
//! daemon's log. It is not listed by `listxattr`, so `cp -a` and `rsync -aX` of the root
//! do not copy it.

use serde_json::{json, Value};

use super::filesystem::ArtifactFs;
use crate::fs::inode::Node;
use crate::fs::staging::seconds_of;
use crate::fs::xattr::XATTR_SIZE_MAX;

/// The root's attribute that holds the status document.
pub const STATUS_ATTRIBUTE: &str = "user.startifact:status";

impl ArtifactFs {
    /// Whether `name` on `inode` is the status attribute.
    pub(crate) fn is_status_attribute(&self, inode: u64, name: &str) -> bool {
        name == STATUS_ATTRIBUTE && matches!(self.node(inode), Ok(Node::Root))
    }

    /// The status document as JSON, at most what an attribute can hold (the list of
    /// staging versions is shortened, and marked so, when it would not fit).
    pub fn status_document(&self) -> Vec<u8> {
        let staging = self.staging.as_ref().map(|staging| {
            let path = staging.dir().join("status.json");
            match std::fs::read(&path) {
                Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
                    .unwrap_or_else(|e| json!({ "error": format!("{}: {e}", path.display()) })),
                Err(e) => json!({ "error": format!("{}: {e}", path.display()) }),
            }
        });
        let mut regions = json!(self.session.health());
        if let Some(staging) = &staging {
            count_awaiting_repair(&mut regions, staging);
        }
        let last_repair = self.staging.as_ref().and_then(|s| s.last_repair());
        let mut document = json!({
            "mounted_at": seconds_of(self.mounted_at),
            "read_only": self.options.read_only,
            "staging": staging,
            "last_repair": last_repair,
            "regions": regions,
        });
        loop {
            let bytes = serde_json::to_vec(&document).unwrap_or_default();
            if bytes.len() <= XATTR_SIZE_MAX {
                return bytes;
            }
            let Some(versions) = document
                .pointer_mut("/staging/versions")
                .and_then(Value::as_array_mut)
                .filter(|v| !v.is_empty())
            else {
                return bytes;
            };
            let keep = versions.len() / 2;
            versions.truncate(keep);
            document["staging"]["truncated"] = Value::Bool(true);
        }
    }
}

/// Adds to each region how many staging versions await repair there (a version whose
/// missing regions are not known counts in none: its repair checks every region).
fn count_awaiting_repair(regions: &mut Value, staging: &Value) {
    let versions = staging["versions"].as_array().cloned().unwrap_or_default();
    for region in regions.as_array_mut().into_iter().flatten() {
        let name = region["region"].clone();
        let count = versions
            .iter()
            .filter(|entry| entry["state"] == "awaiting-repair")
            .filter(|entry| {
                entry["regions"]
                    .as_array()
                    .is_some_and(|regions| regions.contains(&name))
            })
            .count();
        region["awaiting_repair"] = json!(count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_region_counts_the_versions_awaiting_repair_there() {
        let mut regions = json!([{"region": "a"}, {"region": "b"}]);
        let staging = json!({"versions": [
            {"state": "awaiting-repair", "regions": ["a"]},
            {"state": "awaiting-repair", "regions": ["a", "b"]},
            {"state": "conflict", "regions": ["b"]},
            {"state": "failed"},
        ]});
        count_awaiting_repair(&mut regions, &staging);
        assert_eq!(regions[0]["awaiting_repair"], 2);
        assert_eq!(regions[1]["awaiting_repair"], 1);
    }
}
