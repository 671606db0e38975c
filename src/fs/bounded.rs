//! A map any local user can fill, kept to a fixed number of entries, each trusted for a
//! time: the least recently used entry is dropped when a new one would pass the bound,
//! and an entry past its time is dropped when it is next looked at.
//!
//! Every map of the namespace that grows with the names users look up or create is one
//! of these (see `ArtifactFs`, where each bound stands beside its number). Dropping an
//! entry must only ever cost the requests of one more lookup, never a wrong answer: a
//! user of this type keeps in it only what it can ask the regions again.

use std::borrow::Borrow;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::fs::sync::lock;

pub(crate) struct Bounded<K: Hash + Eq, V> {
    entries: Mutex<LruCache<K, (Instant, V)>>,
    ttl: Duration,
}

/// What an insert replaced and what it pushed out.
pub(crate) struct Inserted<K, V> {
    /// The value the key had, however old.
    pub(crate) previous: Option<V>,
    /// The least recently used entry, dropped to keep the bound.
    pub(crate) evicted: Option<(K, V)>,
}

impl<K: Hash + Eq + Clone, V: Clone> Bounded<K, V> {
    /// At most `capacity` entries (at least one), each trusted for `ttl`.
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Bounded {
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
            ttl,
        }
    }

    /// The value kept for `key` within the TTL (as recently used); an older one is
    /// dropped and returned as `Err`, for the caller to undo what it stood for.
    pub(crate) fn get_or_expired<Q>(&self, key: &Q) -> Result<Option<V>, V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut entries = lock(&self.entries);
        match entries.get(key) {
            Some((at, value)) if at.elapsed() < self.ttl => Ok(Some(value.clone())),
            Some(_) => match entries.pop(key) {
                Some((_, value)) => Err(value),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// The value kept for `key` within the TTL (as recently used); an older one is
    /// dropped.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_or_expired(key).unwrap_or(None)
    }

    /// The value kept for `key` within the TTL (as recently used), with how much longer
    /// it is trusted; an older one stays, for the `insert` that replaces it to report as
    /// `previous`.
    pub(crate) fn fresh_for<Q>(&self, key: &Q) -> Option<(V, Duration)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        lock(&self.entries).get(key).and_then(|(at, value)| {
            let left = self.ttl.checked_sub(at.elapsed())?;
            (!left.is_zero()).then(|| (value.clone(), left))
        })
    }

    /// The value kept for `key`, however old (not counted as a use).
    pub(crate) fn peek<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        lock(&self.entries)
            .peek(key)
            .map(|(_, value)| value.clone())
    }

    /// Keeps `value` for `key` from now on.
    pub(crate) fn insert(&self, key: K, value: V) -> Inserted<K, V> {
        let mut entries = lock(&self.entries);
        let previous = entries.pop(&key).map(|(_, value)| value);
        let evicted = entries
            .push(key, (Instant::now(), value))
            .map(|(key, (_, value))| (key, value));
        Inserted { previous, evicted }
    }

    /// Drops the entry of `key`; its value, however old.
    pub(crate) fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        lock(&self.entries).pop(key).map(|(_, value)| value)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.entries).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_its_capacity_and_says_what_it_pushed_out() {
        let map = Bounded::new(3, Duration::from_secs(60));
        let mut evicted = Vec::new();
        for n in 0..1_000 {
            evicted.extend(map.insert(n, n * 10).evicted);
            assert!(map.len() <= 3);
        }
        assert_eq!(map.len(), 3);
        assert_eq!(evicted.len(), 997);
        assert_eq!(evicted[0], (0, 0), "the least recently used goes first");
        assert_eq!(map.get(&999), Some(9_990));
        assert_eq!(map.get(&0), None);
    }

    #[test]
    fn a_use_keeps_an_entry_and_a_replacement_says_what_it_replaced() {
        let map = Bounded::new(2, Duration::from_secs(60));
        map.insert("a", 1);
        map.insert("b", 2);
        assert_eq!(map.get("a"), Some(1));
        let pushed = map.insert("c", 3);
        assert_eq!(pushed.evicted, Some(("b", 2)), "a was used since");
        let replaced = map.insert("a", 4);
        assert_eq!((replaced.previous, replaced.evicted), (Some(1), None));
    }

    #[test]
    fn an_entry_past_its_ttl_is_dropped_when_seen() {
        let map = Bounded::new(10, Duration::from_millis(20));
        map.insert("old", 1);
        std::thread::sleep(Duration::from_millis(30));
        map.insert("new", 2);
        assert_eq!(map.fresh_for("old"), None);
        assert_eq!(map.len(), 2, "fresh_for leaves it for its replacement");
        assert_eq!(map.get_or_expired("old"), Err(1));
        assert_eq!(map.get_or_expired("old"), Ok(None));
        assert_eq!(map.get("new"), Some(2));
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn fresh_for_says_how_long_an_entry_is_still_trusted_and_peek_sees_any_age() {
        let map = Bounded::new(10, Duration::from_millis(200));
        map.insert("a", 1);
        let (value, left) = map.fresh_for("a").unwrap();
        assert_eq!(value, 1);
        assert!(left <= Duration::from_millis(200) && left > Duration::ZERO);
        std::thread::sleep(Duration::from_millis(210));
        assert_eq!(map.fresh_for("a"), None);
        assert_eq!(map.peek("a"), Some(1), "kept for its replacement");
        assert_eq!(map.peek("b"), None);
    }
}
