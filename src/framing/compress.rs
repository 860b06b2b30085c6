//! Compressing outgoing messages (RFC 7692 7.2.1), on the thread that
//! sends them: never under the outbox lock, which the IO thread takes too,
//! so a large message delays only its sender.

use std::cell::RefCell;
use std::sync::{Mutex, MutexGuard};

use flate2::{Compress, Compression, FlushCompress};

use super::negotiate::Agreement;
use crate::sync::lock;

/// A sync flush ends with an empty stored block, which the sender strips
/// and the receiver appends back (RFC 7692 7.2.1).
pub(crate) const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// Scratch buffers above this are given back after use, so one huge
/// message does not pin its size on the thread.
const SCRATCH_KEEP: usize = 1 << 20;

/// How one socket compresses, as agreed and as the options set.
pub struct Compressor {
    level: u32,
    /// 9..=15; `None` when the server limited us to 8 bits: raw deflate
    /// cannot make that window, so every message goes uncompressed (legal,
    /// RFC 7692 6) rather than with a wider window than allowed.
    window_bits: Option<u8>,
    no_context_takeover: bool,
    threshold: usize,
    /// Our context, kept between messages (context takeover), allocated
    /// with the first compressed message. Locked for a whole send, so the
    /// socket's messages reach the outbox in the order they were
    /// compressed.
    context: Mutex<Option<Box<Compress>>>,
}

thread_local! {
    /// Without context takeover a context holds nothing between messages,
    /// so one per sending thread serves every such socket: (level, window
    /// bits, context).
    static SHARED: RefCell<Option<(u32, u8, Compress)>> = const { RefCell::new(None) };
    /// Where messages are compressed before the outbox copies them.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A send in progress: holds the socket's send order.
pub struct Sending<'a> {
    compressor: &'a Compressor,
    context: MutexGuard<'a, Option<Box<Compress>>>,
}

impl Compressor {
    pub fn new(agreement: &Agreement, level: u32, threshold: usize) -> Compressor {
        let bits = agreement.client_max_window_bits;
        Compressor {
            level,
            window_bits: (bits > 8).then_some(bits),
            no_context_takeover: agreement.client_no_context_takeover,
            threshold,
            context: Mutex::new(None),
        }
    }

    /// Starts a send; other sends of the socket wait until it is dropped.
    pub fn begin(&self) -> Sending<'_> {
        Sending {
            compressor: self,
            context: lock(&self.context),
        }
    }

    fn new_context(&self, bits: u8) -> Compress {
        Compress::new_with_window_bits(Compression::new(self.level), false, bits)
    }
}

impl Sending<'_> {
    /// Runs `emit` with the message to put on the wire: `Some` compressed
    /// bytes, or `None` when `payload` goes as it is (our window is 8 bits,
    /// or it is under the threshold without context takeover).
    pub fn with_message<R>(&mut self, payload: &[u8], emit: impl FnOnce(Option<&[u8]>) -> R) -> R {
        let c = self.compressor;
        let Some(bits) = c.window_bits else {
            return emit(None);
        };
        if c.no_context_takeover && payload.len() < c.threshold {
            return emit(None);
        }
        SCRATCH.with(|scratch| {
            let mut out = scratch.borrow_mut();
            let compressed = if c.no_context_takeover {
                SHARED.with(|shared| {
                    let mut shared = shared.borrow_mut();
                    let context = match &mut *shared {
                        Some((level, b, context)) if *level == c.level && *b == bits => context,
                        slot => &mut slot.insert((c.level, bits, c.new_context(bits))).2,
                    };
                    let done = deflate(context, payload, &mut out);
                    context.reset();
                    done
                })
            } else {
                let context = self
                    .context
                    .get_or_insert_with(|| Box::new(c.new_context(bits)));
                let done = deflate(context, payload, &mut out);
                if !done {
                    // Its state is unknown: start afresh. A fresh context
                    // only refers to what it compressed itself, so the
                    // peer, which still has the old window, decodes it.
                    context.reset();
                }
                done
            };
            let result = emit(compressed.then_some(&out[..]));
            if out.capacity() > SCRATCH_KEEP {
                *out = Vec::new();
            }
            result
        })
    }
}

