//! Artifact metadata: a map of string keys to string values, stored beside the
//! artifact as JSON in the Python tool's exact bytes. Keys under `startifact:` are
//! reserved; `startifact:filename` holds the original file name when asked to.

use std::collections::BTreeMap;

use super::error::Error;
use super::json::python_dumps;
use crate::storage::{RegionStore, StorageError};
use futures::StreamExt;

/// Metadata keys that start with this belong to Startifact.
pub const RESERVED_PREFIX: &str = "startifact:";
/// Where the stager saves the artifact's original file name.
pub const FILENAME_KEY: &str = "startifact:filename";

/// An artifact's metadata, ordered as it is written.
pub type Metadata = BTreeMap<String, String>;

/// Refuses user keys under `startifact:`.
pub fn validate_user_metadata(metadata: &Metadata) -> Result<(), Error> {
    match metadata.keys().find(|k| k.starts_with(RESERVED_PREFIX)) {
        Some(key) => Err(Error::ReservedMetadataKey { key: key.clone() }),
        None => Ok(()),
    }
}

/// The bytes of the metadata object, or `None` when there is nothing to write.
pub fn encode(metadata: &Metadata) -> Option<Vec<u8>> {
    (!metadata.is_empty()).then(|| python_dumps(metadata).into_bytes())
}

/// The largest metadata object read. The Python tool writes a few hundred bytes; a
/// bigger object is not metadata anyone meant (and each pinned version keeps its
/// metadata in memory for the life of a mount).
pub const MAX_METADATA_BYTES: usize = 1 << 20;

/// Reads a metadata object: a JSON object whose values are strings, of at most
/// `MAX_METADATA_BYTES`.
pub fn decode(what: &str, bytes: &[u8]) -> Result<Metadata, Error> {
    let bad = |reason: String| Error::BadMetadata {
        what: what.to_string(),
        reason,
    };
    if bytes.len() > MAX_METADATA_BYTES {
        return Err(bad(format!(
            "over the {MAX_METADATA_BYTES} bytes a metadata object may have"
        )));
    }
    serde_json::from_slice::<Metadata>(bytes).map_err(|e| bad(e.to_string()))
}

/// Reads a metadata object, but never more of it than `decode` accepts (and one byte
/// to tell it is too large): a hostile object of gigabytes costs one chunk of memory.
pub(crate) async fn read_bounded(
    store: &dyn RegionStore,
    bucket: &str,
    key: &str,
) -> Result<Vec<u8>, StorageError> {
    let mut object = store.get_object(bucket, key, None, None).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = object.body.next().await {
        let chunk = chunk?;
        let room = MAX_METADATA_BYTES + 1 - bytes.len();
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() > MAX_METADATA_BYTES {
            // Dropping the stream ends the transfer.
            break;
        }
    }
    Ok(bytes)
}

/// A usable saved file name: a base name with no path, not `.`/`..`, no NUL.
pub fn usable_filename(metadata: &Metadata) -> Option<&str> {
    let name = metadata.get(FILENAME_KEY)?.as_str();
    let usable = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
        && name.len() <= 255;
    usable.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_keys_are_refused() {
        let mut m = Metadata::new();
        m.insert("lang".into(), "dotnet".into());
        assert!(validate_user_metadata(&m).is_ok());
        m.insert("startifact:filename".into(), "x".into());
        assert!(validate_user_metadata(&m).is_err());
    }

    #[test]
    fn empty_metadata_writes_no_object() {
        assert_eq!(encode(&Metadata::new()), None);
    }

    #[test]
    fn round_trips_through_json() {
        let mut m = Metadata::new();
        m.insert("ключ".into(), "значение 😀".into());
        let bytes = encode(&m).unwrap();
        assert_eq!(decode("test", &bytes).unwrap(), m);
        assert!(decode("test", br#"{"a": 1}"#).is_err());
    }

    #[test]
    fn a_metadata_object_over_the_limit_is_refused_before_it_is_parsed() {
        let value = "x".repeat(MAX_METADATA_BYTES);
        let bytes = encode(&[("k".to_string(), value)].into_iter().collect()).unwrap();
        let error = decode("big", &bytes).unwrap_err().to_string();
        assert!(error.contains("over the 1048576"), "{error}");
        let fits = "x".repeat(MAX_METADATA_BYTES - 100);
        let bytes = encode(&[("k".to_string(), fits)].into_iter().collect()).unwrap();
        assert!(decode("fits", &bytes).is_ok());
    }

    #[test]
    fn metadata_that_is_not_an_object_of_strings_is_refused() {
        for bad in [
            &b"not json"[..],
            b"[]",
            b"\"text\"",
            br#"{"a": null}"#,
            br#"{"a": {"b": "c"}}"#,
            br#"{"a": ["b"]}"#,
            b"{\"a\": \"b\"",
            b"",
        ] {
            assert!(
                decode("bad", bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn only_plain_file_names_are_usable() {
        let with = |name: &str| {
            let mut m = Metadata::new();
            m.insert(FILENAME_KEY.into(), name.into());
            m
        };
        assert_eq!(usable_filename(&with("dist.tar.gz")), Some("dist.tar.gz"));
        for bad in ["", ".", "..", "a/b", "/etc/passwd"] {
            assert_eq!(usable_filename(&with(bad)), None, "{bad:?}");
        }
    }
}
