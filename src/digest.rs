//! MD5, the digest of the Startifact format (Content-MD5, ETags, the recorded
//! `startifact-md5`), computed with AWS-LC's assembly implementation.
//!
//! Staging hashes every byte two or three times (the whole file, each part, and each
//! part again when it is read to be sent), so MD5 is most of the CPU a stage costs.
//! AWS-LC is already linked for TLS (rustls' provider); its MD5 ran at 600 MB/s on the
//! 2-core machine this was written on, against 440 MB/s for the portable Rust `md-5`
//! crate and 480 MB/s for that crate's `asm` feature.
//!
//! `Crc64` is the cheap fingerprint beside it: bytes hashed once with MD5 and read again
//! to be sent (a streamed body, a part read from the file) are checked against the CRC
//! taken in the same pass rather than hashed with MD5 again.
//!
//! `PartHashes` hashes the pieces of a multipart upload as the bytes go by: each part's
//! MD5 (its Content-MD5, and with them the upload's ETag) and CRC.
//!
//! `Beside` runs a hash on a thread of its own, fed in order through a bounded channel,
//! so that it keeps pace beside the code that reads or writes the bytes.

use aws_lc_sys::{
    EVP_DigestFinal_ex, EVP_DigestInit_ex, EVP_DigestUpdate, EVP_MD_CTX_copy_ex, EVP_MD_CTX_free,
    EVP_MD_CTX_new, EVP_md5, EVP_MD_CTX,
};

/// A running MD5: an AWS-LC digest context, owned.
pub struct Md5 {
    context: std::ptr::NonNull<EVP_MD_CTX>,
}

// SAFETY: the context is owned by this value alone and AWS-LC keeps no reference to it;
// `&self` methods only read it (EVP_MD_CTX_copy_ex).
unsafe impl Send for Md5 {}
unsafe impl Sync for Md5 {}

impl Md5 {
    pub fn new() -> Self {
        // SAFETY: a new context, set up for MD5 before it is used; allocation failure
        // aborts, as for any allocation.
        unsafe {
            let context = std::ptr::NonNull::new(EVP_MD_CTX_new()).unwrap_or_else(|| {
                std::alloc::handle_alloc_error(std::alloc::Layout::new::<EVP_MD_CTX>())
            });
            let md5 = Md5 { context };
            if EVP_DigestInit_ex(md5.context.as_ptr(), EVP_md5(), std::ptr::null_mut()) != 1 {
                panic!("AWS-LC could not set up an MD5 context");
            }
            md5
        }
    }

    pub fn update(&mut self, data: impl AsRef<[u8]>) {
        let data = data.as_ref();
        // SAFETY: the context is set up for MD5; `data` is valid for its length. MD5's
        // update cannot fail.
        unsafe {
            EVP_DigestUpdate(self.context.as_ptr(), data.as_ptr().cast(), data.len());
        }
    }

    pub fn finalize(mut self) -> [u8; 16] {
        self.finalize_reset()
    }

    /// The digest so far, and a fresh start.
    pub fn finalize_reset(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let mut written = 0;
        // SAFETY: `out` has room for MD5's 16 bytes; the context is set up for MD5, and
        // is set up again after it is finished.
        unsafe {
            EVP_DigestFinal_ex(self.context.as_ptr(), out.as_mut_ptr(), &mut written);
            EVP_DigestInit_ex(self.context.as_ptr(), EVP_md5(), std::ptr::null_mut());
        }
        debug_assert_eq!(written, 16);
        out
    }

    /// The MD5 of `data`.
    pub fn digest(data: impl AsRef<[u8]>) -> [u8; 16] {
        let mut md5 = Md5::new();
        md5.update(data);
        md5.finalize()
    }
}

