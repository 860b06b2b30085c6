//! The guarantee of `ws_free`: called from outside every wsembed callback,
//! once it returns no callback of the socket runs or will run; called from
//! inside any callback (of this socket or another, on any thread), it
//! never waits, and no callback of the socket starts after it returns.
//!
//! Every callback runs inside the gate (`run`); `free` closes the gate and,
//! from outside callbacks, waits for a callback that another thread is
//! running inside it. Waiting from inside a callback could deadlock: two
//! dispatcher threads, each in a callback, freeing each other's sockets.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread::{self, ThreadId};

use crate::sync::lock;

thread_local! {
    /// This thread's id, kept: `thread::current()` counts a reference up
    /// and down, twice per delivered message.
    static THIS_THREAD: ThreadId = thread::current().id();
    /// How many callbacks (of any socket) this thread is inside.
    static INSIDE_CALLBACKS: Cell<u32> = const { Cell::new(0) };
}

/// True on a thread that is running a wsembed callback.
pub(crate) fn in_callback() -> bool {
    INSIDE_CALLBACKS.get() > 0
}

fn this_thread() -> ThreadId {
    THIS_THREAD.with(|id| *id)
}

/// Which thread, if any, is inside the gate right now.
#[derive(Default)]
struct Inside {
    running_on: Option<ThreadId>,
    /// Threads in `free` waiting for the mark to clear: std's condvar makes
    /// a futex call on every notify, so notify only when one waits.
    waiters: usize,
}

#[derive(Default)]
pub(crate) struct FreeGate {
    freed: AtomicBool,
    inside: Mutex<Inside>,
    left: Condvar,
}

impl FreeGate {
    pub fn is_freed(&self) -> bool {
        self.freed.load(Ordering::Acquire)
    }

    /// Runs `f` with this thread marked as inside, unless the gate is
    /// closed (then `f` is dropped unrun). The mark clears even if `f`
    /// unwinds.
    pub fn run(&self, f: impl FnOnce()) {
        {
            let mut inside = lock(&self.inside);
            if self.is_freed() {
                return;
            }
            inside.running_on = Some(this_thread());
        }
        INSIDE_CALLBACKS.set(INSIDE_CALLBACKS.get() + 1);
        struct Leave<'a>(&'a FreeGate);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                INSIDE_CALLBACKS.set(INSIDE_CALLBACKS.get() - 1);
                let mut inside = lock(&self.0.inside);
                inside.running_on = None;
                if inside.waiters > 0 {
                    self.0.left.notify_all();
                }
            }
        }
        let _leave = Leave(self);
        f();
    }

    /// Closes the gate, then, unless this thread is inside a callback,
    /// waits until no other thread is inside. False when the gate was
    /// already closed.
    pub fn free(&self) -> bool {
        if self.freed.swap(true, Ordering::AcqRel) {
            return false;
        }
        if in_callback() {
            return true;
        }
        let me = this_thread();
        let mut inside = lock(&self.inside);
        while inside.running_on.is_some_and(|t| t != me) {
            inside.waiters += 1;
            inside = self.left.wait(inside).unwrap_or_else(|e| e.into_inner());
            inside.waiters -= 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn runs_until_freed_then_never() {
        let gate = FreeGate::default();
        let mut ran = 0;
        gate.run(|| ran += 1);
        assert!(gate.free());
        assert!(!gate.free(), "a second free is a no-op");
        gate.run(|| ran += 1);
        assert_eq!(ran, 1);
        assert!(gate.is_freed());
    }

    #[test]
    fn free_from_inside_does_not_wait_for_itself() {
        let gate = FreeGate::default();
        let mut freed = false;
        gate.run(|| freed = gate.free());
        assert!(freed);
    }

    #[test]
    fn free_waits_for_a_callback_on_another_thread() {
        let gate = Arc::new(FreeGate::default());
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        let g = gate.clone();
        let runner = thread::spawn(move || {
            g.run(|| {
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                done_tx.send("callback done").unwrap();
            })
        });
        entered_rx.recv().unwrap();
        let g = gate.clone();
        let (freed_tx, freed_rx) = mpsc::channel();
        let freer = thread::spawn(move || {
            g.free();
            freed_tx.send("free returned").unwrap();
        });
        // The free must still be waiting while the callback is inside.
        assert!(freed_rx.recv_timeout(Duration::from_millis(50)).is_err());
        release_tx.send(()).unwrap();
        assert_eq!(done_rx.recv().unwrap(), "callback done");
        assert_eq!(freed_rx.recv().unwrap(), "free returned");
        runner.join().unwrap();
        freer.join().unwrap();
    }

    #[test]
    fn free_from_inside_another_callback_does_not_wait() {
        let held = Arc::new(FreeGate::default());
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let h = held.clone();
        let runner = thread::spawn(move || {
            h.run(|| {
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
        });
        entered_rx.recv().unwrap();
        // This thread runs a callback of another socket: freeing `held`
        // must return at once, though `held` has a callback running.
        let other = FreeGate::default();
        let mut freed = false;
        other.run(|| freed = held.free());
        assert!(freed);
        let mut ran = false;
        held.run(|| ran = true);
        assert!(!ran, "nothing starts after the free");
        release_tx.send(()).unwrap();
        runner.join().unwrap();
    }

    #[test]
    fn the_mark_clears_when_the_callback_panics() {
        let gate = Arc::new(FreeGate::default());
        let g = gate.clone();
        let _ = thread::spawn(move || g.run(|| panic!("listener bug"))).join();
        // Would wait forever if the mark had stayed.
        assert!(gate.free());
    }
}
