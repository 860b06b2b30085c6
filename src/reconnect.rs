//! Automatic reconnection, without IO: which endings are worth another
//! attempt, how long to wait before it, and when to give up. The IO
//! thread's connection asks this at every drop and sets a timer for the
//! answer; nothing here sleeps or reads a clock.

use std::time::Duration;

/// The retry policy of a socket (its options); `enabled` false means none.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectPolicy {
    pub enabled: bool,
    /// The first delay, and the cap the delays grow to.
    pub initial: Duration,
    pub max: Duration,
    /// Each failed attempt multiplies the delay by this (>= 1).
    pub multiplier: f64,
    /// Each delay is spread by up to this fraction either way (0..=1).
    pub jitter: f64,
    /// Consecutive failed attempts before giving up; 0: never give up.
    pub max_attempts: u32,
    /// A connection open this long resets the count of failures.
    pub stable: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            enabled: false,
            initial: Duration::from_millis(1000),
            max: Duration::from_millis(30_000),
            multiplier: 2.0,
            jitter: 0.2,
            max_attempts: 0,
            stable: Duration::from_millis(5000),
        }
    }
}

/// Why a connection ended, as far as retrying cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A failure, transient (the network, a timeout, a 5xx) or a fault
    /// that would recur.
    Failed { transient: bool },
    /// The connection closed with this code (1006 when no close frame came)
    /// without a failure of ours.
    Closed { code: u16 },
}

impl Cause {
    /// Whether the default policy tries again after this.
    pub fn is_retryable(self) -> bool {
        match self {
            Cause::Failed { transient } => transient,
            // 1000: the server ended the session on purpose. 1002, 1003,
            // 1007-1010: the same fault would recur.
            Cause::Closed { code } => {
                matches!(code, 1001 | 1005 | 1006 | 1011..=1014 | 3000..=4999)
            }
        }
    }
}

/// HTTP statuses of a refused handshake that say "later", not "never".
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 425 | 429 | 500..=599)
}

/// A `Retry-After` header's wait, when it is delta-seconds (the form
/// servers use for 429 and 503); an HTTP date is ignored.
pub fn parse_retry_after(value: &[u8]) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Anything longer than a day is a day: the caller can still close.
    let secs = text.parse::<u64>().unwrap_or(u64::MAX).min(86_400);
    Some(Duration::from_secs(secs))
}

/// One socket's count of consecutive failures and its jitter source.
#[derive(Debug, Clone)]
pub struct Backoff {
    failures: u32,
    rng: u64,
}

/// What to do after a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Attempt `attempt` (1-based since the last stable connection) after
    /// `delay`.
    Retry { attempt: u32, delay: Duration },
    /// `attempts` consecutive attempts failed: give up.
    GiveUp { attempts: u32 },
}

impl Backoff {
    /// `seed` varies per socket, so sockets dropped together do not retry
    /// together.
    pub fn new(seed: u64) -> Backoff {
        Backoff {
            failures: 0,
            // xorshift must not start at 0.
            rng: splitmix(seed) | 1,
        }
    }

    /// The connection stayed up long enough: the next drop starts over.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Counts a failed (or dropped) connection and says what comes next.
    /// `at_least` is the server's `Retry-After`, if it sent one.
    pub fn after_failure(
        &mut self,
        policy: &ReconnectPolicy,
        at_least: Option<Duration>,
    ) -> Decision {
        self.failures = self.failures.saturating_add(1);
        if policy.max_attempts > 0 && self.failures >= policy.max_attempts {
            return Decision::GiveUp {
                attempts: self.failures,
            };
        }
        let delay = self
            .delay(policy, self.failures)
            .max(at_least.unwrap_or_default());
        Decision::Retry {
            attempt: self.failures,
            delay,
        }
    }