impl Clone for Md5 {
    fn clone(&self) -> Self {
        let copy = Md5::new();
        // SAFETY: both contexts are valid; the copy takes the running state.
        unsafe {
            if EVP_MD_CTX_copy_ex(copy.context.as_ptr(), self.context.as_ptr()) != 1 {
                panic!("AWS-LC could not copy an MD5 context");
            }
        }
        copy
    }
}

impl Drop for Md5 {
    fn drop(&mut self) {
        // SAFETY: the context was made by EVP_MD_CTX_new and is freed once.
        unsafe { EVP_MD_CTX_free(self.context.as_ptr()) }
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Md5::new()
    }
}

impl std::fmt::Debug for Md5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Md5")
    }
}

/// A running CRC-64/NVME (carry-less multiplication in SIMD): a fingerprint, not a
/// digest of the format, to check that bytes read again are the bytes first hashed.
#[derive(Clone, Copy, Debug)]
pub struct Crc64(crc_fast::Digest);

impl Crc64 {
    pub fn new() -> Self {
        Crc64(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme))
    }

    pub fn update(&mut self, data: impl AsRef<[u8]>) {
        self.0.update(data.as_ref());
    }

    pub fn finalize(&self) -> u64 {
        self.0.finalize()
    }

    /// The CRC of `data`.
    pub fn of(data: impl AsRef<[u8]>) -> u64 {
        let mut crc = Crc64::new();
        crc.update(data);
        crc.finalize()
    }
}

impl Default for Crc64 {
    fn default() -> Self {
        Crc64::new()
    }
}

/// The MD5 and CRC of each `part_size` piece of the bytes, taken in order: the parts of
/// a multipart upload, and with them its ETag.
#[derive(Debug)]
pub struct PartHashes {
    part_size: u64,
    md5: Md5,
    crc: Crc64,
    len: u64,
    done: Vec<([u8; 16], u64)>,
}

impl PartHashes {
    pub fn new(part_size: u64) -> Self {
        PartHashes {
            part_size,
            md5: Md5::new(),
            crc: Crc64::new(),
            len: 0,
            done: Vec::new(),
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = (self.part_size - self.len) as usize;
            let (now, rest) = data.split_at(room.min(data.len()));
            self.md5.update(now);
            self.crc.update(now);
            self.len += now.len() as u64;
            if self.len == self.part_size {
                self.done
                    .push((self.md5.finalize_reset(), self.crc.finalize()));
                self.crc = Crc64::new();
                self.len = 0;
            }
            data = rest;
        }
    }

    /// Every part's MD5 and CRC so far, the last one shorter.
    pub fn finish(&self) -> Vec<([u8; 16], u64)> {
        let mut done = self.done.clone();
        if self.len > 0 {
            done.push((self.md5.clone().finalize(), self.crc.finalize()));
        }
        done
    }

    /// The ETag S3 gives the multipart upload of the bytes so far in these parts: the
    /// MD5 of the parts' MD5s, as lowercase hex, and the number of parts.
    pub fn multipart_etag(&self) -> (String, u64) {
        let parts = self.finish();
        let mut digests = Md5::new();
        for (md5, _) in &parts {
            digests.update(md5);
        }
        (hex::encode(digests.finalize()), parts.len() as u64)
    }
}

/// A hash state updated on a thread of its own with the bytes sent to it, in order. The
/// channel holds at most `depth` pieces: a sender ahead of the hash waits for it.
pub struct Beside<S> {
    sender: Option<std::sync::mpsc::SyncSender<bytes::Bytes>>,
    thread: Option<std::thread::JoinHandle<S>>,
}

