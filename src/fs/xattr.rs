//! Extended attributes: metadata key `K` is `user.K` on a version's folder and on its
//! file; read-only attributes under `user.startifact:` name the bucket, key and region
//! that serve the file (user metadata keys cannot start `startifact:`, so they never
//! collide). `system.*`, `security.*` and `trusted.*` are answered here, with no request:
//! `ls -l` asks for ACLs on every entry.

use super::error::{FsError, FsErrorKind, FsResult};
use super::pinned::PinnedVersion;

/// Linux refuses attribute values over 64 KiB.
pub const XATTR_SIZE_MAX: usize = 64 * 1024;

/// The answer to a get or list: the size when probed with a zero-size buffer, else the
/// bytes (or ERANGE when they do not fit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XattrReply {
    Size(u32),
    Data(Vec<u8>),
}

/// Fits `value` to the caller's buffer size (`0` asks for the size).
pub fn reply_for(value: Vec<u8>, size: u32) -> FsResult<XattrReply> {
    if value.len() > XATTR_SIZE_MAX {
        return Err(FsError::new(
            FsErrorKind::TooBig,
            format!(
                "attribute value of {} bytes is over the 64 KiB limit",
                value.len()
            ),
        ));
    }
    if size == 0 {
        return Ok(XattrReply::Size(value.len() as u32));
    }
    if value.len() > size as usize {
        return Err(FsError::new(
            FsErrorKind::BufferTooSmall,
            "buffer too small",
        ));
    }
    Ok(XattrReply::Data(value))
}

/// The attributes of a staged version, as (name, value).
pub fn attributes(pinned: &PinnedVersion) -> Vec<(String, Vec<u8>)> {
    let mut attributes: Vec<(String, Vec<u8>)> = pinned
        .metadata
        .iter()
        .map(|(k, v)| (format!("user.{k}"), v.clone().into_bytes()))
        .collect();
    for (name, value) in [
        ("user.startifact:bucket", pinned.bucket.as_str()),
        ("user.startifact:key", pinned.key.as_str()),
        ("user.startifact:region", pinned.region.as_str()),
        ("user.startifact:etag", pinned.etag.as_deref().unwrap_or("")),
    ] {
        attributes.push((name.to_string(), value.as_bytes().to_vec()));
    }
    attributes
}

/// True for the namespaces answered locally as "no such attribute".
pub fn is_foreign_namespace(name: &str) -> bool {
    !name.starts_with("user.")
}

/// NUL-terminated names, as `listxattr` returns them.
pub fn name_list(names: impl IntoIterator<Item = String>) -> Vec<u8> {
    let mut list = Vec::new();
    for name in names {
        list.extend_from_slice(name.as_bytes());
        list.push(0);
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_probe_then_data() {
        assert_eq!(reply_for(b"abc".to_vec(), 0).unwrap(), XattrReply::Size(3));
        assert_eq!(
            reply_for(b"abc".to_vec(), 3).unwrap(),
            XattrReply::Data(b"abc".to_vec())
        );
        assert_eq!(
            reply_for(b"abc".to_vec(), 2).unwrap_err().errno(),
            libc::ERANGE
        );
        assert_eq!(
            reply_for(vec![0; XATTR_SIZE_MAX + 1], 0)
                .unwrap_err()
                .errno(),
            libc::E2BIG
        );
    }

    #[test]
    fn names_are_nul_terminated() {
        assert_eq!(
            name_list(["user.a".to_string(), "user.b".to_string()]),
            b"user.a\0user.b\0"
        );
    }
}