    /// `min(max, initial × multiplier^(attempt-1))`, spread by the jitter.
    fn delay(&mut self, policy: &ReconnectPolicy, attempt: u32) -> Duration {
        let initial = policy.initial.as_secs_f64();
        let max = policy.max.as_secs_f64();
        let exponent = i32::try_from(attempt - 1).unwrap_or(i32::MAX);
        let base = (initial * policy.multiplier.powi(exponent)).min(max);
        let spread = policy.jitter * (2.0 * self.unit() - 1.0);
        let secs = (base * (1.0 + spread)).max(0.0);
        // Within what the event's u32 milliseconds can say.
        Duration::from_secs_f64(secs.min(u32::MAX as f64 / 1000.0))
    }

    /// A uniform draw in [0, 1): xorshift64*, plenty for spreading delays.
    fn unit(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(initial_ms: u64, max_ms: u64, jitter: f64, max_attempts: u32) -> ReconnectPolicy {
        ReconnectPolicy {
            enabled: true,
            initial: Duration::from_millis(initial_ms),
            max: Duration::from_millis(max_ms),
            multiplier: 2.0,
            jitter,
            max_attempts,
            stable: Duration::from_millis(5000),
        }
    }

    fn retry(d: Decision) -> (u32, u128) {
        match d {
            Decision::Retry { attempt, delay } => (attempt, delay.as_millis()),
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn delays_grow_by_the_multiplier_up_to_the_cap() {
        let p = policy(20, 160, 0.0, 0);
        let mut b = Backoff::new(1);
        let delays: Vec<_> = (0..6).map(|_| retry(b.after_failure(&p, None))).collect();
        assert_eq!(
            delays,
            [(1, 20), (2, 40), (3, 80), (4, 160), (5, 160), (6, 160)]
        );
        b.reset();
        assert_eq!(
            retry(b.after_failure(&p, None)),
            (1, 20),
            "reset starts over"
        );
    }

    #[test]
    fn jitter_stays_in_its_band_and_spreads() {
        let p = policy(1000, 30_000, 0.2, 0);
        let firsts: Vec<u128> = (0..50)
            .map(|seed| retry(Backoff::new(seed).after_failure(&p, None)).1)
            .collect();
        assert!(
            firsts.iter().all(|d| (800..=1200).contains(d)),
            "{firsts:?}"
        );
        let min = firsts.iter().min().unwrap();
        let max = firsts.iter().max().unwrap();
        assert!(max - min > 100, "not spread: {firsts:?}");
    }

    #[test]
    fn gives_up_after_max_attempts_consecutive_failures() {
        let p = policy(10, 100, 0.0, 3);
        let mut b = Backoff::new(7);
        assert_eq!(retry(b.after_failure(&p, None)).0, 1);
        assert_eq!(retry(b.after_failure(&p, None)).0, 2);
        assert_eq!(b.after_failure(&p, None), Decision::GiveUp { attempts: 3 });
    }

    #[test]
    fn retry_after_is_a_floor() {
        let p = policy(10, 100, 0.0, 0);
        let mut b = Backoff::new(3);
        let (_, ms) = retry(b.after_failure(&p, Some(Duration::from_secs(1))));
        assert_eq!(ms, 1000);
        assert_eq!(parse_retry_after(b" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(b"99999999999999999999999"),
            Some(Duration::from_secs(86_400))
        );
        for bad in [&b""[..], b"-1", b"1.5", b"Wed, 21 Oct 2015 07:28:00 GMT"] {
            assert_eq!(parse_retry_after(bad), None);
        }
    }

    #[test]
    fn the_default_policy_retries_what_may_pass() {
        let closed = |code| Cause::Closed { code }.is_retryable();
        for code in [1001, 1005, 1006, 1011, 1012, 1013, 1014, 3000, 4999] {
            assert!(closed(code), "{code}");
        }
        for code in [1000, 1002, 1003, 1007, 1008, 1009, 1010, 2999, 5000] {
            assert!(!closed(code), "{code}");
        }
        for status in [408, 425, 429, 500, 503, 599] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [301, 400, 401, 403, 404, 426] {
            assert!(!is_retryable_status(status), "{status}");
        }
    }
}
