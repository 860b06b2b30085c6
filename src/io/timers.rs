//! The reactor's timer heap: each connection's earliest deadline, filed by
//! handle. A connection whose deadline moves files a new entry instead of
//! searching the heap; the old one goes stale, and stale entries are
//! dropped when they reach the top.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Timers {
    /// Files `next`, a connection's earliest deadline, unless it is the
    /// one the heap already holds for it (`scheduled`, which this updates).
    pub fn reschedule(
        &mut self,
        handle: u64,
        scheduled: &mut Option<Instant>,
        next: Option<Instant>,
    ) {
        if next == *scheduled {
            return;
        }
        *scheduled = next;
        if let Some(at) = next {
            self.heap.push(Reverse((at, handle)));
        }
    }

    /// The earliest deadline a connection still waits for (`scheduled`
    /// gives a handle's current one). Stale entries on the way are dropped:
    /// one would make every poll arm a kernel timer (on the round-trip
    /// path) and would hold memory until its time came.
    pub fn next(&mut self, scheduled: impl Fn(u64) -> Option<Instant>) -> Option<Instant> {
        while let Some(&Reverse((at, handle))) = self.heap.peek() {
            if scheduled(handle) == Some(at) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Takes the next entry due at `now`: its handle. The caller checks
    /// that the connection's deadline is really due (the entry may be
    /// stale).
    pub fn pop_due(&mut self, now: Instant) -> Option<u64> {
        let &Reverse((at, handle)) = self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        Some(handle)
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    #[test]
    fn a_moved_deadline_leaves_a_stale_entry_that_is_skipped() {
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        let mut timers = Timers::default();
        let mut scheduled: HashMap<u64, Option<Instant>> = HashMap::new();
        for (handle, at) in [(1, 10), (2, 20)] {
            let s = scheduled.entry(handle).or_default();
            timers.reschedule(handle, s, Some(ms(at)));
        }
        // Handle 1's deadline moves later, then handle 2 stops waiting.
        timers.reschedule(1, scheduled.get_mut(&1).unwrap(), Some(ms(30)));
        timers.reschedule(2, scheduled.get_mut(&2).unwrap(), None);
        let lookup = |s: &HashMap<u64, Option<Instant>>| {
            let s = s.clone();
            move |h: u64| s.get(&h).copied().flatten()
        };
        assert_eq!(timers.next(lookup(&scheduled)), Some(ms(30)));
        assert_eq!(timers.pop_due(ms(29)), None, "not due yet");
        assert_eq!(timers.pop_due(ms(30)), Some(1));
        assert!(timers.is_empty(), "the stale entries were dropped");
    }

    #[test]
    fn the_same_deadline_is_filed_once() {
        let t = Instant::now();
        let mut timers = Timers::default();
        let mut scheduled = None;
        timers.reschedule(7, &mut scheduled, Some(t));
        timers.reschedule(7, &mut scheduled, Some(t));
        assert_eq!(timers.pop_due(t), Some(7));
        assert_eq!(timers.pop_due(t), None);
    }

    #[test]
    fn due_entries_come_out_earliest_first() {
        let t = Instant::now();
        let mut timers = Timers::default();
        for (handle, ms) in [(1, 30), (2, 10), (3, 20)] {
            timers.reschedule(handle, &mut None, Some(t + Duration::from_millis(ms)));
        }
        let now = t + Duration::from_millis(25);
        let due: Vec<u64> = std::iter::from_fn(|| timers.pop_due(now)).collect();
        assert_eq!(due, [2, 3]);
    }
}
