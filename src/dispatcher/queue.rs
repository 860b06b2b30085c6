//! A FIFO whose descriptor is readable exactly while something is queued
//! (or a wakeup is pending): level-triggered, so a host may poll it with
//! poll, epoll or kqueue, edge-triggered or not, and never miss an item.
//!
//! The rule (the opposite of ZMQ_FD, whose edge-only fd loses wakeups):
//! a push raises the signal if it is down; a take lowers it, then raises
//! it again if items remain, which also gives edge-triggered watchers a
//! new edge.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};

use super::signal::{self, Signal};
use crate::sync::lock;

struct Inner<T> {
    items: VecDeque<T>,
    /// The signal is raised (or its write is on its way): items are queued
    /// or a wakeup is pending.
    raised: bool,
    /// None once closed: nothing more is queued. Shared, so that a write
    /// made after unlocking never lands on a descriptor closed meanwhile
    /// (or on another file that reused its number).
    signal: Option<Arc<Signal>>,
}

impl<T> Inner<T> {
    /// Marks the signal raised; the caller writes it, after unlocking, if
    /// this returns it.
    fn raise(&mut self) -> Option<Arc<Signal>> {
        if self.raised {
            return None;
        }
        let signal = self.signal.clone()?;
        self.raised = true;
        Some(signal)
    }
}

pub(crate) struct SignalQueue<T> {
    inner: Mutex<Inner<T>>,
}