impl<S: Send + 'static> Beside<S> {
    /// Starts the thread, which applies `update` to `state` with each piece sent; `None`
    /// when no thread can be started (the caller then hashes in place).
    pub fn spawn(
        name: &str,
        mut state: S,
        depth: usize,
        update: impl Fn(&mut S, &[u8]) + Send + 'static,
    ) -> Option<Self> {
        let (sender, pieces) = std::sync::mpsc::sync_channel::<bytes::Bytes>(depth);
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                for piece in pieces {
                    update(&mut state, &piece);
                }
                state
            });
        match thread {
            Ok(thread) => Some(Beside {
                sender: Some(sender),
                thread: Some(thread),
            }),
            Err(e) => {
                tracing::warn!("hashing in place: no thread for it ({e})");
                None
            }
        }
    }

    /// Hands the next bytes to the hash; false when its thread is gone (`finish` then
    /// says it failed).
    pub fn send(&self, piece: bytes::Bytes) -> bool {
        self.sender
            .as_ref()
            .is_some_and(|sender| sender.send(piece).is_ok())
    }

    /// Waits for the hash to take every piece sent, and gives its state back; `None`
    /// when the thread failed.
    pub fn finish(mut self) -> Option<S> {
        self.sender.take();
        let thread = self.thread.take()?;
        match thread.join() {
            Ok(state) => Some(state),
            Err(_) => {
                tracing::error!("a hashing thread failed");
                None
            }
        }
    }
}

impl<S> Drop for Beside<S> {
    fn drop(&mut self) {
        // Closing the channel ends the thread, which is not waited for.
        self.sender.take();
    }
}

impl<S> std::fmt::Debug for Beside<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Beside")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_hashed_in_any_pieces_are_the_parts_of_the_whole() {
        let data: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
        let mut parts = PartHashes::new(1000);
        for piece in data.chunks(333) {
            parts.update(piece);
        }
        let expected: Vec<([u8; 16], u64)> = data
            .chunks(1000)
            .map(|part| (Md5::digest(part), Crc64::of(part)))
            .collect();
        assert_eq!(parts.finish(), expected);
        let mut digests = Vec::new();
        for (md5, _) in &expected {
            digests.extend_from_slice(md5);
        }
        assert_eq!(
            parts.multipart_etag(),
            (hex::encode(Md5::digest(&digests)), 3)
        );
    }

    #[test]
    fn agrees_with_the_reference_digests() {
        // RFC 1321's test suite.
        let cases: [(&[u8], &str); 4] = [
            (b"", "d41d8cd98f00b204e9800998ecf8427e"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(hex::encode(Md5::digest(input)), expected);
        }
    }

    #[test]
    fn in_pieces_and_after_a_reset_is_the_same_digest() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut md5 = Md5::new();
        for chunk in data.chunks(7_001) {
            md5.update(chunk);
        }
        let copy = md5.clone();
        assert_eq!(md5.finalize_reset(), Md5::digest(&data));
        assert_eq!(copy.finalize(), Md5::digest(&data));
        md5.update(b"abc");
        assert_eq!(
            hex::encode(md5.finalize()),
            "900150983cd24fb0d6963f7d28e17f72"
        );
    }

    #[test]
    fn the_crc_is_crc64_nvme_in_pieces_or_whole() {
        // The catalogue's check value of CRC-64/NVME.
        assert_eq!(Crc64::of(b"123456789"), 0xae8b_1486_0a79_9888);
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut crc = Crc64::new();
        for chunk in data.chunks(7_001) {
            crc.update(chunk);
        }
        assert_eq!(crc.finalize(), Crc64::of(&data));
        let mut changed = data.clone();
        changed[123_456] ^= 1;
        assert_ne!(Crc64::of(&changed), Crc64::of(&data));
    }

    #[test]
    fn a_hash_beside_takes_every_piece_in_order() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let Some(beside) =
            Beside::spawn("test-hash", Md5::new(), 2, |md5, piece| md5.update(piece))
        else {
            panic!("no thread");
        };
        for chunk in data.chunks(65_537) {
            assert!(beside.send(bytes::Bytes::copy_from_slice(chunk)));
        }
        let Some(md5) = beside.finish() else {
            panic!("the thread failed");
        };
        assert_eq!(md5.finalize(), Md5::digest(&data));
    }
}
