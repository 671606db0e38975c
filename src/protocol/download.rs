//! Downloads of an artifact: read through `Copies::read` (the regions of its majority
//! first, each asked for its own copy's ETag, the next one taking over where one fails),
//! verified as they are written (the MD5 when it can be known, else the size).

use std::path::{Path, PathBuf};

use crate::checksum::Running;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::artifact::{Artifact, Download, Verification};
use super::copies::Copies;
use super::error::Error;

impl Artifact {
    /// Downloads into `folder` under `file_name(use_saved_name)`.
    pub async fn download_to_folder(
        &self,
        folder: &Path,
        use_saved_name: bool,
    ) -> Result<Download, Error> {
        let name = self.file_name(use_saved_name).await?;
        self.download_to_path(&folder.join(name)).await
    }

    /// Downloads to `path`, through a temporary file beside it that is renamed into
    /// place only once verified. When the bytes fail their check, the regions that
    /// served them are suspect and the download starts again from the others, until
    /// only suspects are left to ask.
    pub async fn download_to_path(&self, path: &Path) -> Result<Download, Error> {
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let temporary = folder.join(temporary_name(path, rand::random::<u32>()));
        let copies = self.copies().await?;
        loop {
            let mut file = tokio::fs::File::create(&temporary)
                .await
                .map_err(|e| Error::io(format!("creating {}", temporary.display()), e))?;
            let result = match self.copy_verified(&copies, &mut file).await {
                Ok(done) => file
                    .sync_all()
                    .await
                    .map(|_| done)
                    .map_err(|e| Error::io(format!("writing {}", temporary.display()), e)),
                Err(e) => Err(e),
            };
            drop(file);
            match result {
                Ok(mut done) => {
                    tokio::fs::rename(&temporary, path)
                        .await
                        .map_err(|e| Error::io(format!("renaming into {}", path.display()), e))?;
                    done.path = Some(path.to_path_buf());
                    return Ok(done);
                }
                Err(e @ Error::Integrity { .. }) if self.trusted_left(&copies) => {
                    tracing::warn!("{e}: downloading again from the other regions");
                }
                Err(e) => {
                    let _ = tokio::fs::remove_file(&temporary).await;
                    return Err(e);
                }
            }
        }
    }

    /// Streams the artifact into `writer` (standard output, say). Bytes written cannot
    /// be taken back: when they fail their check, the download fails.
    pub async fn download_to_writer<W: AsyncWrite + Unpin>(
        &self,
        writer: &mut W,
    ) -> Result<Download, Error> {
        let copies = self.copies().await?;
        self.copy_verified(&copies, writer).await
    }

    /// The majority's content, and where it may be read.
    async fn copies(&self) -> Result<Copies, Error> {
        Ok(Copies::of(self.majority().await?))
    }

    /// Whether a region that did not serve damaged bytes is left to ask.
    fn trusted_left(&self, copies: &Copies) -> bool {
        copies
            .regions_in_order(self.session())
            .iter()
            .any(|store| !copies.suspects.contains(store.region()))
    }

    /// Copies the whole content into `writer` and verifies it; on a wrong MD5 the
    /// regions that served it become suspects.
    async fn copy_verified<W: AsyncWrite + Unpin>(
        &self,
        copies: &Copies,
        writer: &mut W,
    ) -> Result<Download, Error> {
        let progress = self.progress();
        if let Some(progress) = progress {
            // From the first byte again, if an earlier attempt failed.
            progress.begin(copies.size, std::slice::from_ref(&copies.region));
        }
        let mut read = copies.read(self.session(), None);
        let mut running = copies.check.map(|check| Running::new(check.algorithm()));
        while let Some(piece) = read.next().await {
            let piece = piece.map_err(|unserved| Error::NoRegionsAvailable {
                regions: copies.holders.iter().map(|h| h.region.clone()).collect(),
                reasons: unserved.reasons,
                denied: false,
            })?;
            if let Some(running) = &mut running {
                running.update(&piece.bytes);
            }
            writer
                .write_all(&piece.bytes)
                .await
                .map_err(|e| Error::io("writing the download", e))?;
            if let Some(progress) = progress {
                progress.moved(&piece.region, piece.bytes.len() as u64);
            }
        }
        writer
            .flush()
            .await
            .map_err(|e| Error::io("writing the download", e))?;
        let regions = read.served().to_vec();
        let verification = match (copies.check, running.map(Running::finish)) {
            (Some(expected), Some(actual)) if expected != actual => {
                copies.suspects.add(&regions);
                return Err(Error::Integrity {
                    what: format!("{} of {}", expected.algorithm().name(), copies.key),
                    region: regions.join(", "),
                    expected: expected.hex(),
                    actual: actual.hex(),
                });
            }
            (Some(expected), Some(_)) => Verification::Checked(expected),
            _ => Verification::SizeOnly(copies.size),
        };
        Ok(Download {
            key: copies.key.clone(),
            region: regions
                .first()
                .cloned()
                .unwrap_or_else(|| copies.region.clone()),
            regions,
            path: None,
            bytes: copies.size,
            verification,
        })
    }
}

/// The name of the file a download to `path` writes before it is renamed into place:
/// hidden, beside it, and never longer than the 255 bytes a name may have, however long
/// the final name is (a saved name may use all 255).
fn temporary_name(path: &Path, nonce: u32) -> String {
    const NAME_MAX: usize = 255;
    let suffix = format!(".startifact-{nonce:08x}");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "artifact".into());
    let mut keep = name.len().min(NAME_MAX - 1 - suffix.len());
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    format!(".{}{suffix}", &name[..keep])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_name_fits_in_255_bytes_whatever_the_final_name() {
        for len in [1, 200, 233, 234, 235, 254, 255] {
            let final_name = "a".repeat(len);
            let name = temporary_name(&Path::new("/out").join(&final_name), 0xdead_beef);
            assert!(name.len() <= 255, "{len}: {} bytes", name.len());
            assert!(name.starts_with('.') && name.ends_with(".startifact-deadbeef"));
        }
        assert_eq!(
            temporary_name(Path::new("dist.tar.gz"), 1),
            ".dist.tar.gz.startifact-00000001"
        );
    }

    #[test]
    fn a_temporary_name_cuts_a_long_name_between_characters() {
        let final_name = "é".repeat(127); // 254 bytes
        let name = temporary_name(Path::new(&final_name), 2);
        assert!(name.len() <= 255);
        assert!(name.ends_with(".startifact-00000002"));
    }
}
