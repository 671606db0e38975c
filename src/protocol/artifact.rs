//! A staged artifact: its version, its metadata (by the format's per-region rules), the
//! region that serves it, and downloads that fail over between regions and verify what
//! they wrote (the MD5 when it can be known, else the size).

use std::path::{Path, PathBuf};

use futures::StreamExt;
use md5::{Digest, Md5};
use semver::Version;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::OnceCell;

use crate::storage::{ObjectInfo, RegionStore};

use super::error::Error;
use super::metadata::{self, usable_filename, Metadata};
use super::names::{artifact_key, metadata_key};
use super::session::Session;

/// Where a copy of the artifact lives.
#[derive(Debug, Clone)]
pub struct Location {
    pub region: String,
    pub bucket: String,
    pub key: String,
    pub info: ObjectInfo,
}

/// How a download was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The MD5 of what was written equals the object's known MD5.
    Md5(String),
    /// The object's MD5 cannot be known (multipart without our record, KMS): the size
    /// matched.
    SizeOnly(u64),
}

/// What a download did.
#[derive(Debug, Clone)]
pub struct Download {
    pub location: Location,
    /// The file written, for downloads to a path or folder.
    pub path: Option<PathBuf>,
    pub bytes: u64,
    pub verification: Verification,
}

/// One version of one project; created by `Session::get`.
#[derive(Debug)]
pub struct Artifact {
    session: Session,
    project: String,
    version: Version,
    key: String,
    metadata: OnceCell<Metadata>,
}

impl Session {
    /// The artifact of `project` at `version`, or at the quorum latest version.
    pub async fn get(&self, project: &str, version: Option<&Version>) -> Result<Artifact, Error> {
        super::names::validate_project_name(project)?;
        let version = match version {
            Some(v) => v.clone(),
            None => super::latest::read_latest(self, project).await?.version,
        };
        let prefix = &self.ready_configuration().await?.bucket_key_prefix;
        Ok(Artifact {
            session: self.clone(),
            project: project.to_string(),
            key: artifact_key(prefix, project, &version),
            version,
            metadata: OnceCell::new(),
        })
    }
}

impl Artifact {
    pub fn project(&self) -> &str {
        &self.project
    }

    pub fn version(&self) -> &Version {
        &self.version
    }

    /// The S3 key of the artifact object (the same in every region).
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn metadata_key(&self) -> String {
        metadata_key(&self.key)
    }

    /// The metadata: the first region that has the metadata object answers. A region
    /// answering "no such key" claims there is none; so does a region that refuses the
    /// metadata object (403 without `s3:ListBucket`) but holds the artifact itself.
    /// With no answer and no claim, it is an error.
    pub async fn metadata(&self) -> Result<&Metadata, Error> {
        self.metadata
            .get_or_try_init(|| async {
                let key = self.metadata_key();
                let mut claimed_none = false;
                let mut reasons = Vec::new();
                for store in self.session.stores() {
                    let region = store.region();
                    let bucket = match self.session.bucket(store.as_ref()).await {
                        Ok(bucket) => bucket,
                        Err(e) => {
                            reasons.push(format!("{region}: {e}"));
                            continue;
                        }
                    };
                    match read_object(store.as_ref(), &bucket, &key).await {
                        Ok(bytes) => {
                            return metadata::decode(
                                &format!("s3://{bucket}/{key} in {region}"),
                                &bytes,
                            )
                        }
                        Err(e) if e.is_not_found() => claimed_none = true,
                        Err(e) if e.is_access_denied() => {
                            if store.head_object(&bucket, &self.key).await.is_ok() {
                                claimed_none = true;
                            } else {
                                reasons.push(format!("{region}: {e}"));
                            }
                        }
                        Err(e) => {
                            tracing::warn!(region, "failed to get metadata: {e}");
                            reasons.push(format!("{region}: {e}"));
                        }
                    }
                    if claimed_none {
                        tracing::debug!(region, "claims no metadata");
                    }
                }
                if claimed_none {
                    Ok(Metadata::new())
                } else {
                    Err(Error::NoRegionsAvailable {
                        regions: self.session.regions(),
                        reasons,
                    })
                }
            })
            .await
    }

