//! What the daemon as a whole gets from each server: the GETs of every reader in flight
//! to it, each with the rate its body flows at, and the bound on how many of them may
//! be parts of reads cut for speed.
//!
//! A stream slowed by its neighbours is not a slow server. Eight `cat`s at once from a
//! server bounded in total (moto: one Python process) each see an eighth of its pace;
//! were each to judge the server by its own stream, each would cut its read into parts,
//! and sixty-four GETs would share what eight did. So whether to cut is decided from
//! what all the daemon's GETs to that server get together (`together`), and the parts
//! of every reader share one bound per server (`max_gets`): a part starts only while
//! fewer GETs than that are in flight there. A reader's one GET is never held back by
//! the bound (a reader waiting on another reader's slot could wait for ever: that one
//! may be paused by its own consumer), so a reader always has a GET, and the parts
//! never take the GETs in flight past the bound.
//!
//! The server is the region a read asks first (`Copies::region`): one endpoint per
//! region, as S3 has.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The GETs in flight to every server.
#[derive(Debug)]
pub(super) struct ServerPace {
    servers: Mutex<HashMap<String, Server>>,
    /// GETs in flight to one server past which no part starts.
    max_gets: usize,
    next_id: AtomicU64,
}

/// The GETs in flight to one server, by their id.
#[derive(Debug, Default)]
struct Server {
    gets: HashMap<u64, Get>,
}

#[derive(Debug, Clone, Copy)]
struct Get {
    reader: u64,
    /// Bytes a second once its body flowed.
    rate: Option<f64>,
}

/// What the daemon's GETs to one server give, as a reader sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Together {
    /// Bytes a second, all GETs to the server added up (the asking reader's own at the
    /// rate it measured; a GET whose rate is not known yet counted at the mean of those
    /// known).
    pub rate: f64,
    /// Readers with a GET in flight there, the asking one included.
    pub readers: usize,
    /// GETs in flight there.
    pub gets: usize,
}

impl ServerPace {
    pub(super) fn new(max_gets: usize) -> Self {
        ServerPace {
            servers: Mutex::new(HashMap::new()),
            max_gets: max_gets.max(1),
            next_id: AtomicU64::new(1),
        }
    }

    /// An id for a reader (a handle's), distinct from every other.
    pub(super) fn reader_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The most GETs a reader may hope to have at once when it cuts its read into parts
    /// now: its share of the bound, at most `max`.
    pub(super) fn share(&self, readers: usize, max: usize) -> usize {
        (self.max_gets / readers.max(1)).clamp(1, max.max(1))
    }

