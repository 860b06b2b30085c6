//! A connection's six timers, as plain values: the reactor's timer heap
//! only ever needs the earliest, and each connection step says which to set
//! or clear.

use std::time::Instant;

/// Which timer came due; in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    /// The connection was not open within the connect timeout.
    Connect,
    /// The closing handshake did not finish within the close timeout.
    Close,
    /// No pong came within the pong timeout of a ping.
    Pong,
    /// Time to send a keepalive ping.
    Ping,
    /// Time to try connecting again (automatic reconnection).
    Retry,
    /// Time to start connecting to the next address (Happy Eyeballs).
    Attempt,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Deadlines {
    pub connect: Option<Instant>,
    pub close: Option<Instant>,
    pub ping: Option<Instant>,
    pub pong: Option<Instant>,
    pub retry: Option<Instant>,
    pub attempt: Option<Instant>,
}

impl Deadlines {
    pub fn connecting_until(at: Instant) -> Deadlines {
        Deadlines {
            connect: Some(at),
            ..Deadlines::default()
        }
    }

    /// The earliest deadline, for the reactor's timer heap.
    pub fn next(&self) -> Option<Instant> {
        [
            self.connect,
            self.close,
            self.ping,
            self.pong,
            self.retry,
            self.attempt,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The first timer due at `now`, in check order: a failed connect or a
    /// stuck close wins over keepalive.
    pub fn due(&self, now: Instant) -> Option<Due> {
        let is_due = |d: Option<Instant>| d.is_some_and(|d| d <= now);
        [
            (self.connect, Due::Connect),
            (self.close, Due::Close),
            (self.pong, Due::Pong),
            (self.ping, Due::Ping),
            (self.retry, Due::Retry),
            (self.attempt, Due::Attempt),
        ]
        .into_iter()
        .find_map(|(at, due)| is_due(at).then_some(due))
    }

    /// Waiting to reconnect: nothing else runs until `at`.
    pub fn retry_at(at: Instant) -> Deadlines {
        Deadlines {
            retry: Some(at),
            ..Deadlines::default()
        }
    }

    /// Closing or failing: no more pings, and no pong awaited.
    pub fn stop_keepalive(&mut self) {
        self.ping = None;
        self.pong = None;
    }

    /// A ping goes out now: the next one after `interval`, and a pong is
    /// awaited by `pong_by` unless an earlier ping's deadline stands.
    pub fn ping_sent(&mut self, next_ping: Instant, pong_by: Instant) {
        self.ping = Some(next_ping);
        self.pong.get_or_insert(pong_by);
    }

    /// The closing handshake has until `at`; an earlier deadline stands
    /// unless `restart`.
    pub fn close_by(&mut self, at: Instant, restart: bool) {
        if restart || self.close.is_none() {
            self.close = Some(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(ms: u64, base: Instant) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn next_is_the_earliest_set() {
        let t = Instant::now();
        let mut d = Deadlines::connecting_until(at(300, t));
        assert_eq!(d.next(), Some(at(300, t)));
        d.ping_sent(at(100, t), at(200, t));
        assert_eq!(d.next(), Some(at(100, t)));
        d.connect = None;
        d.stop_keepalive();
        assert_eq!(d.next(), None);
        assert_eq!(d, Deadlines::default());
    }

    #[test]
    fn due_checks_connect_then_close_then_pong_then_ping_then_retry_then_attempt() {
        let t = Instant::now();
        let all = Deadlines {
            connect: Some(at(1, t)),
            close: Some(at(1, t)),
            ping: Some(at(1, t)),
            pong: Some(at(1, t)),
            retry: Some(at(1, t)),
            attempt: Some(at(1, t)),
        };
        assert_eq!(all.due(t), None, "nothing is due early");
        let now = at(1, t);
        let mut d = all;
        let mut order = Vec::new();
        while let Some(due) = d.due(now) {
            order.push(due);
            match due {
                Due::Connect => d.connect = None,
                Due::Close => d.close = None,
                Due::Pong => d.pong = None,
                Due::Ping => d.ping = None,
                Due::Retry => d.retry = None,
                Due::Attempt => d.attempt = None,
            }
        }
        assert_eq!(
            order,
            [
                Due::Connect,
                Due::Close,
                Due::Pong,
                Due::Ping,
                Due::Retry,
                Due::Attempt
            ]
        );
    }

    #[test]
    fn a_pong_deadline_stands_across_pings() {
        let t = Instant::now();
        let mut d = Deadlines::default();
        d.ping_sent(at(100, t), at(150, t));
        d.ping_sent(at(200, t), at(250, t));
        assert_eq!(d.pong, Some(at(150, t)), "the first unanswered ping counts");
        assert_eq!(d.ping, Some(at(200, t)));
    }

    #[test]
    fn close_deadline_restarts_only_when_asked() {
        let t = Instant::now();
        let mut d = Deadlines::default();
        d.close_by(at(10, t), false);
        d.close_by(at(20, t), false);
        assert_eq!(d.close, Some(at(10, t)));
        d.close_by(at(30, t), true);
        assert_eq!(d.close, Some(at(30, t)));
    }
}