/// Compresses one message into `out` with a sync flush and strips the
/// flush's tail. False if zlib failed (it does not on valid parameters).
fn deflate(context: &mut Compress, payload: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let start = context.total_in();
    loop {
        let taken = (context.total_in() - start) as usize;
        // Room for the rest, plus the flush marker and block headers.
        out.reserve(payload.len() - taken + 64);
        if context
            .compress_vec(&payload[taken..], out, FlushCompress::Sync)
            .is_err()
        {
            return false;
        }
        let taken = (context.total_in() - start) as usize;
        // The flush is complete once zlib stops short of filling `out`.
        if taken == payload.len() && out.len() < out.capacity() {
            break;
        }
    }
    if !out.ends_with(&TAIL) {
        return false;
    }
    out.truncate(out.len() - TAIL.len());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    fn agreement(bits: u8, reset: bool) -> Agreement {
        Agreement {
            client_max_window_bits: bits,
            server_max_window_bits: 15,
            client_no_context_takeover: reset,
            server_no_context_takeover: false,
        }
    }

    /// What a peer's inflater makes of our messages, with a 15-bit window
    /// kept across messages (as RFC 7692 7.2.2 reads them).
    struct Peer(Decompress);

    impl Peer {
        fn new() -> Peer {
            Peer(Decompress::new(false))
        }

        fn read(&mut self, message: &[u8]) -> Vec<u8> {
            let mut input = message.to_vec();
            input.extend_from_slice(&TAIL);
            let mut out = Vec::with_capacity(1 << 20);
            let start = self.0.total_in();
            self.0
                .decompress_vec(&input, &mut out, FlushDecompress::Sync)
                .expect("valid deflate");
            assert_eq!((self.0.total_in() - start) as usize, input.len());
            out
        }
    }

    fn send(c: &Compressor, payload: &[u8]) -> Option<Vec<u8>> {
        c.begin().with_message(payload, |m| m.map(<[u8]>::to_vec))
    }

    #[test]
    fn hello_compresses_as_rfc_7692_shows() {
        let c = Compressor::new(&agreement(15, false), 6, 0);
        // 7.2.3.1 and 7.2.3.2: the second "Hello" refers to the first.
        assert_eq!(
            send(&c, b"Hello").unwrap(),
            [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
        assert_eq!(send(&c, b"Hello").unwrap(), [0xf2, 0x00, 0x11, 0x00, 0x00]);
        // 7.2.3.6: an empty message is one 0x00 byte.
        let fresh = Compressor::new(&agreement(15, true), 6, 0);
        assert_eq!(send(&fresh, b"").unwrap(), [0x00]);
    }

    #[test]
    fn every_window_and_takeover_mix_round_trips() {
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("{{\"id\":{i},\"name\":\"item {}\"}},", i % 97).into_bytes())
            .collect();
        for bits in 9..=15 {
            for reset in [false, true] {
                for level in [0, 1, 6, 9] {
                    let c = Compressor::new(&agreement(bits, reset), level, 0);
                    let mut peer = Peer::new();
                    for (i, len) in [0, 1, 100, 5000, text.len(), 300].into_iter().enumerate() {
                        let message = &text[i * 7..i * 7 + len.min(text.len() - i * 7)];
                        let wire = send(&c, message).expect("compressed");
                        if level > 0 && message.len() > 1000 {
                            assert!(wire.len() < message.len() / 2, "bits {bits} level {level}");
                        }
                        assert_eq!(
                            peer.read(&wire),
                            message,
                            "bits {bits} reset {reset} level {level}"
                        );
                        if reset {
                            // A fresh peer decodes it too: no reference to
                            // an earlier message.
                            assert_eq!(Peer::new().read(&wire), message);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn window_8_and_small_messages_go_uncompressed() {
        let narrow = Compressor::new(&agreement(8, false), 6, 0);
        assert_eq!(send(&narrow, &[b'a'; 5000]), None);
        let reset = Compressor::new(&agreement(15, true), 6, 1024);
        assert_eq!(send(&reset, &[b'a'; 1023]), None);
        assert!(send(&reset, &[b'a'; 1024]).is_some());
        // With context takeover, small messages still shrink against the
        // window: the threshold does not apply.
        let takeover = Compressor::new(&agreement(15, false), 6, 1024);
        assert!(send(&takeover, b"tiny").is_some());
    }
}
