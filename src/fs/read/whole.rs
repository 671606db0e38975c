//! The checksum of the bytes a handle hands out from the first byte in order, so its
//! last read can check them (see `crate::checksum` for which one a version carries). A
//! CRC runs many times faster than MD5, so it is taken in the read path. MD5 (the objects that carry
//! nothing better: the Python tool's, older ones) runs at about 700 MB/s, slower than a
//! read on loopback: once a file proves long, it moves to a thread of its own, fed
//! through a bounded channel, so it runs beside the reads instead of inside each. A
//! version with no checksum is only counted.

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::checksum::{Algorithm, Checksum, Running};
use crate::digest::Md5;

/// Bytes hashed with MD5 in the read path before the hashing moves beside it.
const HASH_BEHIND_AFTER: u64 = 8 << 20;

/// Reads' worth of bytes the hashing thread may be behind (each at most what one read
/// hands out: 1 MiB with the read-ahead the daemon sets).
const READS_BEHIND: usize = 16;

pub(super) struct WholeRead {
    /// Bytes handed to the hash so far.
    pub(super) hashed: u64,
    hashing: Hashing,
}

enum Hashing {
    /// The version carries no checksum: the size is all there is to check.
    Counting,
    Here(Running),
    Behind {
        sender: mpsc::Sender<Vec<Bytes>>,
        task: JoinHandle<Md5>,
    },
}

impl WholeRead {
    /// Takes the checksum by `algorithm`; `None`: counts the bytes only.
    pub(super) fn new(algorithm: Option<Algorithm>) -> Self {
        WholeRead {
            hashed: 0,
            hashing: match algorithm {
                Some(algorithm) => Hashing::Here(Running::new(algorithm)),
                None => Hashing::Counting,
            },
        }
    }

    /// Hashes the next bytes of the file, in order.
    pub(super) async fn update(&mut self, pieces: Vec<Bytes>) {
        self.hashed += pieces.iter().map(|p| p.len() as u64).sum::<u64>();
        match &mut self.hashing {
            Hashing::Counting => {}
            Hashing::Here(running) => {
                for piece in &pieces {
                    running.update(piece);
                }
                if self.hashed >= HASH_BEHIND_AFTER && !running.is_fast() {
                    let here = std::mem::replace(&mut self.hashing, Hashing::Counting);
                    if let Hashing::Here(running) = here {
                        self.hashing = match running.into_md5() {
                            Ok(md5) => behind(md5),
                            Err(running) => Hashing::Here(running),
                        };
                    }
                }
            }
            Hashing::Behind { sender, .. } => {
                // A closed channel means the thread died: `finish` reports it.
                let _ = sender.send(pieces).await;
            }
        }
    }

    /// The checksum of everything hashed: `Ok(None)` when only counted, `Err` when the
    /// hashing thread failed.
    pub(super) async fn finish(self) -> Result<Option<Checksum>, ()> {
        match self.hashing {
            Hashing::Counting => Ok(None),
            Hashing::Here(running) => Ok(Some(running.finish())),
            Hashing::Behind { sender, task } => {
                drop(sender);
                match task.await {
                    Ok(hasher) => Ok(Some(Checksum::Md5(hasher.finalize()))),
                    Err(e) => {
                        tracing::error!("the hashing of a whole read failed: {e}");
                        Err(())
                    }
                }
            }
        }
    }
}

fn behind(mut hasher: Md5) -> Hashing {
    let (sender, mut receiver) = mpsc::channel::<Vec<Bytes>>(READS_BEHIND);
    let task = tokio::task::spawn_blocking(move || {
        while let Some(pieces) = receiver.blocking_recv() {
            for piece in &pieces {
                hasher.update(piece);
            }
        }
        hasher
    });
    Hashing::Behind { sender, task }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Bytes {
        let data: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 251) as u8).collect();
        Bytes::from(data)
    }

    async fn read_in_pieces(whole: &mut WholeRead, data: &Bytes) {
        for start in (0..data.len()).step_by(1 << 20) {
            let end = (start + (1 << 20)).min(data.len());
            // Two pieces per read, as a read spanning two frames.
            let middle = start + (end - start) / 3;
            whole
                .update(vec![data.slice(start..middle), data.slice(middle..end)])
                .await;
        }
    }

    #[tokio::test]
    async fn the_md5_is_the_same_here_and_behind() {
        let data = data();
        let mut whole = WholeRead::new(Some(Algorithm::Md5));
        read_in_pieces(&mut whole, &data).await;
        assert!(matches!(whole.hashing, Hashing::Behind { .. }));
        assert_eq!(whole.hashed, data.len() as u64);
        assert_eq!(
            whole.finish().await,
            Ok(Some(Checksum::Md5(Md5::digest(&data))))
        );

        let mut small = WholeRead::new(Some(Algorithm::Md5));
        small.update(vec![data.slice(..1000)]).await;
        assert!(matches!(small.hashing, Hashing::Here(_)));
        assert_eq!(
            small.finish().await,
            Ok(Some(Checksum::Md5(Md5::digest(&data[..1000]))))
        );
    }

    #[tokio::test]
    async fn a_crc_stays_in_the_read_path_and_nothing_is_only_counted() {
        let data = data();
        let mut whole = WholeRead::new(Some(Algorithm::Crc64Nvme));
        read_in_pieces(&mut whole, &data).await;
        assert!(matches!(whole.hashing, Hashing::Here(_)));
        assert_eq!(
            whole.finish().await,
            Ok(Some(Checksum::of(Algorithm::Crc64Nvme, &data)))
        );

        let mut counted = WholeRead::new(None);
        read_in_pieces(&mut counted, &data).await;
        assert_eq!(counted.hashed, data.len() as u64);
        assert_eq!(counted.finish().await, Ok(None));
    }
}
