//! How S3 keys and SSM parameter names map to paths in the local store.
//!
//! Keys are hierarchical by `/`, and Startifact needs both `P@v` (the artifact) and
//! `P@v/metadata` (its metadata): a plain mapping would need `P@v` to be a file and a
//! folder at once. So every key segment but the last becomes a folder named
//! `{segment}%2F` (read: "the segment, then a slash"), and the last a file named
//! `{segment}`. `%` in a segment is written `%25`, and segments that the filesystem
//! reserves (`""`, `.`, `..`) are written `%00`, `%2E`, `%2E%2E`, so the mapping is one
//! to one and `SugarWater@1.0.0` stays readable on disk. Next to each object file a
//! sidecar `{file}%meta` holds its ETag and user metadata (no encoded name ends so,
//! since `%m` is no escape).

use std::path::{Path, PathBuf};

/// Suffix of the sidecar file that holds an object's ETag and user metadata.
pub const SIDECAR_SUFFIX: &str = "%meta";
const FOLDER_SUFFIX: &str = "%2F";

fn encode_segment(segment: &str) -> String {
    match segment {
        "" => "%00".to_string(),
        "." => "%2E".to_string(),
        ".." => "%2E%2E".to_string(),
        other => other.replace('%', "%25"),
    }
}

fn decode_segment(encoded: &str) -> String {
    match encoded {
        "%00" => String::new(),
        "%2E" => ".".to_string(),
        "%2E%2E" => "..".to_string(),
        other => other.replace("%25", "%"),
    }
}

/// The file that holds `name` (a key or a parameter name) under `root`.
pub fn path_of(root: &Path, name: &str) -> PathBuf {
    let mut path = root.to_path_buf();
    let mut segments = name.split('/').peekable();
    while let Some(segment) = segments.next() {
        if segments.peek().is_some() {
            path.push(format!("{}{FOLDER_SUFFIX}", encode_segment(segment)));
        } else {
            path.push(encode_segment(segment));
        }
    }
    path
}

/// The name stored at `path` under `root`, or `None` for paths that are no object file
/// (sidecars, temporary files).
pub fn name_of(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let mut parts: Vec<String> = Vec::new();
    let components: Vec<_> = relative.components().collect();
    for (index, component) in components.iter().enumerate() {
        let text = component.as_os_str().to_str()?;
        let last = index + 1 == components.len();
        if last {
            if text.ends_with(SIDECAR_SUFFIX) || text.starts_with(".tmp-") {
                return None;
            }
            parts.push(decode_segment(text));
        } else {
            parts.push(decode_segment(text.strip_suffix(FOLDER_SUFFIX)?));
        }
    }
    Some(parts.join("/"))
}

/// The sidecar of an object file.
pub fn sidecar_of(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(SIDECAR_SUFFIX);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_and_its_metadata_do_not_collide() {
        let root = Path::new("/r");
        let artifact = path_of(root, "SugarWater@1.0.0");
        let metadata = path_of(root, "SugarWater@1.0.0/metadata");
        assert_eq!(artifact, Path::new("/r/SugarWater@1.0.0"));
        assert_eq!(metadata, Path::new("/r/SugarWater@1.0.0%2F/metadata"));
    }

    #[test]
    fn names_round_trip() {
        let root = Path::new("/r");
        for name in [
            "a",
            "/startifact",
            "/artifacts/SugarWater/latest",
            "pre/fix/P@1.0.0+b.5/metadata",
            "odd%2F/..//./%",
            "/",
        ] {
            let path = path_of(root, name);
            assert_eq!(name_of(root, &path).as_deref(), Some(name), "{path:?}");
        }
    }

    #[test]
    fn sidecars_are_not_names() {
        let root = Path::new("/r");
        let sidecar = sidecar_of(&path_of(root, "P@1.0.0"));
        assert_eq!(name_of(root, &sidecar), None);
    }
}
