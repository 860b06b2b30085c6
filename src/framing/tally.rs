//! Counts the complete messages in the bytes a plain TCP stream hands to
//! tungstenite, so the connection knows when tungstenite's buffer holds no
//! message yet.
//!
//! Why: tungstenite zeroes the free part of its read buffer (up to 16 KiB)
//! before every read of the stream, even one that can only say "would
//! block". After a short read the kernel has nothing more, and if every
//! complete message delivered so far has been taken, asking tungstenite for
//! another one would cost that zeroing and find nothing; measured, it was
//! 3% of a small-message round trip.
//!
//! What counts: each frame that makes tungstenite's `read` return a message,
//! that is every control frame and every data frame with FIN set (other
//! fragments are folded in without a return). Frames tungstenite rejects
//! end the connection, so they need no exactness here.
//!
//! The stream starts with the HTTP answer to the opening handshake, whose
//! end (the first blank line) is where frames begin; tungstenite keeps the
//! bytes after it, so the count starts right there.
//!
//! It also keeps the code of the peer's first close frame as it was on the
//! wire: tungstenite reports a code that may not be sent as 1002, which a
//! peer may also send itself, so only the wire can tell them apart.

use super::scan::{Piece, Scanner, OPCODE_CLOSE};

/// The code of the peer's first close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseCode {
    NotSeen,
    /// Inside the first close frame's payload: the code bytes so far.
    Reading {
        bytes: [u8; 2],
        have: usize,
    },
    /// The frame carried this code, or none (`None`: an empty payload).
    Seen(Option<u16>),
}

#[derive(Debug)]
pub struct FrameTally {
    scanner: Scanner,
    /// The frame being read makes tungstenite return a message.
    ends_message: bool,
    /// Complete messages delivered so far.
    complete: u64,
    /// Complete frames, of every kind.
    frames: u64,
    close_code: CloseCode,
}

impl Default for FrameTally {
    fn default() -> Self {
        FrameTally {
            scanner: Scanner::default(),
            ends_message: false,
            complete: 0,
            frames: 0,
            close_code: CloseCode::NotSeen,
        }
    }
}

impl FrameTally {
    /// Complete frames in every byte fed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Complete messages in every byte fed so far.
    pub fn complete(&self) -> u64 {
        self.complete
    }

    /// The code of the peer's first close frame: `None` while none came
    /// whole, `Some(None)` for one without a code.
    pub fn peer_close_code(&self) -> Option<Option<u16>> {
        match self.close_code {
            CloseCode::Seen(code) => Some(code),
            CloseCode::NotSeen | CloseCode::Reading { .. } => None,
        }
    }