    /// A GET of `reader` to `server` starts: its slot, released when dropped. A part
    /// (`part`) gets none while `max_gets` GETs are in flight there; a reader's one GET
    /// always gets one.
    pub(super) fn enter(
        self: &Arc<Self>,
        server: &str,
        reader: u64,
        part: bool,
    ) -> Option<GetSlot> {
        let mut servers = self.lock();
        let entry = servers.entry(server.to_string()).or_default();
        if part && entry.gets.len() >= self.max_gets {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        entry.gets.insert(id, Get { reader, rate: None });
        Some(GetSlot {
            pace: Arc::clone(self),
            server: server.to_string(),
            id,
        })
    }

    /// What the GETs to `server` give together, `reader`'s own counted at `own` bytes a
    /// second.
    pub(super) fn together(&self, server: &str, reader: u64, own: f64) -> Together {
        let servers = self.lock();
        let gets: Vec<Get> = servers
            .get(server)
            .map(|s| s.gets.values().copied().collect())
            .unwrap_or_default();
        together(&gets, reader, own)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Server>> {
        self.servers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What `gets` give together, as `reader` (whose own GETs go at `own`) sees it: its own
/// GETs count once, at `own`; another reader's GET at its rate, or at the mean of the
/// rates known when it has none yet (it started with the others and shares the server
/// as they do; counting it as nothing would make a busy server look slow).
fn together(gets: &[Get], reader: u64, own: f64) -> Together {
    let others: Vec<&Get> = gets.iter().filter(|g| g.reader != reader).collect();
    let known: Vec<f64> = others.iter().filter_map(|g| g.rate).collect();
    let mean = (known.iter().sum::<f64>() + own) / (known.len() + 1) as f64;
    let rate = own + others.iter().map(|g| g.rate.unwrap_or(mean)).sum::<f64>();
    let mut readers: Vec<u64> = others.iter().map(|g| g.reader).collect();
    readers.sort_unstable();
    readers.dedup();
    Together {
        rate,
        readers: readers.len() + 1,
        gets: gets.len(),
    }
}

/// One GET in flight, counted against its server's bound until dropped.
#[derive(Debug)]
pub(super) struct GetSlot {
    pace: Arc<ServerPace>,
    server: String,
    id: u64,
}

impl GetSlot {
    /// The GET's body flows at `rate` bytes a second.
    pub(super) fn report(&self, rate: f64) {
        let mut servers = self.pace.lock();
        if let Some(get) = servers
            .get_mut(&self.server)
            .and_then(|s| s.gets.get_mut(&self.id))
        {
            get.rate = Some(rate);
        }
    }
}

impl Drop for GetSlot {
    fn drop(&mut self) {
        let mut servers = self.pace.lock();
        if let Some(server) = servers.get_mut(&self.server) {
            server.gets.remove(&self.id);
            if server.gets.is_empty() {
                servers.remove(&self.server);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: f64 = 1e6;

    #[test]
    fn one_reader_alone_sees_its_own_rate() {
        let pace = Arc::new(ServerPace::new(16));
        let reader = pace.reader_id();
        let slot = pace.enter("us-east-1", reader, false).unwrap();
        slot.report(90.0 * MB);
        let t = pace.together("us-east-1", reader, 90.0 * MB);
        assert_eq!(t.readers, 1);
        assert_eq!(t.gets, 1);
        assert!((t.rate - 90.0 * MB).abs() < 1.0, "{t:?}");
    }

    #[test]
    fn eight_readers_sharing_a_server_see_what_it_gives_them_all() {
        let pace = Arc::new(ServerPace::new(16));
        let readers: Vec<u64> = (0..8).map(|_| pace.reader_id()).collect();
        let slots: Vec<GetSlot> = readers
            .iter()
            .map(|&r| pace.enter("us-east-1", r, false).unwrap())
            .collect();
        // Seven measured already, at an eighth of 800 MB/s each; one not yet.
        for slot in &slots[..7] {
            slot.report(100.0 * MB);
        }
        let t = pace.together("us-east-1", readers[0], 100.0 * MB);
        assert_eq!(t.readers, 8);
        assert!((t.rate - 800.0 * MB).abs() < 1.0, "{t:?}");
        // Another server is another matter.
        let alone = pace.together("eu-west-1", readers[0], 100.0 * MB);
        assert_eq!((alone.readers, alone.gets), (1, 0));
        drop(slots);
        assert_eq!(pace.together("us-east-1", readers[0], 1.0).gets, 0);
    }

    #[test]
    fn a_readers_own_gets_count_once_at_the_rate_it_measured() {
        let pace = Arc::new(ServerPace::new(16));
        let me = pace.reader_id();
        let first = pace.enter("r", me, false).unwrap();
        let second = pace.enter("r", me, true).unwrap();
        first.report(30.0 * MB);
        second.report(30.0 * MB);
        let t = pace.together("r", me, 60.0 * MB);
        assert_eq!((t.readers, t.gets), (1, 2));
        assert!((t.rate - 60.0 * MB).abs() < 1.0, "{t:?}");
    }

    #[test]
    fn parts_never_take_the_gets_in_flight_past_the_bound() {
        let pace = Arc::new(ServerPace::new(16));
        let mut slots = Vec::new();
        // Eight readers with their one GET each, then each asking for eight parts.
        let readers: Vec<u64> = (0..8).map(|_| pace.reader_id()).collect();
        for &r in &readers {
            slots.push(pace.enter("r", r, false).unwrap());
        }
        let mut refused = 0;
        for _ in 0..8 {
            for &r in &readers {
                match pace.enter("r", r, true) {
                    Some(slot) => slots.push(slot),
                    None => refused += 1,
                }
                assert!(pace.together("r", r, 0.0).gets <= 16);
            }
        }
        assert_eq!(slots.len(), 16);
        assert_eq!(refused, 64 - 8);
        // A reader's one GET is never refused, even past the bound.
        let late = pace.reader_id();
        slots.push(pace.enter("r", late, false).unwrap());
        assert!(pace.enter("r", late, true).is_none());
        // A GET that ends makes room for one part.
        slots.truncate(15);
        assert!(pace.enter("r", late, true).is_some());
    }

    #[test]
    fn a_share_of_the_bound_for_each_reader() {
        let pace = ServerPace::new(16);
        assert_eq!(pace.share(1, 8), 8);
        assert_eq!(pace.share(2, 8), 8);
        assert_eq!(pace.share(4, 8), 4);
        assert_eq!(pace.share(8, 8), 2);
        assert_eq!(pace.share(20, 8), 1);
    }
}
