//! The read side of permessage-deflate (RFC 7692 7.2.2): a layer between
//! the transport and tungstenite that hands tungstenite plain frames.
//!
//! tungstenite refuses any frame with RSV1 set and has no extension hook,
//! so compressed messages are inflated before it sees them: each
//! compressed frame is re-emitted as plain frames (RSV1 cleared; the
//! message's opcode first, then continuations; FIN as it came), and every
//! other frame passes through as it is, control frames between fragments
//! included. tungstenite keeps doing everything else: close handshake,
//! pings, fragment rules, UTF-8, limits.
//!
//! During the opening handshake it hands on bytes only up to the end of
//! the answer head: tungstenite would otherwise read compressed frames
//! into its own buffer along with the head, past this layer. It then waits
//! for the connection to say what was agreed (`agree`).

use std::io::{self, Read};

use flate2::{Decompress, FlushDecompress, Status};

use super::compress::TAIL;
use super::encode::push_header;
use super::negotiate::Agreement;
use super::scan::{Header, Piece, Scanner, OPCODE_BINARY, OPCODE_CONTINUE, OPCODE_TEXT};
use super::FramingError;

/// Bytes read from the transport at a time.
const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    /// Where every connection of the thread (the IO thread) reads into.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}
/// Compressed bytes inflated per step: deflate expands at most about
/// 1032 times, so one step makes at most about 1 MiB.
const INFLATE_STEP: usize = 1024;
/// Inflated bytes per emitted frame, and the output held before stopping
/// to let tungstenite take it.
const FRAME_CHUNK: usize = 64 * 1024;
/// Buffers larger than this are given back once empty: what a socket
/// keeps between messages is what it costs idle.
const KEEP_IDLE: usize = 4 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Reading the answer head.
    Head,
    /// The head ended; the connection has not said what was agreed.
    Agreeing,
    /// No compression agreed: bytes pass through untouched.
    Plain,
    Inflating,
}

/// What the payload of the frame being read becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameUse {
    Copy,
    Inflate { fin: bool },
    Drop,
}

/// The data message in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Message {
    None,
    /// Uncompressed and fragmented: its continuations pass through.
    Plain,
    Compressed {
        opcode: u8,
        /// A frame of it was emitted: the next ones are continuations.
        started: bool,
        /// Inflated bytes so far, against the maximum message size.
        size: usize,
    },
}

/// Everything but the input and its parser, so a piece borrowed from the
/// input can be handled while the rest changes.
struct Rewriter {
    mode: Mode,
    no_context_takeover: bool,
    frame: FrameUse,
    message: Message,
    /// Allocated with the first compressed message; dropped after each
    /// message when the server resets its context.
    inflater: Option<Box<Decompress>>,
    /// The stream ended (BFINAL, RFC 7692 7.2.3.4) and nothing came since:
    /// the inflater was reset and needs no tail.
    stream_ended: bool,
    /// Inflated bytes not yet framed.
    pending: Vec<u8>,
    /// Bytes for tungstenite, from `out_start` on.
    out: Vec<u8>,
    out_start: usize,
    max_message: usize,
    error: ErrorState,
}

#[derive(Debug)]
enum ErrorState {
    None,
    /// Found; tungstenite gets it once the output before it is read.
    Pending(FramingError),
    /// Reported: data frames are dropped, control frames still pass so
    /// the closing handshake can finish.
    Reported,
}

pub struct Inflate {
    scanner: Scanner,
    /// Read and not yet used; usually empty.
    input: Vec<u8>,
    in_start: usize,
    in_end: usize,
    rw: Rewriter,
}

impl Inflate {
    /// For a connection that offered deflate; `max_message` caps each
    /// message while it inflates.
    pub fn new(max_message: usize) -> Inflate {
        Inflate {
            scanner: Scanner::default(),
            input: Vec::new(),
            in_start: 0,
            in_end: 0,
            rw: Rewriter {
                mode: Mode::Head,
                no_context_takeover: false,
                frame: FrameUse::Copy,
                message: Message::None,
                inflater: None,
                stream_ended: false,
                pending: Vec::new(),
                out: Vec::new(),
                out_start: 0,
                max_message,
                error: ErrorState::None,
            },
        }
    }

