//! Whether a cached copy is the version the mount pinned from the regions: its size,
//! then the checksum the store gives (`crate::checksum`: our recorded CRC-64/NVME, the
//! server's own CRC, the MD5), else its multipart ETag, recomputed for the part sizes
//! uploaders use. The cache's own record
//! is never the reference: whoever could write the bytes could write the record too.

use std::os::unix::fs::FileExt;

use crate::checksum::Running;
use crate::digest::PartHashes;

use super::error::CacheError;
use crate::fs::pinned::PinnedVersion;

/// Checks a cached file against the version the mount pinned: its size, then its
/// checksum when the store gives one, else its multipart ETag.
pub(super) fn matches_store(
    file: &std::fs::File,
    pinned: &PinnedVersion,
) -> Result<(), CacheError> {
    let size = file
        .metadata()
        .map_err(|source| CacheError::Read { source })?
        .len();
    if size != pinned.copies.size {
        return Err(CacheError::Size {
            expected: pinned.copies.size,
            got: size,
        });
    }
    if let Some(expected) = pinned.copies.check {
        let mut running = Running::new(expected.algorithm());
        read_all(file, |chunk| running.update(chunk))?;
        let got = running.finish();
        return match got == expected {
            true => Ok(()),
            false => Err(CacheError::Checksum { expected, got }),
        };
    }
    let Some((expected, parts)) = pinned.copies.etag.as_deref().and_then(multipart_etag) else {
        return Err(CacheError::NothingToCheckAgainst);
    };
    let mut candidates: Vec<PartHashes> = part_sizes(size, parts)
        .into_iter()
        .map(PartHashes::new)
        .collect();
    read_all(file, |chunk| {
        for candidate in &mut candidates {
            candidate.update(chunk);
        }
    })?;
    match candidates
        .into_iter()
        .any(|c| c.multipart_etag() == (expected.clone(), parts))
    {
        true => Ok(()),
        false => Err(CacheError::MultipartEtag { expected, parts }),
    }
}

fn read_all(file: &std::fs::File, mut take: impl FnMut(&[u8])) -> Result<(), CacheError> {
    let mut buffer = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        match file.read_at(&mut buffer, at) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                take(&buffer[..n]);
                at += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => return Err(CacheError::Read { source }),
        }
    }
}

/// `"{md5 of the parts' MD5s}-{parts}"`, the ETag S3 gives a multipart upload.
fn multipart_etag(etag: &str) -> Option<(String, u64)> {
    let (digest, parts) = etag.trim_matches('"').split_once('-')?;
    let parts: u64 = parts.parse().ok().filter(|n| *n > 0)?;
    (digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| (digest.to_ascii_lowercase(), parts))
}

/// The part sizes uploaders use that cut `size` bytes into `parts` parts: ours (see
/// `part_size_for`), S3's smallest, and the powers of two from 8 MiB that the AWS CLI
/// and boto3 use.
fn part_sizes(size: u64, parts: u64) -> Vec<u64> {
    if parts == 1 {
        return vec![size.max(1)];
    }
    let ours = crate::protocol::stage::part_size_for(
        size,
        crate::protocol::StageOptions::default().part_size,
    );
    let mut sizes = vec![ours, crate::protocol::stage::MIN_PART_SIZE];
    sizes.extend((23..=32).map(|shift| 1u64 << shift));
    sizes.retain(|p| size.div_ceil(*p) == parts);
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::Checksum;
    use crate::digest::Md5;
    use semver::Version;
    use std::time::SystemTime;

    fn pinned(bytes_len: u64, etag: &str, md5: Option<String>) -> PinnedVersion {
        let check = md5.as_deref().and_then(Checksum::from_md5_hex);
        PinnedVersion {
            project: "P".into(),
            version: Version::new(1, 0, 0),
            copies: crate::protocol::copies::Copies {
                key: "P@1.0.0".into(),
                size: bytes_len,
                etag: Some(etag.into()),
                md5,
                check,
                region: "r".into(),
                bucket: "b".into(),
                holders: vec![crate::protocol::copies::Holder {
                    region: "r".into(),
                    etag: Some(etag.into()),
                }],
                suspects: Default::default(),
            },
            mtime: SystemTime::UNIX_EPOCH,
            metadata: Default::default(),
            metadata_withheld: None,
            file_name: "P@1.0.0".into(),
        }
    }

    fn file_of(bytes: &[u8]) -> (tempfile::TempDir, std::fs::File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        std::fs::write(&path, bytes).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        (dir, file)
    }

    #[test]
    fn cached_bytes_are_checked_against_the_md5_the_store_gives() {
        let real = b"real artifact!";
        let md5 = hex::encode(Md5::digest(real));
        let (_dir, file) = file_of(real);
        let etag = format!("\"{md5}\"");
        assert!(matches_store(&file, &pinned(14, &etag, Some(md5.clone()))).is_ok());
        let (_dir, evil) = file_of(b"EVIL! artifact");
        let e = matches_store(&evil, &pinned(14, &etag, Some(md5.clone()))).unwrap_err();
        let got = hex::encode(Md5::digest(b"EVIL! artifact"));
        assert!(
            matches!(&e, CacheError::Checksum { expected, got: g } if expected.hex() == md5 && g.hex() == got),
            "{e:?}"
        );
        assert_eq!(e.to_string(), format!("MD5 {got}, not MD5 {md5}"));
        let e = matches_store(&file, &pinned(15, &etag, Some(md5.clone()))).unwrap_err();
        assert!(
            matches!(
                e,
                CacheError::Size {
                    expected: 15,
                    got: 14
                }
            ),
            "{e:?}"
        );
        // No MD5 and no multipart ETag: nothing to check against, so not served.
        let e = matches_store(&file, &pinned(14, "\"opaque\"", None)).unwrap_err();
        assert!(matches!(e, CacheError::NothingToCheckAgainst), "{e:?}");
    }

    #[test]
    fn cached_bytes_are_checked_against_a_multipart_etag() {
        let part = 8u64 << 20;
        let bytes: Vec<u8> = (0..part + 1000).map(|i| (i % 251) as u8).collect();
        let mut digests = Vec::new();
        for chunk in bytes.chunks(part as usize) {
            digests.extend_from_slice(&Md5::digest(chunk));
        }
        let etag = format!("\"{}-2\"", hex::encode(Md5::digest(&digests)));
        let (_dir, file) = file_of(&bytes);
        let size = bytes.len() as u64;
        assert!(matches_store(&file, &pinned(size, &etag, None)).is_ok());
        let mut damaged = bytes.clone();
        damaged[part as usize + 10] ^= 1;
        let (_dir, file) = file_of(&damaged);
        let e = matches_store(&file, &pinned(size, &etag, None)).unwrap_err();
        assert!(
            matches!(e, CacheError::MultipartEtag { parts: 2, .. }),
            "{e:?}"
        );
        assert_eq!(
            multipart_etag("\"ABCDEF0123456789abcdef0123456789-3\"")
                .unwrap()
                .1,
            3
        );
        assert!(multipart_etag("\"abcdef0123456789abcdef0123456789\"").is_none());
    }
}
