//! Names found missing (the negative cache): a name every region said is absent is
//! answered ENOENT again, without a request, for the metadata TTL.
//!
//! Why it is bounded: any local user, a shell's completion, `find` or a build tool
//! probing paths can look up as many distinct missing names as they like, and each was
//! kept for good (about 500 bytes a name, seen: 200,000 names grew the daemon by
//! 100 MiB). It now holds at most `CAPACITY` names, the least recently looked up
//! dropped first, and an entry past the TTL is gone at its next lookup. A dropped entry
//! only costs the requests of one more lookup, never a wrong answer.
//!
//! Why `CAPACITY` is what it is: 16,384 entries of two short strings, an `Instant` and
//! the LRU's links stay under ~8 MiB even at the longest names (255 + 255 bytes), and
//! cover any one listing a tool walks within the TTL.

use std::time::Duration;

use crate::fs::bounded::Bounded;

/// (project, version), or (project, "") for a project.
pub(crate) type NameKey = (String, String);

pub(crate) struct MissingNames {
    entries: Bounded<NameKey, ()>,
}

impl MissingNames {
    pub(crate) const CAPACITY: usize = 16_384;

    pub(crate) fn new(ttl: Duration) -> Self {
        Self::with_capacity(ttl, Self::CAPACITY)
    }

    fn with_capacity(ttl: Duration, capacity: usize) -> Self {
        MissingNames {
            entries: Bounded::new(capacity, ttl),
        }
    }

    /// Whether the name was found missing within the TTL (an older entry is dropped).
    pub(crate) fn recently(&self, key: &NameKey) -> bool {
        self.entries.get(key).is_some()
    }

    /// Notes that the name was found missing, now.
    pub(crate) fn found(&self, key: NameKey) {
        self.entries.insert(key, ());
    }

    /// The name may exist now (made, staged or yanked here): ask the regions again.
    pub(crate) fn forget(&self, key: &NameKey) {
        self.entries.remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> NameKey {
        ("P".to_string(), format!("9.9.{n}"))
    }

    #[test]
    fn holds_at_most_its_capacity_dropping_the_least_recent() {
        let missing = MissingNames::with_capacity(Duration::from_secs(60), 3);
        for n in 0..5 {
            missing.found(key(n));
        }
        assert_eq!(missing.len(), 3);
        assert!(!missing.recently(&key(0)) && !missing.recently(&key(1)));
        assert!(missing.recently(&key(4)));
    }

    #[test]
    fn never_holds_more_than_capacity_names() {
        let missing = MissingNames::new(Duration::from_secs(60));
        for n in 0..MissingNames::CAPACITY * 3 {
            missing.found(key(n));
        }
        assert_eq!(missing.len(), MissingNames::CAPACITY);
    }

    #[test]
    fn entries_expire_after_the_ttl_and_can_be_forgotten() {
        let missing = MissingNames::new(Duration::from_millis(20));
        missing.found(key(1));
        missing.found(key(2));
        assert!(missing.recently(&key(1)));
        missing.forget(&key(1));
        assert!(!missing.recently(&key(1)));
        std::thread::sleep(Duration::from_millis(30));
        assert!(!missing.recently(&key(2)));
        assert_eq!(missing.len(), 0, "an expired entry is dropped when seen");
    }
}