    /// What the handshake agreed (`None`: no compression). Bytes after the
    /// answer head flow from here on.
    pub fn agree(&mut self, agreement: Option<&Agreement>) {
        self.rw.mode = match agreement {
            Some(a) => {
                self.rw.no_context_takeover = a.server_no_context_takeover;
                Mode::Inflating
            }
            None => Mode::Plain,
        };
    }

    /// Bytes are held here that tungstenite has not read.
    pub fn has_buffered(&self) -> bool {
        self.in_start < self.in_end
            || self.rw.out_start < self.rw.out.len()
            || matches!(self.rw.error, ErrorState::Pending(_))
    }

    /// Reads from `src` and hands on plain frames. Never `Ok(0)` but at
    /// the end of `src`; "would block" only with nothing to hand on.
    pub fn read(&mut self, src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let rw = &mut self.rw;
            if rw.out_start < rw.out.len() {
                let n = buf.len().min(rw.out.len() - rw.out_start);
                buf[..n].copy_from_slice(&rw.out[rw.out_start..rw.out_start + n]);
                rw.out_start += n;
                if rw.out_start == rw.out.len() {
                    rw.out.clear();
                    rw.out_start = 0;
                    // An idle socket keeps no message-sized buffer.
                    if rw.out.capacity() > KEEP_IDLE {
                        rw.out = Vec::new();
                    }
                }
                return Ok(n);
            }
            if matches!(rw.error, ErrorState::Pending(_)) {
                let ErrorState::Pending(e) = std::mem::replace(&mut rw.error, ErrorState::Reported)
                else {
                    unreachable!("matched above");
                };
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            match rw.mode {
                Mode::Agreeing => return Err(io::ErrorKind::WouldBlock.into()),
                Mode::Plain if self.in_start < self.in_end => {
                    let n = buf.len().min(self.in_end - self.in_start);
                    buf[..n].copy_from_slice(&self.input[self.in_start..self.in_start + n]);
                    self.in_start += n;
                    return Ok(n);
                }
                Mode::Plain => {
                    self.input = Vec::new();
                    return src.read(buf);
                }
                Mode::Head | Mode::Inflating => {}
            }
            if self.in_start < self.in_end {
                // Left over from an earlier read (output filled up, or the
                // head ended before it).
                let input = std::mem::take(&mut self.input);
                let used = self.process(&input[self.in_start..self.in_end]);
                self.in_start += used;
                self.input = input;
                if self.in_start == self.in_end {
                    self.input = Vec::new();
                    self.in_start = 0;
                    self.in_end = 0;
                }
                continue;
            }
            // Read into the thread's buffer, not one per connection: an
            // idle socket keeps none, and what is not used now is copied.
            let ended = READ_BUFFER.with(|cell| -> io::Result<bool> {
                let mut chunk = cell.borrow_mut();
                if chunk.is_empty() {
                    chunk.resize(READ_CHUNK, 0);
                }
                let n = src.read(&mut chunk)?;
                if n == 0 {
                    return Ok(true);
                }
                let used = self.process(&chunk[..n]);
                if used < n {
                    self.input = chunk[used..n].to_vec();
                    self.in_start = 0;
                    self.in_end = n - used;
                }
                Ok(false)
            })?;
            if ended {
                return Ok(0);
            }
        }
    }

    /// Turns `input` into output until it is used up, enough output
    /// waits, or the head ended; returns the bytes used. Runs until the
    /// scanner has no piece left, not until no byte is left: a frame with
    /// an empty payload ends with a piece that takes no byte, and may be
    /// the last thing that came.
    fn process(&mut self, input: &[u8]) -> usize {
        let mut at = 0;
        while self.rw.out.len() < FRAME_CHUNK {
            if !matches!(self.rw.mode, Mode::Head | Mode::Inflating) {
                break;
            }
            let mut end = input.len();
            if let FrameUse::Inflate { .. } = self.rw.frame {
                end = end.min(at + INFLATE_STEP);
            }
            let (used, piece) = self.scanner.next(&input[at..end]);
            at += used;
            match piece {
                Some(piece) => self.rw.handle(piece),
                None => break,
            }
        }
        at
    }
}

