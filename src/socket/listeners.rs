//! A socket's listeners and the record of its events: who is bound to
//! each kind, whether `open`, `error` and `close` already happened (a
//! listener bound late still gets them, as a replay), and the messages
//! held while no `message` listener is bound.
//!
//! Lists are copied on write (`Arc<Vec>`): a delivery takes a snapshot and
//! calls it with no lock held, so a listener may bind and unbind freely.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tungstenite::Message;

use crate::event::{
    message_len, Binding, CloseRecord, ErrorRecord, EventKind, Listener, ListenerId,
    ReconnectRecord, KINDS,
};
use crate::status::{Error, Result};
use crate::sync::lock;

pub(crate) type BindingList = Arc<Vec<Arc<Binding>>>;

/// A late listener waiting for an event it missed. Weak, so that unbinding
/// or freeing still finalizes it at once.
pub(crate) type PendingReplay = (EventKind, Weak<Binding>);

/// A recorded event to replay to a late listener.
pub(crate) enum Replay {
    /// With how many times the socket opened before.
    Open(u32),
    Reconnecting(ReconnectRecord),
    Error(ErrorRecord),
    Close(CloseRecord),
}

/// What `bind` did, and so what the socket must ask of its loop.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Bound {
    /// Bound; nothing it missed.
    Quietly,
    /// Bound after its event happened: a replay waits.
    NeedsReplay,
    /// A `message` listener bound while messages were held.
    NeedsHeld,
    /// The same listener was already bound; this one was disarmed and
    /// dropped.
    Duplicate,
}

/// Pending replays in protocol order: a missed `open` comes before the
/// held messages, a missed `reconnecting`, `error` and `close` after them,
/// `close` last.
/// Within a kind, listeners keep their bind order.
pub(crate) struct ReplayOrder {
    pub before_held: Vec<PendingReplay>,
    pub after_held: Vec<PendingReplay>,
}

impl ReplayOrder {
    fn of(pending: Vec<PendingReplay>) -> ReplayOrder {
        let (before_held, mut after_held): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|(kind, _)| *kind == EventKind::Open);
        // Stable: listeners of one kind keep their order.
        after_held.sort_by_key(|(kind, _)| match kind {
            EventKind::Reconnecting => 0,
            EventKind::Error => 1,
            _ => 2,
        });
        ReplayOrder {
            before_held,
            after_held,
        }
    }
}

#[derive(Default)]
struct Record {
    lists: [BindingList; KINDS],
    /// The socket is open now (the number of opens before this one): a
    /// late `open` listener gets the current state, not history, so a
    /// lost connection clears it.
    opened: Option<u32>,
    /// The socket waits for its next attempt: a late `reconnecting`
    /// listener gets this, the current state.
    reconnecting: Option<ReconnectRecord>,
    error: Option<ErrorRecord>,
    closed: Option<CloseRecord>,
    held: VecDeque<Message>,
    /// The socket was freed: nothing may bind any more.
    sealed: bool,
}

#[derive(Default)]
pub(crate) struct Listeners {
    record: Mutex<Record>,
    replays: Mutex<Vec<PendingReplay>>,
    has_replays: AtomicBool,
    /// Payload bytes in `record.held`; written under that lock, read
    /// without it by the IO thread before every read.
    held_bytes: AtomicUsize,
    /// A `bufferedamountlow` listener is bound: only then does the IO
    /// thread watch the buffered amount fall. Written under the record's
    /// lock.
    wants_low: AtomicBool,
}

