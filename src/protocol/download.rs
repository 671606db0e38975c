//! Downloads of an artifact: served only from the regions of its majority (see
//! `census`), failing over among them, each copy verified as it is written (the MD5
//! when it can be known, else the size).

use std::path::{Path, PathBuf};

use crate::digest::Md5;
use futures::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::storage::RegionStore;

use super::artifact::{Artifact, Download, Location, Verification};
use super::error::Error;
use super::progress::ProgressHandle;

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
    /// place only once verified; served only by the regions of the majority, and one
    /// that fails or serves bad bytes is skipped for the next.
    pub async fn download_to_path(&self, path: &Path) -> Result<Download, Error> {
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let temporary = folder.join(temporary_name(path, rand::random::<u32>()));
        let mut failures = Vec::new();
        let mut servers = self.servers().await?;
        while let Some(location) = servers.next().await {
            let Some(store) = self.store(&location.region) else {
                continue;
            };
            let mut file = tokio::fs::File::create(&temporary)
                .await
                .map_err(|e| Error::io(format!("creating {}", temporary.display()), e))?;
            let result = copy_verified(store.as_ref(), &location, &mut file, self.progress()).await;
            let result = match result {
                Ok(done) => file
                    .sync_all()
                    .await
                    .map(|_| done)
                    .map_err(|e| Error::io(format!("writing {}", temporary.display()), e)),
                Err(e) => Err(e),
            };
            drop(file);
            match result {
                Ok((bytes, verification)) => {
                    tokio::fs::rename(&temporary, path)
                        .await
                        .map_err(|e| Error::io(format!("renaming into {}", path.display()), e))?;
                    return Ok(Download {
                        location,
                        path: Some(path.to_path_buf()),
                        bytes,
                        verification,
                    });
                }
                Err(e @ Error::Io { .. }) => {
                    let _ = tokio::fs::remove_file(&temporary).await;
                    return Err(e);
                }
                Err(e) => {
                    tracing::warn!(region = %location.region, "download failed: {e}");
                    failures.push(format!("{}: {e}", location.region));
                }
            }
        }
        let _ = tokio::fs::remove_file(&temporary).await;
        Err(self.unserved(failures).await)
    }

    /// Streams the artifact into `writer` (standard output, say), from the regions of
    /// the majority only. Fails over to the next only while nothing has been written.
    pub async fn download_to_writer<W: AsyncWrite + Unpin>(
        &self,
        writer: &mut W,
    ) -> Result<Download, Error> {
        let mut failures = Vec::new();
        let mut servers = self.servers().await?;
        while let Some(location) = servers.next().await {
            let Some(store) = self.store(&location.region) else {
                continue;
            };
            let mut counting = CountingWriter {
                inner: writer,
                written: 0,
            };
            match copy_verified(store.as_ref(), &location, &mut counting, self.progress()).await {
                Ok((bytes, verification)) => {
                    return Ok(Download {
                        location,
                        path: None,
                        bytes,
                        verification,
                    })
                }
                Err(e) if counting.written > 0 => return Err(e),
                Err(e) => failures.push(format!("{}: {e}", location.region)),
            }
        }
        Err(self.unserved(failures).await)
    }

    /// Every region that holds the majority's bytes failed to serve the artifact, or served bad bytes.
    async fn unserved(&self, reasons: Vec<String>) -> Error {
        let regions = match self.majority().await {
            Ok(majority) => majority
                .group
                .locations
                .iter()
                .map(|l| l.region.clone())
                .collect(),
            Err(_) => self.session().regions(),
        };
        Error::NoRegionsAvailable { regions, reasons }
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

/// Copies the object at `location` into `writer`, pinned to its ETag, and verifies it.
async fn copy_verified<W: AsyncWrite + Unpin>(
    store: &dyn RegionStore,
    location: &Location,
    writer: &mut W,
    progress: Option<&ProgressHandle>,
) -> Result<(u64, Verification), Error> {
    if let Some(progress) = progress {
        // From the first byte again, if an earlier region failed.
        progress.begin(location.info.size, std::slice::from_ref(&location.region));
    }
    let mut stream = store
        .get_object(
            &location.bucket,
            &location.key,
            None,
            location.info.etag.as_deref(),
        )
        .await?;
    let mut hasher = Md5::new();
    let mut written = 0u64;
    while let Some(chunk) = stream.body.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        writer
            .write_all(&chunk)
            .await
            .map_err(|e| Error::io("writing the download", e))?;
        written += chunk.len() as u64;
        if let Some(progress) = progress {
            progress.moved(&location.region, chunk.len() as u64);
        }
    }
    writer
        .flush()
        .await
        .map_err(|e| Error::io("writing the download", e))?;
    let what = format!("s3://{}/{}", location.bucket, location.key);
    if written != location.info.size {
        return Err(Error::Integrity {
            what: format!("size of {what}"),
            region: location.region.clone(),
            expected: location.info.size.to_string(),
            actual: written.to_string(),
        });
    }
    let actual = hex::encode(hasher.finalize());
    match location.info.known_md5() {
        Some(expected) if expected != actual => Err(Error::Integrity {
            what: format!("MD5 of {what}"),
            region: location.region.clone(),
            expected,
            actual,
        }),
        Some(_) => Ok((written, Verification::Md5(actual))),
        None => Ok((written, Verification::SizeOnly(written))),
    }
}

struct CountingWriter<'a, W> {
    inner: &'a mut W,
    written: u64,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for CountingWriter<'_, W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut *self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &poll {
            self.written += *n as u64;
        }
        poll
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
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
