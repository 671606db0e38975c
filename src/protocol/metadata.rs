//! Artifact metadata: a map of string keys to string values, stored beside the
//! artifact as JSON in the Python tool's exact bytes. Keys under `startifact:` are
//! reserved; `startifact:filename` holds the original file name when asked to.

use std::collections::BTreeMap;

use super::error::Error;
use super::json::python_dumps;

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

/// Reads a metadata object: a JSON object whose values are strings.
pub fn decode(what: &str, bytes: &[u8]) -> Result<Metadata, Error> {
    serde_json::from_slice::<Metadata>(bytes).map_err(|e| Error::BadMetadata {
        what: what.to_string(),
        reason: e.to_string(),
    })
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