impl Listeners {
    /// Adds a listener (as addEventListener: the same one bound twice runs
    /// once) and, if its event already happened, files a replay for it.
    pub fn bind(&self, kind: EventKind, mut listener: Box<dyn Listener>) -> Result<Bound> {
        let id = listener.identity();
        let mut record = lock(&self.record);
        // Checked under the lock `seal` takes the lists under, so a binding
        // can never slip in after them.
        if record.sealed {
            return Err(Error::invalid_handle());
        }
        let list = &mut record.lists[kind.index()];
        if list.iter().any(|b| b.listener.identity() == id) {
            listener.disarm();
            return Ok(Bound::Duplicate);
        }
        let binding = Arc::new(Binding::new(listener));
        let weak = Arc::downgrade(&binding);
        let mut new_list = Vec::with_capacity(list.len() + 1);
        new_list.extend(list.iter().cloned());
        new_list.push(binding);
        *list = Arc::new(new_list);
        if kind == EventKind::BufferedAmountLow {
            self.wants_low.store(true, Ordering::Release);
        }
        let happened = match kind {
            EventKind::Open => record.opened.is_some(),
            EventKind::Error => record.error.is_some(),
            EventKind::Close => record.closed.is_some(),
            EventKind::Reconnecting => record.reconnecting.is_some(),
            // An edge, not a state: nothing to replay.
            EventKind::Message | EventKind::BufferedAmountLow => false,
        };
        if happened {
            // Filed here rather than sent to the loop: the loop runs pending
            // replays before delivering any later event, so they keep
            // protocol order.
            lock(&self.replays).push((kind, weak));
            self.has_replays.store(true, Ordering::Release);
            Ok(Bound::NeedsReplay)
        } else if kind == EventKind::Message && !record.held.is_empty() {
            Ok(Bound::NeedsHeld)
        } else {
            Ok(Bound::Quietly)
        }
    }

    /// Removes a listener and marks it removed, so that a snapshot taken
    /// before does not call it. False when it was not bound.
    pub fn unbind(&self, kind: EventKind, id: ListenerId) -> bool {
        let removed = {
            let mut record = lock(&self.record);
            let list = &mut record.lists[kind.index()];
            let Some(pos) = list.iter().position(|b| b.listener.identity() == id) else {
                return false;
            };
            let mut new_list: Vec<_> = list.iter().cloned().collect();
            let removed = new_list.remove(pos);
            let empty = new_list.is_empty();
            *list = Arc::new(new_list);
            if kind == EventKind::BufferedAmountLow && empty {
                self.wants_low.store(false, Ordering::Release);
            }
            removed
        };
        removed.mark_removed();
        true
    }

    /// Ends binding for good (the socket is freed): drops held messages and
    /// returns every list, each binding marked removed. Dropping the lists
    /// runs the finalizers of bindings no snapshot still holds.
    pub fn seal(&self) -> [BindingList; KINDS] {
        let lists = {
            let mut record = lock(&self.record);
            record.sealed = true;
            self.wants_low.store(false, Ordering::Release);
            record.held.clear();
            self.held_bytes.store(0, Ordering::Release);
            std::mem::take(&mut record.lists)
        };
        for binding in lists.iter().flat_map(|list| list.iter()) {
            binding.mark_removed();
        }
        lists
    }

    // ----- recording events and taking snapshots ------------------------

    /// Records `open` (after `attempt` opens before it) and returns the
    /// listeners to call.
    pub fn record_open(&self, attempt: u32) -> BindingList {
        let mut record = lock(&self.record);
        record.opened = Some(attempt);
        record.reconnecting = None;
        record.lists[EventKind::Open.index()].clone()
    }

    /// The connection was lost, another comes: the socket is no longer
    /// open. Returns the `reconnecting` listeners to call.
    pub fn record_reconnecting(
        &self,
        reconnecting: ReconnectRecord,
    ) -> (BindingList, ReconnectRecord) {
        let mut record = lock(&self.record);
        record.opened = None;
        record.reconnecting = Some(reconnecting.clone());
        (
            record.lists[EventKind::Reconnecting.index()].clone(),
            reconnecting,
        )
    }

    pub fn record_error(&self, error: ErrorRecord) -> (BindingList, ErrorRecord) {
        let mut record = lock(&self.record);
        record.reconnecting = None;
        record.error = Some(error.clone());
        (record.lists[EventKind::Error.index()].clone(), error)
    }

    pub fn record_close(&self, close: CloseRecord) -> (BindingList, CloseRecord) {
        let mut record = lock(&self.record);
        record.reconnecting = None;
        record.closed = Some(close.clone());
        (record.lists[EventKind::Close.index()].clone(), close)
    }

    /// Whether a `bufferedamountlow` listener is bound.
    pub fn wants_low(&self) -> bool {
        self.wants_low.load(Ordering::Acquire)
    }

    /// The `bufferedamountlow` listeners to call.
    pub fn low_listeners(&self) -> BindingList {
        lock(&self.record).lists[EventKind::BufferedAmountLow.index()].clone()
    }

