//! The one parser of incoming bytes that wsembed keeps beside
//! tungstenite's: it splits the stream (the HTTP answer head, then server
//! frames) into pieces without copying, and keeps its place across reads of
//! any size, down to one byte.
//!
//! Its users: `tally` (counts messages and keeps the peer's close code on
//! every connection) and, with the `deflate` feature, `inflate` (rewrites
//! compressed messages into plain frames for tungstenite).

// Without `deflate` only the tally reads it, which needs less of a piece.
#![cfg_attr(not(feature = "deflate"), allow(dead_code))]

/// The longest frame header: 2 bytes, 8 of extended length, 4 of mask.
pub(crate) const MAX_HEADER: usize = 14;
const HEAD_END: &[u8] = b"\r\n\r\n";

pub(crate) const OPCODE_CONTINUE: u8 = 0x0;
pub(crate) const OPCODE_TEXT: u8 = 0x1;
pub(crate) const OPCODE_BINARY: u8 = 0x2;
pub(crate) const OPCODE_CLOSE: u8 = 0x8;

/// A whole frame header as it was on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    bytes: [u8; MAX_HEADER],
    len: u8,
    payload_len: u64,
}

impl Header {
    #[inline]
    pub fn fin(&self) -> bool {
        self.bytes[0] & 0x80 != 0
    }

    #[inline]
    pub fn rsv1(&self) -> bool {
        self.bytes[0] & 0x40 != 0
    }

    /// RSV2 or RSV3: no extension of ours gives them a meaning.
    #[inline]
    pub fn other_rsv(&self) -> bool {
        self.bytes[0] & 0x30 != 0
    }

    #[inline]
    pub fn opcode(&self) -> u8 {
        self.bytes[0] & 0x0F
    }

    #[inline]
    pub fn is_control(&self) -> bool {
        self.bytes[0] & 0x08 != 0
    }

    #[inline]
    pub fn masked(&self) -> bool {
        self.bytes[1] & 0x80 != 0
    }

    #[cfg(test)]
    pub fn payload_len(&self) -> u64 {
        self.payload_len
    }