    /// The first region, in session order, whose bucket has the artifact.
    pub async fn locate(&self) -> Result<Location, Error> {
        let mut failures = Vec::new();
        for store in self.session.stores() {
            match self.locate_in(store.as_ref()).await {
                Ok(location) => return Ok(location),
                Err(failure) => failures.push(failure),
            }
        }
        Err(self.not_found(failures))
    }

    /// The artifact's head in one region; on failure, whether the region said it is
    /// absent (rather than failing), and why.
    async fn locate_in(&self, store: &dyn RegionStore) -> Result<Location, (bool, String)> {
        let region = store.region();
        let bucket = self
            .session
            .bucket(store)
            .await
            .map_err(|e| (false, format!("{region}: {e}")))?;
        let info = store.head_object(&bucket, &self.key).await.map_err(|e| {
            (
                e.is_not_found() || e.is_access_denied(),
                format!("{region}: {e}"),
            )
        })?;
        Ok(Location {
            region: region.to_string(),
            bucket,
            key: self.key.clone(),
            info,
        })
    }

    fn not_found(&self, failures: Vec<(bool, String)>) -> Error {
        Error::ArtifactNotFound {
            project: self.project.clone(),
            version: self.version.to_string(),
            absent: !failures.is_empty() && failures.iter().all(|(absent, _)| *absent),
            reasons: failures.into_iter().map(|(_, reason)| reason).collect(),
        }
    }

    /// The file name a download into a folder uses: the saved file name when it is a
    /// usable one, else `{project}@{version}`.
    pub async fn file_name(&self, use_saved_name: bool) -> Result<String, Error> {
        if use_saved_name {
            if let Some(name) = usable_filename(self.metadata().await?) {
                return Ok(name.to_string());
            }
        }
        Ok(format!("{}@{}", self.project, self.version))
    }

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
    /// place only once verified; a region that fails or serves bad bytes is skipped.
    pub async fn download_to_path(&self, path: &Path) -> Result<Download, Error> {
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let temporary = folder.join(temporary_name(path, rand::random::<u32>()));
        let mut failures = Vec::new();
        for store in self.session.stores() {
            let location = match self.locate_in(store.as_ref()).await {
                Ok(location) => location,
                Err(failure) => {
                    failures.push(failure);
                    continue;
                }
            };
            let mut file = tokio::fs::File::create(&temporary)
                .await
                .map_err(|e| Error::io(format!("creating {}", temporary.display()), e))?;
            let result = copy_verified(store.as_ref(), &location, &mut file).await;
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
                    failures.push((false, format!("{}: {e}", location.region)));
                }
            }
        }
        let _ = tokio::fs::remove_file(&temporary).await;
        Err(self.not_found(failures))
    }

    /// Streams the artifact into `writer` (standard output, say). Fails over to the
    /// next region only while nothing has been written.
    pub async fn download_to_writer<W: AsyncWrite + Unpin>(
        &self,
        writer: &mut W,
    ) -> Result<Download, Error> {
        let mut failures = Vec::new();
        for store in self.session.stores() {
            let location = match self.locate_in(store.as_ref()).await {
                Ok(location) => location,
                Err(failure) => {
                    failures.push(failure);
                    continue;
                }
            };
            let mut counting = CountingWriter {
                inner: writer,
                written: 0,
            };
            match copy_verified(store.as_ref(), &location, &mut counting).await {
                Ok((bytes, verification)) => {
                    return Ok(Download {
                        location,
                        path: None,
                        bytes,
                        verification,
                    })
                }
                Err(e) if counting.written > 0 => return Err(e),
                Err(e) => failures.push((false, format!("{}: {e}", location.region))),
            }
        }
        Err(self.not_found(failures))
    }
}

/// Reads a small object whole.
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

async fn read_object(
    store: &dyn RegionStore,
    bucket: &str,
    key: &str,
) -> Result<Vec<u8>, crate::storage::StorageError> {
    let mut stream = store.get_object(bucket, key, None, None).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.body.next().await {
        bytes.extend_from_slice(&chunk?);
    }
    Ok(bytes)
}

/// Copies the object at `location` into `writer`, pinned to its ETag, and verifies it.
async fn copy_verified<W: AsyncWrite + Unpin>(
    store: &dyn RegionStore,
    location: &Location,
    writer: &mut W,
) -> Result<(u64, Verification), Error> {
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