    /// The recorded event of `kind`, for a replay to a late listener.
    pub fn recorded(&self, kind: EventKind) -> Option<Replay> {
        let record = lock(&self.record);
        match kind {
            EventKind::Open => record.opened.map(Replay::Open),
            EventKind::Reconnecting => record.reconnecting.clone().map(Replay::Reconnecting),
            EventKind::Error => record.error.clone().map(Replay::Error),
            EventKind::Close => record.closed.clone().map(Replay::Close),
            _ => None,
        }
    }

    // ----- messages ------------------------------------------------------

    /// The fast path for a message: the listeners to give it to now, or
    /// `Err` with the message when it must wait behind held ones or for a
    /// listener.
    pub fn ready_for(
        &self,
        message: Message,
    ) -> std::result::Result<(Message, BindingList), Message> {
        let record = lock(&self.record);
        let list = &record.lists[EventKind::Message.index()];
        if !record.held.is_empty() || list.is_empty() {
            return Err(message);
        }
        Ok((message, list.clone()))
    }

    /// Appends a message to the hold queue; it leaves through `next_held`,
    /// in order, once a `message` listener is bound.
    pub fn hold(&self, message: Message) {
        let mut record = lock(&self.record);
        if record.sealed {
            return;
        }
        self.held_bytes
            .fetch_add(message_len(&message), Ordering::AcqRel);
        record.held.push_back(message);
    }

    /// The next held message and the listeners to give it to, if any
    /// listener is bound.
    pub fn next_held(&self) -> Option<(Message, BindingList)> {
        let mut record = lock(&self.record);
        let list = record.lists[EventKind::Message.index()].clone();
        if list.is_empty() {
            return None;
        }
        let message = record.held.pop_front()?;
        self.held_bytes
            .fetch_sub(message_len(&message), Ordering::AcqRel);
        Some((message, list))
    }

    pub fn held_bytes(&self) -> usize {
        self.held_bytes.load(Ordering::Acquire)
    }

    // ----- replays --------------------------------------------------------

    /// Late listeners wait for a replay: deliver nothing newer first.
    pub fn has_replays(&self) -> bool {
        self.has_replays.load(Ordering::Acquire)
    }

