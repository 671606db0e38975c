//! Extended attributes: metadata key `K` is `user.K` on a version's folder and on its
//! file, beside the read-only attributes that say where the file is served from
//! (`user.startifact:bucket`, `key`, `region`, `etag`). `system.*`, `security.*` and
//! `trusted.*` are answered here, with no request: `ls -l` asks for ACLs on every entry.
//!
//! Metadata is written by other tools, which check little: the Python tool stores any
//! key (`--metadata startifact:region=...`), and a bucket may hold any JSON. What
//! `listxattr` lists is therefore chosen so that every listed name reads back and can
//! be set on a local filesystem (`rsync -aX`, `cp -a` out of the mount):
//!
//! - the mount's own attributes are always the daemon's: a metadata key with one of
//!   their names is not shown under it (it would impersonate where the file is from);
//! - a key that cannot be an attribute name (empty, holding a NUL, or making a name
//!   over 255 bytes with its `user.` prefix) is not shown at all;
//! - a value over 64 KiB, which no caller can read, is not listed; `getxattr` of its
//!   name answers E2BIG, so that a caller who asks learns why;
//! - names that would make the list longer than the 64 KiB `listxattr` may return are
//!   left out of the list (the mount's own come first).
//!
//! Every key stays readable through `startifact P V --info --json`.

use std::fmt;

use super::error::{FsError, FsErrorKind, FsResult};
use super::pinned::PinnedVersion;
use crate::protocol::Metadata;

/// Linux refuses attribute values over 64 KiB (`XATTR_SIZE_MAX`).
pub const XATTR_SIZE_MAX: usize = 64 * 1024;
/// Linux refuses attribute names over 255 bytes, prefix included (`XATTR_NAME_MAX`).
pub const XATTR_NAME_MAX: usize = 255;
/// The longest name list `listxattr` may return (`XATTR_LIST_MAX`).
pub const XATTR_LIST_MAX: usize = 64 * 1024;

/// The metadata keys whose names the mount's own attributes take.
pub const OWN_KEYS: [&str; 4] = [
    "startifact:bucket",
    "startifact:key",
    "startifact:region",
    "startifact:etag",
];

/// The answer to a get or list: the size when probed with a zero-size buffer, else the
/// bytes (or ERANGE when they do not fit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XattrReply {
    Size(u32),
    Data(Vec<u8>),
}

/// One attribute as the mount shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub value: Vec<u8>,
    /// Whether `listxattr` names it (see the module's rules).
    pub listed: bool,
}

/// Why a metadata key is not listed under its own name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlisted {
    /// It has the name of one of the mount's own attributes.
    OwnName,
    /// Empty, or holding a NUL: no attribute can have that name.
    NotAName,
    /// `user.` and the key make more than 255 bytes.
    NameTooLong,
    /// Its value is over 64 KiB: not listed, and `getxattr` answers E2BIG.
    ValueTooLong,
    /// The 64 KiB list was full before its turn.
    ListFull,
}

impl fmt::Display for Unlisted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unlisted::OwnName => "it has the name of an attribute the mount shows itself",
            Unlisted::NotAName => "no attribute name can be empty or hold a NUL byte",
            Unlisted::NameTooLong => "user. and the key make a name over 255 bytes",
            Unlisted::ValueTooLong => "its value is over 64 KiB (getxattr answers E2BIG)",
            Unlisted::ListFull => "the 64 KiB attribute list is full",
        })
    }
}

/// What a node shows: its attributes, and the metadata keys not listed, with why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shown {
    pub attributes: Vec<Attribute>,
    pub unlisted: Vec<(String, Unlisted)>,
}

impl Shown {
    /// The value of the attribute `name`, listed or not.
    pub fn value(&self, name: &str) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_slice())
    }

    /// The names `listxattr` returns, in order.
    pub fn listed_names(&self) -> impl Iterator<Item = &str> {
        self.attributes
            .iter()
            .filter(|a| a.listed)
            .map(|a| a.name.as_str())
    }
}

