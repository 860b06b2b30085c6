//! The process-wide log: one sink for the whole library, and the
//! `log_at!` macro the rest of the crate writes its lines with.
//!
//! A line below the sink's level costs one relaxed atomic load: `log_at!`
//! asks [`enabled`] before it evaluates or formats any argument. A line
//! above it is formatted once, then handed to the sink with no lock of ours
//! held, so a sink may call back into the library (and `ffi` gives C one
//! that does).
//!
//! Replacing the sink ([`set_sink`], [`clear_sink`]) returns only once the
//! previous one has finished every call it was in on other threads; a C
//! caller frees its userdata on that promise. Each installed sink counts
//! its calls in flight under [`STATE`]'s lock, and the setter waits on
//! [`IDLE`] (which releases that lock) until the count is down to the call
//! its own thread is in, if it was called from inside the sink.
//!
//! A line logged while this thread is already emitting one (from a sink
//! that calls something that logs, or from a `Display` impl) is dropped:
//! it would otherwise recurse without end.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use crate::sync::lock;

/// How much a line matters; the discriminants are the C `WS_LOG_*` values
/// and a more detailed level is a larger number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub(crate) enum Level {
    /// A socket failed (the text of its `error` event).
    Error = 1,
    /// Something went wrong and was recovered from.
    Warn = 2,
    /// One line per connection step.
    Info = 3,
    /// Finer detail.
    Debug = 4,
}

impl Level {
    /// The level whose number is `n`, if any.
    pub(crate) fn from_number(n: i64) -> Option<Level> {
        match n {
            1 => Some(Level::Error),
            2 => Some(Level::Warn),
            3 => Some(Level::Info),
            4 => Some(Level::Debug),
            _ => None,
        }
    }
}

/// What receives the lines: level, the handle of the socket the line is
/// about (0 for none) and the text.
pub(crate) type Sink = dyn Fn(Level, u64, &str) + Send + Sync;

/// An installed sink and the calls it is in.
struct Slot {
    max_level: Level,
    sink: Box<Sink>,
    /// Calls begun and not yet ended. Changed only under `STATE`'s lock (an
    /// atomic only so that a `Slot` is `Sync`).
    running: AtomicUsize,
}

struct State {
    current: Option<Arc<Slot>>,
}

/// The most detailed level the current sink takes, 0 for none: what
/// [`enabled`] reads without a lock. Written only under `STATE`'s lock, so
/// it never disagrees with `current` for long; a line that races a setter
/// is checked again against the slot it ends up with.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);

static STATE: Mutex<State> = Mutex::new(State { current: None });

/// Signalled when a call of a sink that is no longer current ends.
static IDLE: Condvar = Condvar::new();

thread_local! {
    /// True while this thread formats or delivers a line.
    static EMITTING: Cell<bool> = const { Cell::new(false) };
    /// The address of the slot whose sink this thread is running, 0 for
    /// none: a setter called from inside a sink must not wait for itself.
    static CALLING: Cell<usize> = const { Cell::new(0) };
}

/// Whether a line at `level` would reach a sink; one relaxed load.
#[inline]
pub(crate) fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Formats a line and hands it to the sink. Reached through `log_at!`,
/// which has already checked [`enabled`]; dropped when nested in another
/// emit on this thread.
pub(crate) fn emit(level: Level, handle: u64, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let Some(_emitting) = Emitting::enter() else {
        return;
    };
    // Formatted before the lock is taken: a `Display` impl is foreign code
    // as far as the lock is concerned.
    let message = fmt::format(args);
    let Some(call) = Call::begin(level) else {
        return;
    };
    (call.slot().sink)(level, handle, &message);
}

/// Installs `sink` for lines up to `max_level`, replacing any other.
///
/// Returns once the sink it replaced is in no call on another thread, and
/// it will get no more: its captured state may then be released. Called
/// from inside that sink, it does not wait for the call it is made from.
pub(crate) fn set_sink(max_level: Level, sink: impl Fn(Level, u64, &str) + Send + Sync + 'static) {
    replace(Some(Arc::new(Slot {
        max_level,
        sink: Box::new(sink),
        running: AtomicUsize::new(0),
    })));
}

/// Turns logging off; returns as [`set_sink`] does.
pub(crate) fn clear_sink() {
    replace(None);
}

fn replace(new: Option<Arc<Slot>>) {
    let max = new.as_ref().map_or(0, |slot| slot.max_level as u8);
    let mut state = lock(&STATE);
    let old = std::mem::replace(&mut state.current, new);
    MAX_LEVEL.store(max, Ordering::Relaxed);
    let Some(old) = old else {
        return;
    };
    // Nested emits are dropped, so this thread is in at most one call.
    let own = usize::from(CALLING.try_with(Cell::get).unwrap_or(0) == slot_address(&old));
    while old.running.load(Ordering::Relaxed) > own {
        state = IDLE.wait(state).unwrap_or_else(PoisonError::into_inner);
    }
    drop(state);
    // Usually the last reference, so the sink is dropped here, outside the
    // lock (unless the setter runs inside it: then when that call ends).
    drop(old);
}

