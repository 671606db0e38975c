//! Artifact metadata: a map of string keys to string values, stored beside the
//! artifact as JSON in the Python tool's exact bytes. Keys under `startifact:` are
//! reserved; `startifact:filename` holds the original file name when asked to.

use std::collections::BTreeMap;

use super::error::Error;
use super::json::{python_dumps, python_dumps_len};
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

/// The largest metadata object read, and written: one limit, so that whatever we
/// stage reads back. The Python tool writes whatever it is given (a 1 MiB value, 20,000
/// keys: a few MiB), and puts no limit on reading; 16 MiB takes all of that with room
/// to spare, while a hostile object of gigabytes costs a reader 16 MiB at most (and a
/// pinned version keeps its metadata in memory for the life of a mount).
pub const MAX_METADATA_BYTES: usize = 16 << 20;

/// How many bytes `metadata` takes as the object `encode` writes (2 when empty).
pub fn encoded_len(metadata: &Metadata) -> usize {
    python_dumps_len(metadata)
}

/// Refuses metadata whose object would be larger than readers accept.
pub fn check_size(what: &str, metadata: &Metadata) -> Result<(), Error> {
    let size = encoded_len(metadata);
    if size > MAX_METADATA_BYTES {
        return Err(Error::OversizedMetadata {
            what: what.to_string(),
            size: Some(size),
            limit: MAX_METADATA_BYTES,
        });
    }
    Ok(())
}

/// Reads a metadata object: a JSON object whose values are strings, of at most
/// `MAX_METADATA_BYTES`.
pub fn decode(what: &str, bytes: &[u8]) -> Result<Metadata, Error> {
    if bytes.len() > MAX_METADATA_BYTES {
        // `read_bounded` stops one byte past the limit: the true size is unknown.
        return Err(Error::OversizedMetadata {
            what: what.to_string(),
            size: None,
            limit: MAX_METADATA_BYTES,
        });
    }
    serde_json::from_slice::<Metadata>(bytes).map_err(|e| Error::BadMetadata {
        what: what.to_string(),
        reason: e.to_string(),
    })
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
        let error = decode("big", &bytes).unwrap_err();
        assert!(
            matches!(error, Error::OversizedMetadata { size: None, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("16 MiB"), "{error}");
        let fits = "x".repeat(MAX_METADATA_BYTES - 100);
        let bytes = encode(&[("k".to_string(), fits)].into_iter().collect()).unwrap();
        assert!(decode("fits", &bytes).is_ok());
    }

    #[test]
    fn the_writer_refuses_what_readers_would_refuse_and_takes_what_they_take() {
        let at_limit = "x".repeat(MAX_METADATA_BYTES - "{\n  \"k\": \"\"\n}".len());
        let fits: Metadata = [("k".to_string(), at_limit)].into_iter().collect();
        assert_eq!(encode(&fits).unwrap().len(), MAX_METADATA_BYTES);
        assert!(check_size("fits", &fits).is_ok());
        assert!(decode("fits", &encode(&fits).unwrap()).is_ok());
        let mut over = fits;
        over.insert("l".into(), String::new());
        let error = check_size("over", &over).unwrap_err();
        assert!(
            matches!(error, Error::OversizedMetadata { size: Some(s), .. } if s == MAX_METADATA_BYTES + 11),
            "{error}"
        );
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