/// The attributes of `metadata` after the mount's `own` (full names and values), by the
/// rules of this module.
pub fn shown(own: Vec<(String, Vec<u8>)>, metadata: &Metadata) -> Shown {
    let mut shown = Shown::default();
    let mut list_len = 0;
    for (name, value) in own {
        list_len += name.len() + 1;
        shown.attributes.push(Attribute {
            name,
            value,
            listed: true,
        });
    }
    for (key, value) in metadata {
        let name = format!("user.{key}");
        let refused = if OWN_KEYS.contains(&key.as_str()) {
            Some(Unlisted::OwnName)
        } else if key.is_empty() || key.contains('\0') {
            Some(Unlisted::NotAName)
        } else if name.len() > XATTR_NAME_MAX {
            Some(Unlisted::NameTooLong)
        } else {
            None
        };
        if let Some(reason) = refused {
            shown.unlisted.push((key.clone(), reason));
            continue;
        }
        let unlisted = if value.len() > XATTR_SIZE_MAX {
            Some(Unlisted::ValueTooLong)
        } else if list_len + name.len() + 1 > XATTR_LIST_MAX {
            Some(Unlisted::ListFull)
        } else {
            None
        };
        match unlisted {
            Some(reason) => shown.unlisted.push((key.clone(), reason)),
            None => list_len += name.len() + 1,
        }
        shown.attributes.push(Attribute {
            name,
            value: value.clone().into_bytes(),
            listed: unlisted.is_none(),
        });
    }
    shown
}

/// The value `getxattr` of `name` reads by the rules of `shown`, without building every
/// attribute (a version may hold 16 MiB of metadata, and `getfattr -d` asks each name).
pub fn value_of(own: &[(String, Vec<u8>)], metadata: &Metadata, name: &str) -> Option<Vec<u8>> {
    if let Some((_, value)) = own.iter().find(|(own_name, _)| own_name == name) {
        return Some(value.clone());
    }
    let key = name.strip_prefix("user.")?;
    let refused = OWN_KEYS.contains(&key)
        || key.is_empty()
        || key.contains('\0')
        || name.len() > XATTR_NAME_MAX;
    if refused {
        return None;
    }
    metadata.get(key).map(|value| value.clone().into_bytes())
}

/// The mount's own attributes of a staged version: where it is served from.
pub fn own(pinned: &PinnedVersion) -> Vec<(String, Vec<u8>)> {
    let own = [
        pinned.copies.bucket.as_str(),
        pinned.copies.key.as_str(),
        pinned.copies.region.as_str(),
        pinned.copies.etag.as_deref().unwrap_or(""),
    ];
    OWN_KEYS
        .iter()
        .zip(own)
        .map(|(key, value)| (format!("user.{key}"), value.as_bytes().to_vec()))
        .collect()
}

/// The attributes of a staged version: where it is served from, then its metadata.
pub fn attributes(pinned: &PinnedVersion) -> Shown {
    shown(own(pinned), &pinned.metadata)
}