fn slot_address(slot: &Arc<Slot>) -> usize {
    Arc::as_ptr(slot) as usize
}

/// This thread's "emitting" mark, cleared on drop (a panicking sink
/// included).
struct Emitting;

impl Emitting {
    fn enter() -> Option<Emitting> {
        // During thread teardown the thread-local may be gone: the line is
        // dropped rather than risk recursion nobody can see.
        let first = EMITTING.try_with(|e| !e.replace(true)).ok()?;
        // Not `then_some`: its argument would be built, and dropped
        // (clearing the mark) when this is a nested call.
        if first {
            Some(Emitting)
        } else {
            None
        }
    }
}

impl Drop for Emitting {
    fn drop(&mut self) {
        let _ = EMITTING.try_with(|e| e.set(false));
    }
}

/// One call of the current sink, counted in its slot from `begin` to drop.
struct Call {
    slot: Option<Arc<Slot>>,
    previous: usize,
}

impl Call {
    fn begin(level: Level) -> Option<Call> {
        let state = lock(&STATE);
        let slot = state.current.as_ref()?;
        if level > slot.max_level {
            return None;
        }
        slot.running.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::clone(slot);
        drop(state);
        let previous = CALLING
            .try_with(|c| c.replace(slot_address(&slot)))
            .unwrap_or(0);
        Some(Call {
            slot: Some(slot),
            previous,
        })
    }

    fn slot(&self) -> &Slot {
        self.slot.as_deref().expect("set until drop")
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let _ = CALLING.try_with(|c| c.set(self.previous));
        let Some(slot) = self.slot.take() else {
            return;
        };
        let state = lock(&STATE);
        slot.running.fetch_sub(1, Ordering::Relaxed);
        let replaced = !state
            .current
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, &slot));
        // Dropped under the lock: once a waiting setter sees the count
        // fall, its own reference must be the last one.
        drop(slot);
        drop(state);
        if replaced {
            IDLE.notify_all();
        }
    }
}