    /// The header's bytes, exactly as read.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The length of a frame header from its first two bytes.
fn header_len(first_two: [u8; 2]) -> usize {
    let extended = match first_two[1] & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if first_two[1] & 0x80 != 0 { 4 } else { 0 };
    2 + extended + mask
}

fn payload_len(h: &[u8]) -> u64 {
    match h[1] & 0x7F {
        126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
        127 => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
        n => u64::from(n),
    }
}

/// A piece of the stream, borrowed from the bytes given to `Scanner::next`.
#[derive(Debug)]
pub enum Piece<'a> {
    /// Bytes of the HTTP answer head; `end` when they finish it.
    Head { bytes: &'a [u8], end: bool },
    /// A frame header, once all its bytes came.
    Header(Header),
    /// Payload bytes of the current frame; `last` when they end it. A frame
    /// with no payload gets one empty last piece.
    Payload { bytes: &'a [u8], last: bool },
}

#[derive(Debug)]
enum Position {
    /// Inside the HTTP answer head; the count of `HEAD_END` bytes matched.
    Head(usize),
    /// Gathering a frame header.
    Header {
        bytes: [u8; MAX_HEADER],
        have: usize,
    },
    /// Inside a payload, with this many bytes left.
    Payload(u64),
}

#[derive(Debug)]
pub struct Scanner {
    position: Position,
}

impl Default for Scanner {
    /// A scanner for a client's stream: the answer head comes first.
    fn default() -> Self {
        Scanner {
            position: Position::Head(0),
        }
    }
}

impl Scanner {
    /// The next piece at the start of `bytes`, and how many of them it
    /// took. `None` once `bytes` is used up without completing a piece (a
    /// partial header is kept).
    ///
    /// Always inlined: the tally calls it for every read on every
    /// connection, and inlined it costs the round trip about 60 fewer
    /// instructions (callgrind), close to the tally's own loop of before.
    #[inline(always)]
    pub fn next<'a>(&mut self, bytes: &'a [u8]) -> (usize, Option<Piece<'a>>) {
        match &mut self.position {
            Position::Head(matched) => {
                if bytes.is_empty() {
                    return (0, None);
                }
                for (i, &b) in bytes.iter().enumerate() {
                    *matched = if b == HEAD_END[*matched] {
                        *matched + 1
                    } else if b == HEAD_END[0] {
                        1
                    } else {
                        0
                    };
                    if *matched == HEAD_END.len() {
                        self.position = Position::Header {
                            bytes: [0; MAX_HEADER],
                            have: 0,
                        };
                        let head = &bytes[..=i];
                        return (
                            i + 1,
                            Some(Piece::Head {
                                bytes: head,
                                end: true,
                            }),
                        );
                    }
                }
                let piece = Piece::Head { bytes, end: false };
                (bytes.len(), Some(piece))
            }
            Position::Header { bytes: h, have } => {
                let mut used = 0;
                for &b in bytes {
                    h[*have] = b;
                    *have += 1;
                    used += 1;
                    if *have < 2 || *have < header_len([h[0], h[1]]) {
                        continue;
                    }
                    let header = Header {
                        bytes: *h,
                        len: *have as u8,
                        payload_len: payload_len(&h[..*have]),
                    };
                    self.position = Position::Payload(header.payload_len);
                    return (used, Some(Piece::Header(header)));
                }
                (used, None)
            }
            Position::Payload(left) => {
                if *left > 0 && bytes.is_empty() {
                    return (0, None);
                }
                let take = bytes
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= take as u64;
                let last = *left == 0;
                if last {
                    self.position = Position::Header {
                        bytes: [0; MAX_HEADER],
                        have: 0,
                    };
                }
                (
                    take,
                    Some(Piece::Payload {
                        bytes: &bytes[..take],
                        last,
                    }),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every piece of `stream` fed in slices of `step` bytes, with the
    /// payload pieces of a frame joined.
    fn pieces(stream: &[u8], step: usize) -> Vec<String> {
        let mut scanner = Scanner::default();
        let mut out = Vec::new();
        let mut payload = Vec::new();
        let mut head = Vec::new();
        for chunk in stream.chunks(step) {
            let mut rest = chunk;
            loop {
                let (used, piece) = scanner.next(rest);
                rest = &rest[used..];
                match piece {
                    None => break,
                    Some(Piece::Head { bytes, end }) => {
                        head.extend_from_slice(bytes);
                        if end {
                            out.push(format!("head {}", head.len()));
                        }
                    }
                    Some(Piece::Header(h)) => out.push(format!(
                        "frame op {} fin {} rsv1 {} len {}",
                        h.opcode(),
                        h.fin(),
                        h.rsv1(),
                        h.payload_len()
                    )),
                    Some(Piece::Payload { bytes, last }) => {
                        payload.extend_from_slice(bytes);
                        if last {
                            out.push(format!("payload {:?}", String::from_utf8_lossy(&payload)));
                            payload.clear();
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_same_pieces_come_at_every_read_size() {
        let mut stream = b"HTTP/1.1 101 OK\r\nA: b\r\n\r\n".to_vec();
        stream.extend([0x81, 0x02, b'h', b'i']);
        stream.extend([0xC1, 0x00]);
        stream.extend([0x02, 0x7E, 0x00, 0x03, b'a', b'b', b'c']);
        stream.extend([0x89, 0x01, b'p']);
        stream.extend([0x80, 0x01, b'z']);
        let expected = pieces(&stream, stream.len());
        assert_eq!(
            expected,
            [
                "head 25",
                "frame op 1 fin true rsv1 false len 2",
                "payload \"hi\"",
                "frame op 1 fin true rsv1 true len 0",
                "payload \"\"",
                "frame op 2 fin false rsv1 false len 3",
                "payload \"abc\"",
                "frame op 9 fin true rsv1 false len 1",
                "payload \"p\"",
                "frame op 0 fin true rsv1 false len 1",
                "payload \"z\"",
            ]
        );
        for step in 1..stream.len() {
            assert_eq!(pieces(&stream, step), expected, "reads of {step} bytes");
        }
    }

    #[test]
    fn a_header_keeps_its_bytes_and_long_lengths() {
        let mut scanner = Scanner {
            position: Position::Header {
                bytes: [0; MAX_HEADER],
                have: 0,
            },
        };
        let wire = [0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4];
        let (used, piece) = scanner.next(&wire);
        assert_eq!(used, 14);
        let Some(Piece::Header(h)) = piece else {
            panic!("a header")
        };
        assert_eq!(h.payload_len(), 1 << 32);
        assert!(h.masked());
        assert_eq!(h.as_bytes(), wire);
    }
}
