//! The one way the model takes its mutexes.

/// Locks a mutex of the model; a panic elsewhere never leaves its data unusable
/// (every change under these locks is a single insert or replace).
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