/// Says once, when a version is pinned, which of its metadata keys are not listed.
pub fn log_unlisted(pinned: &PinnedVersion) {
    for (key, reason) in attributes(pinned).unlisted {
        tracing::warn!(
            project = %pinned.project,
            version = %pinned.version,
            "metadata key {key:?} is not listed as an attribute: {reason}; \
             `startifact --info --json` shows it"
        );
    }
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

/// True for the namespaces answered locally as "no such attribute".
pub fn is_foreign_namespace(name: &str) -> bool {
    !name.starts_with("user.")
}

/// NUL-terminated names, as `listxattr` returns them.
pub fn name_list<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
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

    fn metadata(pairs: &[(&str, &str)]) -> Metadata {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn own() -> Vec<(String, Vec<u8>)> {
        vec![("user.startifact:region".into(), b"eu-west-2".to_vec())]
    }

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
        assert_eq!(name_list(["user.a", "user.b"]), b"user.a\0user.b\0");
    }

    #[test]
    fn a_metadata_key_named_as_the_mounts_own_is_not_shown_under_that_name() {
        let shown = shown(own(), &metadata(&[("startifact:region", "forged")]));
        assert_eq!(
            shown.value("user.startifact:region"),
            Some(&b"eu-west-2"[..])
        );
        assert_eq!(
            shown.listed_names().collect::<Vec<_>>(),
            ["user.startifact:region"]
        );
        assert_eq!(
            shown.unlisted,
            [("startifact:region".to_string(), Unlisted::OwnName)]
        );
    }

    #[test]
    fn keys_that_cannot_be_names_are_neither_listed_nor_found() {
        let at_limit = "k".repeat(XATTR_NAME_MAX - "user.".len());
        let over = format!("{at_limit}k");
        let shown = shown(
            Vec::new(),
            &metadata(&[("", "e"), ("a\0b", "n"), (&at_limit, "fits"), (&over, "no")]),
        );
        let name_at_limit = format!("user.{at_limit}");
        assert_eq!(shown.listed_names().collect::<Vec<_>>(), [&name_at_limit]);
        for name in ["user.", "user.a\0b", "user.a", &format!("user.{over}")] {
            assert_eq!(shown.value(name), None, "{name:?}");
        }
        let reasons: Vec<Unlisted> = shown.unlisted.iter().map(|(_, r)| *r).collect();
        assert_eq!(
            reasons,
            [
                Unlisted::NotAName,
                Unlisted::NotAName,
                Unlisted::NameTooLong
            ]
        );
    }

    #[test]
    fn a_value_over_64_kib_is_found_but_not_listed() {
        let huge = "x".repeat(XATTR_SIZE_MAX + 1);
        let fits = "x".repeat(XATTR_SIZE_MAX);
        let shown = shown(Vec::new(), &metadata(&[("huge", &huge), ("fits", &fits)]));
        assert_eq!(shown.listed_names().collect::<Vec<_>>(), ["user.fits"]);
        assert_eq!(shown.value("user.huge").map(<[u8]>::len), Some(huge.len()));
    }

    #[test]
    fn a_value_looked_up_by_name_is_the_one_shown() {
        let long = "k".repeat(251);
        let huge = "x".repeat(XATTR_SIZE_MAX + 1);
        let metadata = metadata(&[
            ("startifact:region", "forged"),
            ("", "e"),
            ("a\0b", "n"),
            (&long, "long"),
            ("huge", &huge),
            ("lang", "rust"),
        ]);
        let all = shown(own(), &metadata);
        for name in [
            "user.startifact:region",
            "user.",
            "user.a\0b",
            &format!("user.{long}"),
            "user.huge",
            "user.lang",
            "user.missing",
            "lang",
        ] {
            assert_eq!(
                value_of(&own(), &metadata, name).as_deref(),
                all.value(name),
                "{name:?}"
            );
        }
    }

    #[test]
    fn the_list_stops_before_64_kib() {
        let keys: Vec<String> = (0..400)
            .map(|i| format!("{i:03}{}", "k".repeat(240)))
            .collect();
        let pairs: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
        let shown = shown(own(), &metadata(&pairs));
        let list = name_list(shown.listed_names());
        assert!(list.len() <= XATTR_LIST_MAX, "{} bytes", list.len());
        assert!(list.len() > XATTR_LIST_MAX - 256, "{} bytes", list.len());
        assert!(list.starts_with(b"user.startifact:region\0"));
        assert!(shown.unlisted.iter().all(|(_, r)| *r == Unlisted::ListFull));
        assert_eq!(
            shown.unlisted.len() + shown.listed_names().count(),
            keys.len() + 1
        );
    }
}
