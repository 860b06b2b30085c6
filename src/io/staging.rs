//! Which socket's connection takes its outbox right after the callback now
//! running on this (the IO) thread returns: a send to that socket from the
//! callback needs no flush request, as the connection stages the frames
//! itself, before any close reply a later frame of the same pass triggers.

use std::cell::Cell;

thread_local! {
    static STAGING: Cell<u64> = const { Cell::new(0) };
}

/// Marks `handle` as staged by its connection after the current delivery;
/// the mark lifts when the guard drops (also on unwind).
pub(super) struct StagingGuard(u64);

impl StagingGuard {
    pub fn new(handle: u64) -> StagingGuard {
        StagingGuard(STAGING.replace(handle))
    }
}

impl Drop for StagingGuard {
    fn drop(&mut self) {
        STAGING.set(self.0);
    }
}

/// True on the IO thread inside a delivery that `handle`'s connection
/// stages after.
pub(super) fn is_staged(handle: u64) -> bool {
    STAGING.get() == handle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_nest_and_lift() {
        assert!(!is_staged(7));
        {
            let _outer = StagingGuard::new(7);
            assert!(is_staged(7));
            {
                let _inner = StagingGuard::new(8);
                assert!(is_staged(8) && !is_staged(7));
            }
            assert!(is_staged(7));
        }
        assert!(!is_staged(7));
    }
}
