//! What a socket has moved, over every connection it made. The IO thread
//! counts in plain fields as it goes and stores each total here where it
//! changes (a plain store, no read-modify-write: only the IO thread
//! writes), for any thread to read. The message path stores the handful
//! of counters it moves; the rest are stored at the rarer steps (open,
//! pings, close).

use std::sync::atomic::{AtomicU64, Ordering};

/// A socket's totals.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Bytes on the wire, TLS records and handshakes included.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Text and binary messages.
    pub messages_sent: u64,
    pub messages_received: u64,
    /// WebSocket frames of every kind, control frames included.
    pub frames_sent: u64,
    pub frames_received: u64,
    /// Message payload bytes, as the application sent and received them
    /// (before compression, after decompression).
    pub payload_bytes_sent: u64,
    pub payload_bytes_received: u64,
    /// From the start of the latest connection's attempt to its open.
    pub handshake_ms: u32,
    /// From the latest answered ping to its pong.
    pub last_rtt_us: u32,
    /// How many times the socket opened.
    pub connections: u32,
    pub pongs_received: u32,
    /// Pings sent (the caller's and keepalive's) and those answered by a
    /// pong with their payload, which set `last_rtt_us`.
    pub pings_sent: u32,
    pub pings_answered: u32,
}

const FIELDS: usize = 14;
/// `pings_answered`'s place: published last (see `publish`).
const ANSWERED: usize = FIELDS - 1;
const BYTES_SENT: usize = 0;
const BYTES_RECEIVED: usize = 1;

/// The published totals: each field on its own, so a reader may see one
/// pass's count of bytes with the previous pass's count of messages.
#[derive(Debug, Default)]
pub(crate) struct SharedStats {
    fields: [AtomicU64; FIELDS],
}

impl Stats {
    fn to_array(self) -> [u64; FIELDS] {
        [
            self.bytes_sent,
            self.bytes_received,
            self.messages_sent,
            self.messages_received,
            self.frames_sent,
            self.frames_received,
            self.payload_bytes_sent,
            self.payload_bytes_received,
            self.handshake_ms.into(),
            self.last_rtt_us.into(),
            self.connections.into(),
            self.pongs_received.into(),
            self.pings_sent.into(),
            self.pings_answered.into(),
        ]
    }

    fn from_array(a: [u64; FIELDS]) -> Stats {
        // The u32 fields were stored from u32s.
        let narrow = |v: u64| v as u32;
        Stats {
            bytes_sent: a[0],
            bytes_received: a[1],
            messages_sent: a[2],
            messages_received: a[3],
            frames_sent: a[4],
            frames_received: a[5],
            payload_bytes_sent: a[6],
            payload_bytes_received: a[7],
            handshake_ms: narrow(a[8]),
            last_rtt_us: narrow(a[9]),
            connections: narrow(a[10]),
            pongs_received: narrow(a[11]),
            pings_sent: narrow(a[12]),
            pings_answered: narrow(a[13]),
        }
    }
}

impl SharedStats {
    /// Stores every counter but the bytes on the wire, which the stream
    /// stores itself (see `store_bytes_sent`).
    pub fn publish(&self, stats: &Stats) {
        let values = stats.to_array();
        for (i, (field, value)) in self.fields[..ANSWERED].iter().zip(values).enumerate() {
            if i != BYTES_SENT && i != BYTES_RECEIVED {
                field.store(value, Ordering::Relaxed);
            }
        }
        // Last, and released: a reader that sees a ping answered also sees
        // its round trip.
        self.fields[ANSWERED].store(values[ANSWERED], Ordering::Release);
    }

    /// What sending moves: messages, their payload, their frames.
    pub fn publish_sent(&self, stats: &Stats) {
        self.fields[2].store(stats.messages_sent, Ordering::Relaxed);
        self.fields[4].store(stats.frames_sent, Ordering::Relaxed);
        self.fields[6].store(stats.payload_bytes_sent, Ordering::Relaxed);
    }

    pub fn bytes_sent(&self) -> u64 {
        self.fields[BYTES_SENT].load(Ordering::Relaxed)
    }

    pub fn bytes_received(&self) -> u64 {
        self.fields[BYTES_RECEIVED].load(Ordering::Relaxed)
    }

    pub fn store_bytes_sent(&self, total: u64) {
        self.fields[BYTES_SENT].store(total, Ordering::Relaxed);
    }

    pub fn store_bytes_received(&self, total: u64) {
        self.fields[BYTES_RECEIVED].store(total, Ordering::Relaxed);
    }

    /// What receiving a message moves, before its callback runs:
    /// messages, their payload, and frames (`frames_received`, the total).
    pub fn publish_received(&self, stats: &Stats, frames_received: u64) {
        self.fields[3].store(stats.messages_received, Ordering::Relaxed);
        self.fields[5].store(frames_received, Ordering::Relaxed);
        self.fields[7].store(stats.payload_bytes_received, Ordering::Relaxed);
    }

    pub fn read(&self) -> Stats {
        let answered = self.fields[ANSWERED].load(Ordering::Acquire);
        Stats::from_array(std::array::from_fn(|i| match i {
            ANSWERED => answered,
            _ => self.fields[i].load(Ordering::Relaxed),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_survives_publishing() {
        let stats = Stats {
            bytes_sent: 1,
            bytes_received: 2,
            messages_sent: 3,
            messages_received: 4,
            frames_sent: 5,
            frames_received: 6,
            payload_bytes_sent: 7,
            payload_bytes_received: 8,
            handshake_ms: 9,
            last_rtt_us: u32::MAX,
            connections: 11,
            pongs_received: 12,
            pings_sent: 13,
            pings_answered: 14,
        };
        let shared = SharedStats::default();
        assert_eq!(shared.read(), Stats::default());
        shared.publish(&stats);
        shared.store_bytes_sent(stats.bytes_sent);
        shared.store_bytes_received(stats.bytes_received);
        assert_eq!(shared.read(), stats);
        assert_eq!((shared.bytes_sent(), shared.bytes_received()), (1, 2));
    }
}
