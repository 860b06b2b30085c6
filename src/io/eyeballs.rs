//! Happy Eyeballs (RFC 8305): the order in which a host's addresses are
//! tried and when the next attempt starts, as plain values. The connection
//! owns the sockets; this says which address comes next and by when.
//!
//! Without it, an address that never answers (an IPv6 route that drops
//! packets, `localhost` resolving to a `::1` nobody listens on behind a
//! firewall) costs the whole connect timeout before the next is tried.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// RFC 8305 section 5: a delay below 10 ms would only add load.
const MIN_DELAY: Duration = Duration::from_millis(10);

/// The addresses of one host, raced: an attempt starts when the previous
/// one failed or `delay` after it started, whichever comes first.
#[derive(Debug)]
pub(super) struct Race {
    pending: VecDeque<SocketAddr>,
    /// `None`: one attempt at a time (the next only after a failure).
    delay: Option<Duration>,
    /// When the next attempt starts if none fails before.
    next_at: Option<Instant>,
    /// Why the latest failed attempt failed.
    last_error: Option<String>,
}

impl Race {
    /// `delay` zero: sequential.
    pub fn new(addrs: Vec<SocketAddr>, delay: Duration) -> Race {
        Race {
            pending: interleave(addrs),
            delay: (!delay.is_zero()).then(|| delay.max(MIN_DELAY)),
            next_at: None,
            last_error: None,
        }
    }

    /// The next address to try, now; arms the timer for the one after.
    pub fn start(&mut self, now: Instant) -> Option<SocketAddr> {
        let addr = self.pending.pop_front()?;
        self.next_at = match (self.delay, self.pending.is_empty()) {
            (Some(delay), false) => Some(now + delay),
            _ => None,
        };
        Some(addr)
    }

    /// An attempt failed (`why` says how): the next may start at once.
    pub fn failed(&mut self, why: String) {
        self.next_at = None;
        self.last_error = Some(why);
    }

    /// Why the latest failed attempt failed, once the race is lost.
    pub fn take_last_error(&mut self) -> Option<String> {
        self.last_error.take()
    }

    /// When the next attempt is due to start anyway.
    pub fn deadline(&self) -> Option<Instant> {
        self.next_at
    }

    /// Whether the next attempt is due at `now` (its timer fired).
    pub fn is_due(&self, now: Instant) -> bool {
        self.next_at.is_some_and(|at| at <= now)
    }

    #[cfg(test)]
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

/// RFC 8305 section 4: alternate the families, IPv6 first, each family in
/// the order the resolver gave (it sorted them by RFC 6724).
fn interleave(addrs: Vec<SocketAddr>) -> VecDeque<SocketAddr> {
    let (mut v6, mut v4): (VecDeque<_>, VecDeque<_>) =
        addrs.into_iter().partition(SocketAddr::is_ipv6);
    let mut order = VecDeque::with_capacity(v6.len() + v4.len());
    loop {
        match (v6.pop_front(), v4.pop_front()) {
            (None, None) => return order,
            (a, b) => order.extend(a.into_iter().chain(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn families_alternate_ipv6_first_each_in_resolver_order() {
        let race = Race::new(
            vec![
                addr("127.0.0.1:1"),
                addr("127.0.0.2:1"),
                addr("127.0.0.3:1"),
                addr("[::1]:1"),
                addr("[::2]:1"),
            ],
            Duration::from_millis(250),
        );
        let order: Vec<_> = race.pending.iter().map(ToString::to_string).collect();
        assert_eq!(
            order,
            [
                "[::1]:1",
                "127.0.0.1:1",
                "[::2]:1",
                "127.0.0.2:1",
                "127.0.0.3:1"
            ]
        );
        let only_v4 = Race::new(
            vec![addr("127.0.0.1:1"), addr("127.0.0.2:1")],
            Duration::ZERO,
        );
        assert_eq!(only_v4.pending, [addr("127.0.0.1:1"), addr("127.0.0.2:1")]);
    }

    #[test]
    fn the_next_attempt_starts_after_the_delay_or_at_a_failure() {
        let t0 = Instant::now();
        let delay = Duration::from_millis(250);
        let mut race = Race::new(
            vec![addr("[::1]:1"), addr("127.0.0.1:1"), addr("[::2]:1")],
            delay,
        );
        assert_eq!(race.start(t0), Some(addr("[::1]:1")));
        assert_eq!(race.deadline(), Some(t0 + delay));
        assert!(!race.is_due(t0 + Duration::from_millis(249)));
        assert!(race.is_due(t0 + delay));
        // The timer fired: the second starts, the third is armed.
        let t1 = t0 + delay;
        assert_eq!(race.start(t1), Some(addr("127.0.0.1:1")));
        assert_eq!(race.deadline(), Some(t1 + delay));
        // A failure before it: no waiting for the timer.
        race.failed("refused".into());
        assert_eq!(race.deadline(), None);
        assert_eq!(race.take_last_error().as_deref(), Some("refused"));
        assert_eq!(race.start(t1), Some(addr("[::2]:1")));
        // The last one arms nothing.
        assert_eq!(race.deadline(), None);
        assert!(!race.has_pending());
        assert_eq!(race.start(t1), None);
    }

    #[test]
    fn zero_is_sequential_and_tiny_delays_are_raised() {
        let t0 = Instant::now();
        let mut sequential = Race::new(vec![addr("[::1]:1"), addr("127.0.0.1:1")], Duration::ZERO);
        sequential.start(t0);
        assert_eq!(sequential.deadline(), None);
        assert!(sequential.has_pending());
        let mut tiny = Race::new(
            vec![addr("[::1]:1"), addr("127.0.0.1:1")],
            Duration::from_millis(1),
        );
        tiny.start(t0);
        assert_eq!(tiny.deadline(), Some(t0 + MIN_DELAY));
    }
}
