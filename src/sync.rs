//! The one way wsembed takes its locks.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex whose data stays consistent even if a holder panicked:
/// every critical section in wsembed is a few plain assignments, and a
/// panicking listener is caught outside any lock, so a poisoned lock only
/// means a bug was contained, never that the data is half-written.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