    /// Takes in the next bytes of the stream, in order.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        loop {
            let (used, piece) = self.scanner.next(bytes);
            bytes = &bytes[used..];
            match piece {
                None => return,
                Some(Piece::Head { .. }) => {}
                Some(Piece::Header(h)) => {
                    self.ends_message = h.fin() || h.is_control();
                    if h.opcode() == OPCODE_CLOSE && self.close_code == CloseCode::NotSeen {
                        self.close_code = CloseCode::Reading {
                            bytes: [0; 2],
                            have: 0,
                        };
                    }
                }
                Some(Piece::Payload {
                    bytes: payload,
                    last,
                }) => {
                    if let CloseCode::Reading { bytes: code, have } = &mut self.close_code {
                        for &b in payload.iter().take(2 - *have) {
                            code[*have] = b;
                            *have += 1;
                        }
                        if *have == 2 {
                            self.close_code = CloseCode::Seen(Some(u16::from_be_bytes(*code)));
                        } else if last {
                            // No code, or a one-byte payload (which
                            // tungstenite refuses).
                            self.close_code = CloseCode::Seen(None);
                        }
                    }
                    if last {
                        self.complete += u64::from(self.ends_message);
                        self.frames += 1;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{self, Read, Write};
    use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};

    use crate::framing::server_frame as frame;

    /// Bytes that arrive in chunks; reads past the arrived part would block.
    struct Arriving {
        data: Vec<u8>,
        arrived: usize,
        read: usize,
    }

    impl Read for Arriving {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.read == self.arrived {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.arrived - self.read);
            buf[..n].copy_from_slice(&self.data[self.read..self.read + n]);
            self.read += n;
            Ok(n)
        }
    }

    impl Write for Arriving {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self, below: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % below as u64) as usize
        }
    }

    /// A random valid server stream: text, binary, fragmented messages with
    /// control frames between fragments, pings, pongs; lengths in all three
    /// encodings.
    fn random_frames(rng: &mut XorShift) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..40 {
            let len = match rng.next(4) {
                0 => rng.next(126),
                1 => 126 + rng.next(2000),
                2 => 0x10000 + rng.next(5000),
                _ => 0,
            };
            let payload = vec![b'a'; len];
            match rng.next(5) {
                0 => out.extend(frame(0x81, &payload)),
                1 => out.extend(frame(0x82, &payload)),
                2 => out.extend(frame(0x89, &payload[..len.min(125)])),
                3 => out.extend(frame(0x8A, &payload[..len.min(125)])),
                _ => {
                    out.extend(frame(0x02, &payload));
                    out.extend(frame(0x89, b"between"));
                    out.extend(frame(0x00, &payload));
                    out.extend(frame(0x80, b"last"));
                }
            }
        }
        out
    }

    #[test]
    fn counts_what_tungstenite_returns_at_every_split() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for round in 0..30 {
            let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
            let frames = random_frames(&mut rng);
            let mut tally = FrameTally::default();
            tally.feed(head);
            assert_eq!(tally.complete(), 0);
            let config = WebSocketConfig::default().read_buffer_size(4096);
            let stream = Arriving {
                data: frames.clone(),
                arrived: 0,
                read: 0,
            };
            let mut ws = WebSocket::from_raw_socket(stream, Role::Client, Some(config));
            let mut returned = 0u64;
            while ws.get_ref().arrived < frames.len() {
                let from = ws.get_ref().arrived;
                let to = (from + 1 + rng.next(3000)).min(frames.len());
                ws.get_mut().arrived = to;
                tally.feed(&frames[from..to]);
                loop {
                    match ws.read() {
                        Ok(_) => returned += 1,
                        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                            break
                        }
                        Err(e) => panic!("round {round}: {e}"),
                    }
                }
                assert_eq!(tally.complete(), returned, "round {round}, {to} bytes");
            }
        }
    }

    #[test]
    fn keeps_the_first_close_code_as_sent_at_every_split() {
        let mut stream = b"HTTP/1.1 101 OK\r\n\r\n".to_vec();
        stream.extend(frame(0x81, b"before"));
        stream.extend(frame(0x88, &[0x03, 0xE7, b'x']));
        stream.extend(frame(0x88, &[0x03, 0xE8]));
        for split in 0..stream.len() {
            let mut tally = FrameTally::default();
            tally.feed(&stream[..split]);
            tally.feed(&stream[split..]);
            assert_eq!(tally.peer_close_code(), Some(Some(999)), "split at {split}");
        }
        let mut byte_by_byte = FrameTally::default();
        for b in &stream {
            assert_ne!(byte_by_byte.peer_close_code(), Some(Some(1000)));
            byte_by_byte.feed(std::slice::from_ref(b));
        }
        assert_eq!(byte_by_byte.peer_close_code(), Some(Some(999)));
    }

    #[test]
    fn a_close_frame_without_code_has_none() {
        let mut tally = FrameTally::default();
        tally.feed(b"HTTP/1.1 101 OK\r\n\r\n");
        assert_eq!(tally.peer_close_code(), None);
        tally.feed(&frame(0x88, b""));
        assert_eq!(tally.peer_close_code(), Some(None));
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line_even_across_reads() {
        let mut tally = FrameTally::default();
        tally.feed(b"HTTP/1.1 101 OK\r\nA: b\r");
        tally.feed(b"\n\r");
        assert_eq!(tally.complete(), 0);
        tally.feed(b"\n\x81\x02h");
        assert_eq!(tally.complete(), 0);
        tally.feed(b"i\x89\x00");
        assert_eq!(tally.complete(), 2);
    }

    #[test]
    fn every_frame_counts_as_a_frame_fragments_included() {
        let mut tally = FrameTally::default();
        tally.feed(b"HTTP/1.1 101 OK\r\n\r\n");
        // A text message in two fragments, a ping between them, a pong.
        tally.feed(&frame(0x01, b"he"));
        tally.feed(&frame(0x89, b""));
        tally.feed(&frame(0x80, b"llo"));
        assert_eq!((tally.frames(), tally.complete()), (3, 2));
        let pong = frame(0x8A, b"abc");
        tally.feed(&pong[..2]);
        assert_eq!(tally.frames(), 3, "a frame counts once whole");
        tally.feed(&pong[2..]);
        assert_eq!(tally.frames(), 4);
    }
}