impl Rewriter {
    fn handle(&mut self, piece: Piece<'_>) {
        match piece {
            Piece::Head { bytes, end } => {
                self.out.extend_from_slice(bytes);
                if end {
                    self.mode = Mode::Agreeing;
                }
            }
            Piece::Header(h) => {
                self.frame = self.classify(&h);
                if self.frame == FrameUse::Copy {
                    self.out.extend_from_slice(h.as_bytes());
                }
            }
            Piece::Payload { bytes, last } => match self.frame {
                FrameUse::Copy => self.out.extend_from_slice(bytes),
                FrameUse::Drop => {}
                FrameUse::Inflate { fin } => {
                    self.inflate(bytes);
                    if last && self.frame != FrameUse::Drop {
                        self.end_frame(fin);
                    }
                }
            },
        }
    }

    /// Decides what a frame's payload becomes, and fails the frames no
    /// peer may send with deflate agreed.
    fn classify(&mut self, h: &Header) -> FrameUse {
        if !matches!(self.error, ErrorState::None) {
            return if h.is_control() {
                FrameUse::Copy
            } else {
                FrameUse::Drop
            };
        }
        // tungstenite refuses these as they are.
        if h.masked() || h.other_rsv() {
            return FrameUse::Copy;
        }
        if h.is_control() {
            if h.rsv1() {
                return self.fail(1002, "the server set RSV1 on a control frame");
            }
            return FrameUse::Copy;
        }
        match (h.opcode(), self.message) {
            (OPCODE_CONTINUE, Message::Compressed { .. }) => {
                if h.rsv1() {
                    return self.fail(1002, "the server set RSV1 on a continuation frame");
                }
                FrameUse::Inflate { fin: h.fin() }
            }
            (OPCODE_CONTINUE, _) => {
                if h.rsv1() {
                    return self.fail(1002, "the server set RSV1 on a continuation frame");
                }
                if h.fin() {
                    self.message = Message::None;
                }
                FrameUse::Copy
            }
            (op @ (OPCODE_TEXT | OPCODE_BINARY), Message::None) => {
                if h.rsv1() {
                    self.message = Message::Compressed {
                        opcode: op,
                        started: false,
                        size: 0,
                    };
                    FrameUse::Inflate { fin: h.fin() }
                } else {
                    if !h.fin() {
                        self.message = Message::Plain;
                    }
                    FrameUse::Copy
                }
            }
            // A new message inside another, or a reserved opcode:
            // tungstenite refuses it as it is.
            _ => FrameUse::Copy,
        }
    }

    fn fail(&mut self, close_code: u16, message: impl Into<String>) -> FrameUse {
        self.error = ErrorState::Pending(FramingError {
            close_code,
            message: message.into(),
        });
        self.message = Message::None;
        self.pending.clear();
        self.inflater = None;
        self.frame = FrameUse::Drop;
        FrameUse::Drop
    }