impl<T> SignalQueue<T> {
    pub fn new() -> io::Result<SignalQueue<T>> {
        Ok(SignalQueue {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                raised: false,
                signal: Some(Arc::new(Signal::new()?)),
            }),
        })
    }

    /// The descriptor to poll; None once closed.
    pub fn fd(&self) -> Option<RawFd> {
        lock(&self.inner).signal.as_ref().map(|s| s.fd())
    }

    /// Queues `item`; once closed, hands it back to be dropped outside the
    /// lock.
    pub fn push(&self, item: T) -> Option<T> {
        let raise = {
            let mut inner = lock(&self.inner);
            if inner.signal.is_none() {
                return Some(item);
            }
            inner.items.push_back(item);
            inner.raise()
        };
        // Written after unlocking: the thread it wakes goes for the lock at
        // once, and would otherwise find it held and sleep again.
        if let Some(signal) = raise {
            signal.raise();
        }
        None
    }

    /// Ends a wait in progress, or the next one, at once.
    pub fn wake(&self) {
        let raise = lock(&self.inner).raise();
        if let Some(signal) = raise {
            signal.raise();
        }
    }

    /// Waits up to `timeout_ms` (0: not at all; -1: without limit) for an
    /// item or a wakeup, then takes up to `max` items (0: all queued now)
    /// into `into`. A wakeup is consumed here. Only one thread may take at
    /// a time.
    pub fn take(&self, timeout_ms: i32, max: usize, into: &mut VecDeque<T>) {
        if timeout_ms != 0 {
            let signal = lock(&self.inner).signal.clone();
            if let Some(signal) = signal {
                // Readable while anything is queued: the wait ends at once
                // then.
                signal::wait(signal.fd(), timeout_ms);
            }
        }
        let mut inner = lock(&self.inner);
        let Some(signal) = inner.signal.clone() else {
            return;
        };
        // Lowered even when not marked raised: a push's write may land
        // after the take that emptied the queue, and must not leave the
        // descriptor readable for good.
        signal.lower();
        inner.raised = false;
        let n = if max == 0 {
            inner.items.len()
        } else {
            max.min(inner.items.len())
        };
        into.extend(inner.items.drain(..n));
        if !inner.items.is_empty() {
            // Raised again under the lock: this thread is the one to wake.
            inner.raised = true;
            signal.raise();
        }
    }

    /// Closes the queue and returns what was queued, to be dropped by the
    /// caller outside the lock; the descriptor closes once no write is on
    /// its way. Later pushes are handed back.
    pub fn close(&self) -> VecDeque<T> {
        let mut inner = lock(&self.inner);
        inner.signal = None;
        inner.raised = false;
        std::mem::take(&mut inner.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;
    use std::time::{Duration, Instant};

    fn readable(fd: Option<RawFd>) -> bool {
        let fd = fd.unwrap();
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        unsafe { libc::poll(&mut pfd, 1, 0) == 1 }
    }

    #[test]
    fn readable_while_anything_is_queued() {
        let q = SignalQueue::new().unwrap();
        let mut got = VecDeque::new();
        assert!(!readable(q.fd()));
        for i in 0..3 {
            assert!(q.push(i).is_none());
        }
        assert!(readable(q.fd()));
        for expected in 0..3 {
            q.take(0, 1, &mut got);
            assert_eq!(got.pop_front(), Some(expected));
            assert_eq!(readable(q.fd()), expected < 2, "after taking {expected}");
        }
        q.take(0, 0, &mut got);
        assert!(got.is_empty());
    }

    #[test]
    fn every_capped_take_gives_an_edge_triggered_watcher_a_new_edge() {
        let q = SignalQueue::new().unwrap();
        // SAFETY: plain epoll calls on descriptors owned by this test.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(ep >= 0);
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: 7,
        };
        // SAFETY: as above; `ev` is live during the call.
        assert_eq!(
            unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, q.fd().unwrap(), &mut ev) },
            0
        );
        let edge = || {
            let mut out = [libc::epoll_event { events: 0, u64: 0 }; 1];
            // SAFETY: `out` has room for one event.
            unsafe { libc::epoll_wait(ep, out.as_mut_ptr(), 1, 0) == 1 }
        };
        for i in 0..3 {
            q.push(i);
        }
        assert!(edge());
        assert!(!edge(), "edge-triggered: once per edge");
        let mut got = VecDeque::new();
        q.take(0, 1, &mut got);
        assert!(edge(), "items remain: a new edge");
        q.take(0, 1, &mut got);
        assert!(edge());
        q.take(0, 1, &mut got);
        assert!(!edge(), "empty: no edge");
        assert_eq!(got, [0, 1, 2]);
        // SAFETY: closes the epoll descriptor made above.
        unsafe { libc::close(ep) };
    }

    #[test]
    fn all_means_all_queued_at_entry() {
        let q = SignalQueue::new().unwrap();
        for i in 0..5 {
            q.push(i);
        }
        let mut got = VecDeque::new();
        q.take(0, 0, &mut got);
        assert_eq!(got.len(), 5);
        assert!(!readable(q.fd()));
    }

    #[test]
    fn a_wakeup_ends_an_unlimited_wait() {
        let q = Arc::new(SignalQueue::<u32>::new().unwrap());
        let q2 = q.clone();
        let waiter = thread::spawn(move || {
            let mut got = VecDeque::new();
            q2.take(-1, 0, &mut got);
            got.len()
        });
        thread::sleep(Duration::from_millis(20));
        q.wake();
        assert_eq!(waiter.join().unwrap(), 0);
        assert!(!readable(q.fd()), "the wakeup was consumed");
    }

    #[test]
    fn a_push_ends_a_wait_and_a_timeout_ends_an_empty_one() {
        let q = Arc::new(SignalQueue::new().unwrap());
        let q2 = q.clone();
        let waiter = thread::spawn(move || {
            let mut got = VecDeque::new();
            q2.take(-1, 0, &mut got);
            got
        });
        q.push(42);
        assert_eq!(waiter.join().unwrap(), [42]);
        let start = Instant::now();
        let mut got = VecDeque::new();
        q.take(30, 0, &mut got);
        assert!(got.is_empty());
        assert!(start.elapsed() >= Duration::from_millis(25));
    }

    #[test]
    fn a_write_that_lands_after_the_queue_emptied_is_lowered_by_the_next_take() {
        let q = SignalQueue::<u32>::new().unwrap();
        // As a push whose write comes after a take drained its item.
        let signal = lock(&q.inner).signal.clone().unwrap();
        signal.raise();
        assert!(readable(q.fd()));
        let mut got = VecDeque::new();
        q.take(0, 0, &mut got);
        assert!(got.is_empty());
        assert!(!readable(q.fd()), "not readable for good");
    }

    #[test]
    fn closing_hands_back_what_was_queued_and_what_comes_later() {
        let q = SignalQueue::new().unwrap();
        q.push(1);
        q.push(2);
        assert_eq!(q.close(), [1, 2]);
        assert_eq!(q.fd(), None);
        assert_eq!(q.push(3), Some(3));
        let mut got = VecDeque::new();
        q.take(-1, 0, &mut got);
        assert!(got.is_empty(), "a closed queue never blocks");
    }
}