    /// Takes the pending replays, in the order they must run.
    pub fn take_replays(&self) -> ReplayOrder {
        if !self.has_replays.load(Ordering::Acquire) {
            return ReplayOrder::of(Vec::new());
        }
        self.has_replays.store(false, Ordering::Release);
        ReplayOrder::of(std::mem::take(&mut *lock(&self.replays)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventView;
    use crate::status::{AsyncErrorKind, ErrorKind};
    use std::sync::atomic::AtomicUsize;

    /// A listener that counts its finalization (its drop).
    struct Probe {
        id: usize,
        dropped: Arc<AtomicUsize>,
    }

    impl Listener for Probe {
        fn call(&self, _: u64, _: &EventView<'_>) {}
        fn identity(&self) -> ListenerId {
            ListenerId(self.id, 0)
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn probe(id: usize, dropped: &Arc<AtomicUsize>) -> Box<dyn Listener> {
        Box::new(Probe {
            id,
            dropped: dropped.clone(),
        })
    }

    fn close_record(code: u16) -> CloseRecord {
        CloseRecord {
            code,
            reason: c"".into(),
            was_clean: true,
        }
    }

    #[test]
    fn a_listener_bound_after_its_event_waits_for_a_replay() {
        let l = Listeners::default();
        let dropped = Arc::new(AtomicUsize::new(0));
        assert_eq!(
            l.bind(EventKind::Open, probe(1, &dropped)).unwrap(),
            Bound::Quietly
        );
        l.record_open(0);
        assert!(!l.has_replays());
        assert_eq!(
            l.bind(EventKind::Open, probe(2, &dropped)).unwrap(),
            Bound::NeedsReplay
        );
        assert_eq!(
            l.bind(EventKind::Close, probe(3, &dropped)).unwrap(),
            Bound::Quietly
        );
        assert!(l.has_replays());
        let order = l.take_replays();
        assert_eq!(order.before_held.len(), 1);
        assert!(order.after_held.is_empty());
        assert!(!l.has_replays());
        assert!(matches!(l.recorded(EventKind::Open), Some(Replay::Open(0))));
        assert!(l.recorded(EventKind::Close).is_none());
    }

    #[test]
    fn replays_run_open_then_error_then_close_keeping_bind_order() {
        let l = Listeners::default();
        let dropped = Arc::new(AtomicUsize::new(0));
        l.record_open(0);
        l.record_error(ErrorRecord::new(AsyncErrorKind::Io, "gone", None));
        l.record_close(close_record(1006));
        let binds = [
            (EventKind::Close, 1),
            (EventKind::Error, 2),
            (EventKind::Open, 3),
            (EventKind::Close, 4),
            (EventKind::Error, 5),
            (EventKind::Open, 6),
        ];
        for (kind, id) in binds {
            assert_eq!(
                l.bind(kind, probe(id, &dropped)).unwrap(),
                Bound::NeedsReplay
            );
        }
        let order = l.take_replays();
        let ids = |v: &[PendingReplay]| -> Vec<usize> {
            v.iter()
                .map(|(_, w)| w.upgrade().unwrap().listener.identity().0)
                .collect()
        };
        assert_eq!(ids(&order.before_held), [3, 6]);
        assert_eq!(ids(&order.after_held), [2, 5, 1, 4]);
    }

    #[test]
    fn duplicates_are_disarmed_and_unbind_marks_removed() {
        let l = Listeners::default();
        let dropped = Arc::new(AtomicUsize::new(0));
        l.bind(EventKind::Message, probe(7, &dropped)).unwrap();
        assert_eq!(
            l.bind(EventKind::Message, probe(7, &dropped)).unwrap(),
            Bound::Duplicate
        );
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "the duplicate is dropped"
        );
        let snapshot = l.snapshot(EventKind::Message);
        assert!(l.unbind(EventKind::Message, ListenerId(7, 0)));
        assert!(!l.unbind(EventKind::Message, ListenerId(7, 0)));
        assert!(snapshot[0].is_removed());
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "the snapshot still holds it"
        );
        drop(snapshot);
        assert_eq!(dropped.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn messages_are_held_until_a_listener_comes_then_leave_in_order() {
        let l = Listeners::default();
        let dropped = Arc::new(AtomicUsize::new(0));
        let Err(m) = l.ready_for(Message::text("a")) else {
            panic!("no listener: the message must be held");
        };
        l.hold(m);
        l.hold(Message::binary(vec![1, 2, 3]));
        assert_eq!(l.held_bytes(), 4);
        assert!(l.next_held().is_none(), "no listener yet");
        assert_eq!(
            l.bind(EventKind::Message, probe(1, &dropped)).unwrap(),
            Bound::NeedsHeld
        );
        // A new message must queue behind the held ones.
        let Err(newer) = l.ready_for(Message::text("c")) else {
            panic!("held messages go first");
        };
        l.hold(newer);
        let texts: Vec<Message> = std::iter::from_fn(|| l.next_held().map(|(m, _)| m)).collect();
        assert_eq!(
            texts,
            [
                Message::text("a"),
                Message::binary(vec![1, 2, 3]),
                Message::text("c")
            ]
        );
        assert_eq!(l.held_bytes(), 0);
        assert!(
            l.ready_for(Message::text("d")).is_ok(),
            "the fast path again"
        );
    }

    #[test]
    fn sealing_returns_every_binding_and_refuses_new_ones() {
        let l = Listeners::default();
        let dropped = Arc::new(AtomicUsize::new(0));
        l.bind(EventKind::Open, probe(1, &dropped)).unwrap();
        l.bind(EventKind::Close, probe(2, &dropped)).unwrap();
        l.hold(Message::text("held"));
        let lists = l.seal();
        assert!(lists.iter().flat_map(|l| l.iter()).all(|b| b.is_removed()));
        drop(lists);
        assert_eq!(dropped.load(Ordering::SeqCst), 2);
        assert_eq!(l.held_bytes(), 0);
        let err = l.bind(EventKind::Open, probe(3, &dropped)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidHandle);
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            3,
            "the refused listener is released"
        );
    }

    impl Listeners {
        fn snapshot(&self, kind: EventKind) -> BindingList {
            lock(&self.record).lists[kind.index()].clone()
        }
    }
}