    /// Inflates compressed bytes of the current message, framing what
    /// comes out in chunks; holds no more than the maximum message size.
    fn inflate(&mut self, mut input: &[u8]) {
        if !input.is_empty() {
            self.stream_ended = false;
        }
        // Until the input is used up and zlib stopped short of filling the
        // space it had: a full buffer may leave output inside zlib.
        loop {
            let Message::Compressed { size, .. } = self.message else {
                return;
            };
            // One byte past the maximum is enough to know it is too big.
            let room = self.max_message.saturating_sub(size).saturating_add(1);
            let want = FRAME_CHUNK.saturating_sub(self.pending.len()).max(1024);
            let spare = self.pending.capacity() - self.pending.len();
            self.pending
                .reserve_exact(want.min(room).saturating_sub(spare));
            let spare = self.pending.capacity() - self.pending.len();
            let inflater = self
                .inflater
                .get_or_insert_with(|| Box::new(Decompress::new(false)));
            let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
            let status = inflater.decompress_vec(input, &mut self.pending, FlushDecompress::None);
            let taken = (inflater.total_in() - in_before) as usize;
            let made = (inflater.total_out() - out_before) as usize;
            input = &input[taken..];
            let size = size + made;
            match status {
                Ok(Status::StreamEnd) => {
                    // A block with BFINAL set: what follows starts afresh.
                    inflater.reset(false);
                    self.stream_ended = input.is_empty();
                }
                Ok(_) => {}
                Err(e) => {
                    self.fail(1007, format!("invalid compressed data: {e}"));
                    return;
                }
            }
            if size > self.max_message {
                let max = self.max_message;
                self.fail(
                    1009,
                    format!("message too big: it inflates past the maximum of {max} bytes"),
                );
                return;
            }
            if let Message::Compressed { size: s, .. } = &mut self.message {
                *s = size;
            }
            if self.pending.len() >= FRAME_CHUNK {
                self.emit(false);
            }
            if input.is_empty() && made < spare {
                return;
            }
            if taken == 0 && made == 0 {
                self.fail(1007, "compressed data that cannot be inflated");
                return;
            }
        }
    }

    /// The current compressed frame ended: a message's last frame gets
    /// the sync-flush tail back and goes out with FIN.
    fn end_frame(&mut self, fin: bool) {
        if !fin {
            if !self.pending.is_empty() {
                self.emit(false);
            }
            return;
        }
        if !self.stream_ended {
            self.inflate(&TAIL);
            if !matches!(self.error, ErrorState::None) {
                return;
            }
        }
        self.stream_ended = false;
        self.emit(true);
        self.message = Message::None;
        if self.no_context_takeover {
            self.inflater = None;
        }
        if self.pending.capacity() > KEEP_IDLE {
            self.pending = Vec::new();
        }
    }

    /// Frames the pending inflated bytes for tungstenite (unmasked, as a
    /// server sends).
    fn emit(&mut self, fin: bool) {
        let Message::Compressed {
            opcode, started, ..
        } = &mut self.message
        else {
            return;
        };
        let op = if *started { OPCODE_CONTINUE } else { *opcode };
        *started = true;
        let first = if fin { 0x80 } else { 0 } | op;
        push_header(&mut self.out, first, 0, self.pending.len());
        self.out.extend_from_slice(&self.pending);
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};
    use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
    use tungstenite::Message as Ws;

    const HEAD: &[u8] =
        b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";

    use crate::framing::server_frame as frame;

    fn agreement(server_reset: bool) -> Agreement {
        Agreement {
            client_max_window_bits: 15,
            server_max_window_bits: 15,
            client_no_context_takeover: false,
            server_no_context_takeover: server_reset,
        }
    }