/// Logs a line: `log_at!(Info, handle, "connecting to {}", addr)`, with a
/// [`Level`] variant name, the socket's handle (0 for none), then
/// `format!` arguments. Below the sink's level nothing after the level is
/// evaluated.
macro_rules! log_at {
    ($level:ident, $handle:expr, $($arg:tt)+) => {
        if $crate::log::enabled($crate::log::Level::$level) {
            $crate::log::emit(
                $crate::log::Level::$level,
                $handle,
                ::std::format_args!($($arg)+),
            );
        }
    };
}
pub(crate) use log_at;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    /// The sink is process-wide: these tests take turns, and each sink
    /// keeps only the lines of its own handles (other tests of the crate
    /// may log meanwhile).
    static SERIAL: Mutex<()> = Mutex::new(());

    const H: u64 = 0x4C06_0000_0001;
    const DEADLINE: Duration = Duration::from_secs(30);

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        lock(&SERIAL)
    }

    type Lines = Arc<Mutex<Vec<(Level, u64, String)>>>;

    fn recording(max: Level) -> Lines {
        let lines = Lines::default();
        let into = lines.clone();
        set_sink(max, move |level, handle, text| {
            if handle == H {
                lock(&into).push((level, handle, text.to_owned()));
            }
        });
        lines
    }

    /// Counts how many times it is formatted.
    struct Counted<'a>(&'a AtomicUsize);

    impl fmt::Display for Counted<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.fetch_add(1, Ordering::SeqCst);
            f.write_str("counted")
        }
    }

    #[test]
    fn lines_below_the_level_are_never_formatted() {
        let _serial = serial();
        let formatted = AtomicUsize::new(0);
        let evaluated = AtomicUsize::new(0);
        let handle = || {
            evaluated.fetch_add(1, Ordering::SeqCst);
            H
        };

        clear_sink();
        log_at!(Error, handle(), "{}", Counted(&formatted));
        assert_eq!(formatted.load(Ordering::SeqCst), 0, "formatted while off");

        let lines = recording(Level::Warn);
        assert!(enabled(Level::Error) && enabled(Level::Warn));
        assert!(!enabled(Level::Info) && !enabled(Level::Debug));
        log_at!(Info, handle(), "{}", Counted(&formatted));
        log_at!(Debug, handle(), "{}", Counted(&formatted));
        assert_eq!(formatted.load(Ordering::SeqCst), 0);
        assert_eq!(evaluated.load(Ordering::SeqCst), 0);

        log_at!(Warn, handle(), "a {} line", Counted(&formatted));
        log_at!(Error, H, "plain");
        assert_eq!(formatted.load(Ordering::SeqCst), 1);
        assert_eq!(
            *lock(&lines),
            [
                (Level::Warn, H, "a counted line".to_owned()),
                (Level::Error, H, "plain".to_owned()),
            ]
        );
        clear_sink();
        assert!(!enabled(Level::Error));
    }

    #[test]
    fn replacing_waits_for_a_call_in_flight_on_another_thread() {
        let _serial = serial();
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let finished = Arc::new(AtomicBool::new(false));
        let calls_after = Arc::new(AtomicUsize::new(0));
        let replaced = Arc::new(AtomicBool::new(false));
        {
            let entered_tx = Mutex::new(entered_tx);
            let finished = finished.clone();
            let calls_after = calls_after.clone();
            let replaced = replaced.clone();
            set_sink(Level::Debug, move |_, handle, _| {
                if handle != H {
                    return;
                }
                if replaced.load(Ordering::SeqCst) {
                    calls_after.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                let _ = lock(&entered_tx).send(());
                let _ = lock(&release_rx).recv_timeout(DEADLINE);
                finished.store(true, Ordering::SeqCst);
            });
        }
        let old = lock(&STATE).current.as_ref().map_or(0, slot_address);
        let emitter = thread::spawn(|| log_at!(Info, H, "slow"));
        entered.recv_timeout(DEADLINE).expect("the sink is called");

        let returned = Arc::new(AtomicBool::new(false));
        let setter = {
            let returned = returned.clone();
            let replaced = replaced.clone();
            thread::spawn(move || {
                set_sink(Level::Debug, |_, _, _| {});
                replaced.store(true, Ordering::SeqCst);
                returned.store(true, Ordering::SeqCst);
            })
        };
        while lock(&STATE)
            .current
            .as_ref()
            .is_some_and(|current| slot_address(current) == old)
        {
            thread::sleep(Duration::from_millis(1));
        }
        thread::sleep(Duration::from_millis(50));
        assert!(
            !returned.load(Ordering::SeqCst),
            "the setter returned while the old sink was running"
        );
        // New lines meanwhile go to the new sink, not the old one.
        log_at!(Info, H, "to the new sink");
        release.send(()).unwrap();
        setter.join().unwrap();
        assert!(finished.load(Ordering::SeqCst));
        emitter.join().unwrap();
        log_at!(Info, H, "after");
        assert_eq!(calls_after.load(Ordering::SeqCst), 0);
        clear_sink();
    }

    #[test]
    fn a_setter_inside_the_sink_does_not_wait_for_itself() {
        let _serial = serial();
        let (done_tx, done) = mpsc::channel();
        let worker = thread::spawn(move || {
            let lines = Lines::default();
            let into = lines.clone();
            set_sink(Level::Info, move |_, handle, _| {
                if handle == H {
                    let into = into.clone();
                    set_sink(Level::Info, move |_, handle, text| {
                        if handle == H {
                            lock(&into).push((Level::Info, handle, text.to_owned()));
                        }
                    });
                }
            });
            log_at!(Info, H, "replaces its own sink");
            log_at!(Info, H, "to the second sink");
            clear_sink();
            let _ = done_tx.send(lock(&lines).clone());
        });
        let lines = done
            .recv_timeout(DEADLINE)
            .expect("deadlock: the setter waited for its own call");
        assert_eq!(lines, [(Level::Info, H, "to the second sink".to_owned())]);
        worker.join().unwrap();
    }

    #[test]
    fn a_line_logged_while_emitting_is_dropped() {
        let _serial = serial();
        let calls = Arc::new(AtomicUsize::new(0));
        {
            let calls = calls.clone();
            set_sink(Level::Debug, move |_, handle, _| {
                if handle == H {
                    calls.fetch_add(1, Ordering::SeqCst);
                    log_at!(Error, H, "from inside the sink");
                }
            });
        }
        log_at!(Info, H, "outer");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        /// Logs while being formatted.
        struct Noisy;
        impl fmt::Display for Noisy {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                log_at!(Error, H, "from a Display impl");
                f.write_str("noisy")
            }
        }
        log_at!(Info, H, "{}", Noisy);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        clear_sink();
    }

    #[test]
    fn a_line_racing_a_lower_level_is_not_delivered_above_it() {
        let _serial = serial();
        let lines = recording(Level::Error);
        // As if `enabled` had been read before the level went down.
        assert!(Call::begin(Level::Debug).is_none());
        assert!(Call::begin(Level::Error).is_some());
        assert!(lock(&lines).is_empty());
        clear_sink();
    }
}
