//! The MD5 of the bytes a handle hands out from the first byte in order, so its last
//! read can check them. MD5 runs at about 600 MB/s, slower than a read on loopback: once
//! a file proves long, the hashing moves to a thread of its own, fed through a bounded
//! channel, so it runs beside the reads instead of inside each.

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::digest::Md5;

/// Bytes hashed in the read path before the hashing moves beside it.
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
    Here(Md5),
    Behind {
        sender: mpsc::Sender<Vec<Bytes>>,
        task: JoinHandle<Md5>,
    },
}

impl WholeRead {
    pub(super) fn new() -> Self {
        WholeRead {
            hashed: 0,
            hashing: Hashing::Here(Md5::new()),
        }
    }

    /// Hashes the next bytes of the file, in order.
    pub(super) async fn update(&mut self, pieces: Vec<Bytes>) {
        self.hashed += pieces.iter().map(|p| p.len() as u64).sum::<u64>();
        match &mut self.hashing {
            Hashing::Here(hasher) => {
                for piece in &pieces {
                    hasher.update(piece);
                }
                if self.hashed >= HASH_BEHIND_AFTER {
                    let hasher = std::mem::take(hasher);
                    self.hashing = behind(hasher);
                }
            }
            Hashing::Behind { sender, .. } => {
                // A closed channel means the thread died: `finish` reports it.
                let _ = sender.send(pieces).await;
            }
        }
    }

    /// The MD5 of everything hashed, or None when the hashing thread failed.
    pub(super) async fn finish(self) -> Option<[u8; 16]> {
        match self.hashing {
            Hashing::Here(hasher) => Some(hasher.finalize()),
            Hashing::Behind { sender, task } => {
                drop(sender);
                match task.await {
                    Ok(hasher) => Some(hasher.finalize()),
                    Err(e) => {
                        tracing::error!("the hashing of a whole read failed: {e}");
                        None
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

    #[tokio::test]
    async fn the_digest_is_the_same_here_and_behind() {
        let data: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 251) as u8).collect();
        let data = Bytes::from(data);
        let mut whole = WholeRead::new();
        for start in (0..data.len()).step_by(1 << 20) {
            let end = (start + (1 << 20)).min(data.len());
            // Two pieces per read, as a read spanning two frames.
            let middle = start + (end - start) / 3;
            whole
                .update(vec![data.slice(start..middle), data.slice(middle..end)])
                .await;
        }
        assert!(matches!(whole.hashing, Hashing::Behind { .. }));
        assert_eq!(whole.hashed, data.len() as u64);
        assert_eq!(whole.finish().await, Some(Md5::digest(&data)));

        let mut small = WholeRead::new();
        small.update(vec![data.slice(..1000)]).await;
        assert!(matches!(small.hashing, Hashing::Here(_)));
        assert_eq!(small.finish().await, Some(Md5::digest(&data[..1000])));
    }
}