    /// Input that arrives `step` bytes per read, with "would block"
    /// between every two reads.
    struct Trickle {
        data: Cursor<Vec<u8>>,
        step: usize,
        blocked: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.blocked = !self.blocked;
            if self.blocked {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.step);
            self.data.read(&mut buf[..n])
        }
    }

    /// The shim over a stream, as tungstenite's stream.
    struct Shimmed {
        inflate: Inflate,
        src: Trickle,
    }

    impl Read for Shimmed {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.inflate.read(&mut self.src, buf)
        }
    }

    impl Write for Shimmed {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// What tungstenite makes of `frames` after the head, read `step`
    /// bytes at a time; the error that ended it, if any.
    fn messages(
        frames: &[u8],
        step: usize,
        server_reset: bool,
        max: usize,
    ) -> (Vec<Ws>, Option<String>) {
        let mut stream = HEAD.to_vec();
        stream.extend_from_slice(frames);
        let mut shimmed = Shimmed {
            inflate: Inflate::new(max),
            src: Trickle {
                data: Cursor::new(stream),
                step,
                blocked: false,
            },
        };
        // The handshake's reads stop at the end of the head.
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while head.len() < HEAD.len() {
            match shimmed.read(&mut buf) {
                Ok(n) => head.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(head, HEAD);
        for _ in 0..3 {
            let e = shimmed.read(&mut buf).expect_err("waits for the agreement");
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        }
        shimmed.inflate.agree(Some(&agreement(server_reset)));
        let config = WebSocketConfig::default()
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        let mut ws = WebSocket::from_raw_socket(shimmed, Role::Client, Some(config));
        let mut got = Vec::new();
        loop {
            match ws.read() {
                Ok(m) => got.push(m),
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::InvalidData => {
                    let framing = e.get_ref().and_then(|e| e.downcast_ref::<FramingError>());
                    let f = framing.expect("a framing error");
                    return (got, Some(format!("{} {}", f.close_code, f.message)));
                }
                Err(e) => return (got, Some(e.to_string())),
            }
        }
    }

    fn at_every_step(frames: &[u8], expected: &[Ws]) {
        for step in [1, 2, 3, 7, 100, 5000] {
            let (got, error) = messages(frames, step, false, 1 << 20);
            assert_eq!(got, expected, "reads of {step} bytes");
            assert!(
                error.unwrap().contains("Connection reset"),
                "ends at the end of input"
            );
        }
    }

    #[test]
    fn the_rfc_7692_vectors_inflate() {
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let text = |s: &str| Ws::text(s);
        // 7.2.3.1: one frame.
        at_every_step(&frame(0xC1, &hello), &[text("Hello")]);
        // 7.2.3.1: the same split across two frames.
        let mut split = frame(0x41, &hello[..3]);
        split.extend(frame(0x80, &hello[3..]));
        at_every_step(&split, &[text("Hello")]);
        // 7.2.3.2: the second message refers to the first one's window.
        let mut shared = frame(0xC1, &hello);
        shared.extend(frame(0xC1, &[0xf2, 0x00, 0x11, 0x00, 0x00]));
        at_every_step(&shared, &[text("Hello"), text("Hello")]);
        // 7.2.3.3: a stored block.
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        at_every_step(&frame(0xC1, &stored), &[text("Hello")]);
        // 7.2.3.4: BFINAL set, then an empty message, then Hello again.
        let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        let mut after = frame(0xC1, &bfinal);
        after.extend(frame(0xC1, &[0x00]));
        after.extend(frame(0xC1, &hello));
        at_every_step(&after, &[text("Hello"), text(""), text("Hello")]);
        // 7.2.3.5: two deflate blocks in one message.
        let two = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        at_every_step(&frame(0xC1, &two), &[text("Hello")]);
        // 7.2.3.6: an empty message, binary this time.
        at_every_step(&frame(0xC2, &[0x00]), &[Ws::binary(Vec::new())]);
    }

    #[test]
    fn control_and_plain_frames_pass_between_compressed_fragments() {
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let mut frames = frame(0x41, &hello[..2]);
        frames.extend(frame(0x89, b"ping"));
        frames.extend(frame(0x00, &hello[2..5]));
        frames.extend(frame(0x8A, b""));
        frames.extend(frame(0x80, &hello[5..]));
        // Uncompressed messages are legal with deflate agreed.
        frames.extend(frame(0x01, b"plain "));
        frames.extend(frame(0x89, b""));
        frames.extend(frame(0x80, b"text"));
        frames.extend(frame(0x82, &[1, 2, 3]));
        // A compressed message whose last fragment is empty, as the last
        // thing that came (Autobahn sends this when the compressed length
        // is a multiple of its fragment size).
        frames.extend(frame(0x41, &hello));
        frames.extend(frame(0x80, b""));
        at_every_step(
            &frames,
            &[
                Ws::Ping("ping".into()),
                Ws::Pong("".into()),
                Ws::text("Hello"),
                Ws::Ping("".into()),
                Ws::text("plain text"),
                Ws::binary(vec![1, 2, 3]),
                Ws::text("Hello"),
            ],
        );
    }

    #[test]
    fn big_messages_inflate_in_chunks_of_any_split() {
        let text: String = (0..30_000).map(|i| format!("{i},")).collect();
        let mut c = flate2::Compress::new(flate2::Compression::new(6), false);
        let mut wire = Vec::with_capacity(text.len());
        c.compress_vec(text.as_bytes(), &mut wire, flate2::FlushCompress::Sync)
            .unwrap();
        assert!(wire.ends_with(&TAIL));
        wire.truncate(wire.len() - 4);
        let third = wire.len() / 3;
        let mut frames = frame(0x41, &wire[..third]);
        frames.extend(frame(0x00, &wire[third..2 * third]));
        frames.extend(frame(0x80, &wire[2 * third..]));
        for step in [1, 13, 4096, 1 << 20] {
            let (got, _) = messages(&frames, step, true, 1 << 20);
            assert_eq!(got, [Ws::text(text.clone())], "reads of {step} bytes");
        }
    }

    #[test]
    fn misplaced_rsv1_is_a_protocol_error_after_what_came_before() {
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let mut frames = frame(0xC1, &hello);
        frames.extend(frame(0x41, &hello[..3]));
        frames.extend(frame(0xC0, &hello[3..]));
        let (got, error) = messages(&frames, 3, false, 1 << 20);
        assert_eq!(got, [Ws::text("Hello")]);
        assert_eq!(
            error.unwrap(),
            "1002 the server set RSV1 on a continuation frame"
        );
        let (_, error) = messages(&frame(0xC9, b""), 1, false, 1 << 20);
        assert_eq!(
            error.unwrap(),
            "1002 the server set RSV1 on a control frame"
        );
    }

    #[test]
    fn bad_data_is_invalid_and_a_bomb_stops_at_the_cap() {
        let (_, error) = messages(&frame(0xC2, &[0xff, 0xff, 0xff, 0xff]), 2, false, 1 << 20);
        assert!(error.unwrap().starts_with("1007 invalid compressed data"));
        // 1 KiB that inflates to 1 MiB, against a 64 KiB maximum.
        let zeros = vec![0u8; 1 << 20];
        let mut c = flate2::Compress::new(flate2::Compression::new(9), false);
        let mut bomb = Vec::with_capacity(1 << 16);
        c.compress_vec(&zeros, &mut bomb, flate2::FlushCompress::Sync)
            .unwrap();
        assert!(bomb.len() < 2048, "{} bytes", bomb.len());
        let mut shim = Inflate::new(64 << 10);
        let mut frames = HEAD.to_vec();
        frames.extend(frame(0xC2, &bomb));
        frames.extend(frame(0x88, &[0x03, 0xE8]));
        let mut src = Cursor::new(frames);
        let mut buf = vec![0u8; 1 << 20];
        assert_eq!(shim.read(&mut src, &mut buf).unwrap(), HEAD.len());
        shim.agree(Some(&agreement(false)));
        let mut handed_on = 0;
        let error = loop {
            match shim.read(&mut src, &mut buf) {
                Ok(n) => handed_on += n,
                Err(e) => break e,
            }
        };
        let f = error
            .get_ref()
            .unwrap()
            .downcast_ref::<FramingError>()
            .unwrap();
        assert_eq!(f.close_code, 1009);
        // It stopped at the cap: at most 64 KiB (and frame headers) went
        // on, and no buffer grew towards the bomb's size.
        assert!(handed_on <= (64 << 10) + 20, "{handed_on} bytes handed on");
        assert!(shim.rw.pending.capacity() <= (64 << 10) + 1);
        assert!(shim.rw.out.capacity() <= 256 << 10);
        // Afterwards control frames still pass, so the close completes.
        let n = shim.read(&mut src, &mut buf).unwrap();
        assert_eq!(&buf[..n], &[0x88, 0x02, 0x03, 0xE8]);
    }

    #[test]
    fn declined_passes_everything_through() {
        let mut frames = HEAD.to_vec();
        frames.extend(frame(0xC1, b"raw"));
        let mut shim = Inflate::new(1 << 20);
        let mut src = Cursor::new(frames.clone());
        let mut buf = [0u8; 4096];
        let n = shim.read(&mut src, &mut buf).unwrap();
        assert_eq!(&buf[..n], HEAD);
        shim.agree(None);
        let n = shim.read(&mut src, &mut buf).unwrap();
        assert_eq!(&buf[..n], &frames[HEAD.len()..]);
        assert_eq!(shim.read(&mut src, &mut buf).unwrap(), 0);
    }
}
