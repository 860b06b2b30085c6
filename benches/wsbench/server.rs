//! The echo server of every comparison: one thread, mio (epoll,
//! edge-triggered), any number of connections.
//!
//! `--mode ws`: a WebSocket server that echoes frame by frame: each masked
//! client frame goes back unmasked with the same FIN bit and opcode (a
//! fragmented message comes back fragmented, which RFC 6455 allows). It
//! answers ping with pong and close with close, then hangs up. It does not
//! assemble messages or validate UTF-8, so it does less work per byte than
//! any client it serves: it must never be the bottleneck (the harness
//! reports its CPU time for every run).
//!
//! `--mode tcp`: echoes bytes.
//!
//! `--deflate 1` (ws mode): also accepts permessage-deflate, and echoes each
//! compressed frame as it came (RSV1 and payload untouched), inflating
//! nothing. That is a valid peer, not a shortcut: with the compressed
//! payloads echoed verbatim, in order, and nothing else compressed, the
//! server's outgoing stream is byte for byte the client's compressed
//! stream, so it refers back only to data the client's inflater has just
//! inflated, in the same order (the client's own messages), at distances
//! the client's window allows. The answer makes that hold for any offer
//! (`passthrough_answer`): the client's window is limited to the server's,
//! and a server asked to drop its context makes the client drop its own.
//! What remains is wsembed's own cost: the server's share is a copy.
//!
//! Prints `PORT <n>` once listening on 127.0.0.1, and exits when its stdin
//! closes (the harness holds it open) or after `--max-secs`.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::FromRawFd;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use crate::{die, raise_nofile, watchdog, Args};

const LISTENER: Token = Token(usize::MAX - 1);
/// Echoed bytes not yet written: past this the server stops reading that
/// connection until the client catches up.
const HIGH_WATER: usize = 4 << 20;
const WS_READ_START: usize = 4 << 10;
const TCP_READ_SIZE: usize = 256 << 10;
const READ_MAX: usize = 256 << 10;
const HANDSHAKE_MAX: usize = 16 << 10;

struct Conn {
    stream: TcpStream,
    rbuf: Vec<u8>,
    /// Bytes of `rbuf` holding data, and how many of those are consumed.
    rlen: usize,
    rpos: usize,
    wbuf: Vec<u8>,
    wpos: usize,
    upgraded: bool,
    raw: bool,
    /// Accept permessage-deflate and echo compressed frames verbatim.
    deflate: bool,
    /// A close frame was answered: hang up once it is written.
    closing: bool,
}

enum Step {
    Keep,
    Drop,
}

/// A listening socket with a backlog large enough for thousands of
/// simultaneous connects (std and mio use 128 or 1024).
fn listen(port: u16) -> io::Result<TcpListener> {
    // SAFETY: plain socket calls on a descriptor we own; the address struct
    // is fully initialized.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let listener = std::net::TcpListener::from_raw_fd(fd);
        let one: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*addr.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        if libc::bind(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        if libc::listen(fd, 65535) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(TcpListener::from_std(listener))
    }
}

pub fn main(args: &Args) {
    let raw = match args.str("mode", "ws").as_str() {
        "ws" => false,
        "tcp" => true,
        other => die(&format!("--mode {other:?}: ws or tcp")),
    };
    let deflate = args.num("deflate", 0) != 0;
    watchdog(args.num("max-secs", 7200), "server");
    raise_nofile(args.num("max-conns", 20_000) + 64);
    let mut listener = listen(args.num("port", 0) as u16)
        .unwrap_or_else(|e| die(&format!("cannot listen on 127.0.0.1: {e}")));
    let port = listener.local_addr().expect("bound").port();
    // The harness holds our stdin open; its end is our end.
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(|| {
            let mut sink = Vec::new();
            let _ = io::stdin().read_to_end(&mut sink);
            std::process::exit(0);
        })
        .expect("spawn stdin watcher");

    let mut poll = Poll::new().expect("epoll");
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .expect("register listener");
    println!("PORT {port}");
    io::stdout().flush().expect("stdout");

    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    loop {
        match poll.poll(&mut events, Some(Duration::from_secs(1))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => die(&format!("epoll_wait: {e}")),
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                accept_all(&mut listener, &poll, &mut conns, &mut free, raw, deflate);
                continue;
            }
            let id = event.token().0;
            let Some(Some(conn)) = conns.get_mut(id) else {
                continue;
            };
            if let Step::Drop = conn.serve() {
                let _ = poll.registry().deregister(&mut conn.stream);
                conns[id] = None;
                free.push(id);
            }
        }
    }
}

fn accept_all(
    listener: &mut TcpListener,
    poll: &Poll,
    conns: &mut Vec<Option<Conn>>,
    free: &mut Vec<usize>,
    raw: bool,
    deflate: bool,
) {
    loop {
        let mut stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Out of descriptors, say: the client sees the refusal.
            Err(_) => return,
        };
        let _ = stream.set_nodelay(true);
        let id = free.pop().unwrap_or_else(|| {
            conns.push(None);
            conns.len() - 1
        });
        if poll
            .registry()
            .register(
                &mut stream,
                Token(id),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            free.push(id);
            continue;
        }
        let size = if raw { TCP_READ_SIZE } else { WS_READ_START };
        conns[id] = Some(Conn {
            stream,
            rbuf: vec![0; size],
            rlen: 0,
            rpos: 0,
            wbuf: Vec::new(),
            wpos: 0,
            upgraded: raw,
            raw,
            deflate,
            closing: false,
        });
    }
}

impl Conn {
    /// Writes what is pending, reads until the socket would block (or the
    /// echo backlog is too long), echoing as it goes.
    fn serve(&mut self) -> Step {
        loop {
            match self.flush() {
                Ok(true) => {}
                Ok(false) => {
                    if self.wbuf.len() - self.wpos >= HIGH_WATER {
                        // Reading resumes on the writable edge that follows.
                        return Step::Keep;
                    }
                }
                Err(_) => return Step::Drop,
            }
            if self.closing {
                return if self.wpos == self.wbuf.len() {
                    Step::Drop
                } else {
                    Step::Keep
                };
            }
            self.make_room();
            match self.stream.read(&mut self.rbuf[self.rlen..]) {
                Ok(0) => return Step::Drop,
                Ok(n) => {
                    let filled = self.rlen + n == self.rbuf.len();
                    self.rlen += n;
                    if !self.process() {
                        return Step::Drop;
                    }
                    if filled && self.rbuf.len() < READ_MAX && !self.raw {
                        let bigger = (self.rbuf.len() * 2).min(READ_MAX);
                        self.rbuf.resize(bigger, 0);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return match self.flush() {
                        Ok(_) => Step::Keep,
                        Err(_) => Step::Drop,
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Step::Drop,
            }
        }
    }

    /// Writes pending bytes; true when none is left.
    fn flush(&mut self) -> io::Result<bool> {
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        Ok(true)
    }

    /// Moves unconsumed bytes to the front so the next read has room.
    fn make_room(&mut self) {
        if self.rpos == self.rlen {
            self.rpos = 0;
            self.rlen = 0;
        } else if self.rlen == self.rbuf.len() && self.rpos > 0 {
            self.rbuf.copy_within(self.rpos..self.rlen, 0);
            self.rlen -= self.rpos;
            self.rpos = 0;
        }
        if self.rlen == self.rbuf.len() {
            // A frame larger than the buffer: grow for it.
            let bigger = self.rbuf.len() * 2;
            self.rbuf.resize(bigger, 0);
        }
    }

    /// Echoes every complete unit in the read buffer. False: hang up.
    ///
    /// The echo is written straight from the read buffer when nothing is
    /// pending (payloads unmasked in place, one `writev` for all the frames
    /// of a read); only what the socket does not take is copied aside.
    fn process(&mut self) -> bool {
        if self.raw {
            let mut at = self.rpos;
            if self.wpos == self.wbuf.len() {
                match write_all_now(
                    &mut self.stream,
                    &mut [IoSlice::new(&self.rbuf[at..self.rlen])],
                ) {
                    Ok(n) => at += n,
                    Err(_) => return false,
                }
            }
            self.wbuf.extend_from_slice(&self.rbuf[at..self.rlen]);
            self.rpos = self.rlen;
            return true;
        }
        if !self.upgraded {
            return self.handshake();
        }
        // (header, header length, payload start, payload length)
        let mut frames: Vec<([u8; 10], usize, usize, usize)> = Vec::new();
        let mut need = None;
        loop {
            let buf = &self.rbuf[self.rpos..self.rlen];
            let Some(frame) = parse_frame(buf) else {
                need = frame_size(buf);
                break;
            };
            let start = self.rpos + frame.payload_at;
            self.rpos += frame.payload_at + frame.len;
            let b0 = match frame.opcode {
                0x8 => {
                    self.closing = true;
                    0x88
                }
                0x9 => 0x8A,
                0xA => continue,
                _ => frame.b0,
            };
            if let Some(mask) = frame.mask {
                unmask(&mut self.rbuf[start..start + frame.len], mask);
            }
            let mut header = [0u8; 10];
            let hlen = header_into(&mut header, b0, frame.len);
            frames.push((header, hlen, start, frame.len));
            if self.closing {
                break;
            }
        }
        let mut written = 0;
        if self.wpos == self.wbuf.len() && !frames.is_empty() {
            let rbuf = &self.rbuf;
            let mut slices: Vec<IoSlice<'_>> = frames
                .iter()
                .flat_map(|(h, hlen, start, len)| {
                    [
                        IoSlice::new(&h[..*hlen]),
                        IoSlice::new(&rbuf[*start..*start + *len]),
                    ]
                })
                .collect();
            match write_all_now(&mut self.stream, &mut slices) {
                Ok(n) => written = n,
                Err(_) => return false,
            }
        }
        // What the socket did not take waits in the write buffer.
        for (h, hlen, start, len) in &frames {
            for part in [&h[..*hlen], &self.rbuf[*start..*start + *len]] {
                let skip = written.min(part.len());
                written -= skip;
                self.wbuf.extend_from_slice(&part[skip..]);
            }
        }
        // An incomplete frame: make sure all of it will fit.
        if let Some(need) = need {
            if need > self.rbuf.len() - self.rpos {
                self.rbuf.copy_within(self.rpos..self.rlen, 0);
                self.rlen -= self.rpos;
                self.rpos = 0;
                if need > self.rbuf.len() {
                    self.rbuf.resize(need, 0);
                }
            }
        }
        true
    }

    fn handshake(&mut self) -> bool {
        let buf = &self.rbuf[self.rpos..self.rlen];
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            return buf.len() < HANDSHAKE_MAX;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let header = |wanted: &str| {
            head.lines()
                .filter_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.trim()
                        .eq_ignore_ascii_case(wanted)
                        .then(|| value.trim().to_owned())
                })
                .collect::<Vec<String>>()
        };
        let key = header("sec-websocket-key").into_iter().next();
        let Some(key) = key else {
            self.wbuf
                .extend_from_slice(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
            self.closing = true;
            return true;
        };
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let extensions = if self.deflate {
            passthrough_answer(&header("sec-websocket-extensions").join(","))
                .map(|answer| format!("Sec-WebSocket-Extensions: {answer}\r\n"))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extensions}\r\n"
        );
        self.wbuf.extend_from_slice(answer.as_bytes());
        self.rpos += end + 4;
        self.upgraded = true;
        self.process()
    }
}

/// The answer to the first permessage-deflate offer (of `offers`, the
/// request's extension list) that a verbatim echo can honour, or `None`
/// to decline them all.
///
/// The echo sends back the client's compressed stream as the server's, so
/// that stream must meet the server's side of the agreement: its window
/// no larger than `server_max_window_bits` (so the answer sets
/// `client_max_window_bits` to it, which needs the client to have offered
/// that parameter), and no reference to earlier messages if
/// `server_no_context_takeover` was asked (so the answer makes the client
/// drop its context too). Everything asked is granted, as RFC 7692 7.1
/// requires, or the offer is declined.
fn passthrough_answer(offers: &str) -> Option<String> {
    'offers: for offer in offers.split(',') {
        let mut parts = offer.split(';').map(str::trim);
        if !parts
            .next()
            .is_some_and(|name| name.eq_ignore_ascii_case("permessage-deflate"))
        {
            continue;
        }
        // client_max_window_bits: None not offered, Some(None) offered
        // without a value.
        let mut client_bits: Option<Option<u8>> = None;
        let mut server_bits: Option<u8> = None;
        let (mut client_reset, mut server_reset) = (false, false);
        for param in parts {
            let (key, value) = match param.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
                None => (param, None),
            };
            let bits = |v: Option<&str>| {
                v.and_then(|v| v.parse::<u8>().ok())
                    .filter(|b| (8..=15).contains(b))
            };
            match (key.to_ascii_lowercase().as_str(), value) {
                ("client_max_window_bits", None) if client_bits.is_none() => {
                    client_bits = Some(None)
                }
                ("client_max_window_bits", v) if client_bits.is_none() => match bits(v) {
                    Some(b) => client_bits = Some(Some(b)),
                    None => continue 'offers,
                },
                ("server_max_window_bits", v) if server_bits.is_none() => match bits(v) {
                    Some(b) => server_bits = Some(b),
                    None => continue 'offers,
                },
                ("client_no_context_takeover", None) if !client_reset => client_reset = true,
                ("server_no_context_takeover", None) if !server_reset => server_reset = true,
                _ => continue 'offers,
            }
        }
        let mut answer = String::from("permessage-deflate");
        if let Some(server) = server_bits {
            // The client must compress within the server's window.
            let Some(offered) = client_bits else {
                continue;
            };
            let client = offered.unwrap_or(15).min(server);
            answer.push_str(&format!(
                "; server_max_window_bits={server}; client_max_window_bits={client}"
            ));
        }
        if server_reset {
            answer.push_str("; server_no_context_takeover");
        }
        if server_reset || client_reset {
            answer.push_str("; client_no_context_takeover");
        }
        return Some(answer);
    }
    None
}

struct Frame {
    b0: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload_at: usize,
    len: usize,
}

/// Header length and total frame size, once the header is complete.
fn header(buf: &[u8]) -> Option<(usize, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let masked = buf[1] & 0x80 != 0;
    let (len, at) = match buf[1] & 0x7F {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let at = at + if masked { 4 } else { 0 };
    Some((at, at + len))
}

fn frame_size(buf: &[u8]) -> Option<usize> {
    header(buf).map(|(_, size)| size)
}

fn parse_frame(buf: &[u8]) -> Option<Frame> {
    let (at, size) = header(buf)?;
    if buf.len() < size {
        return None;
    }
    let mask = (buf[1] & 0x80 != 0).then(|| [buf[at - 4], buf[at - 3], buf[at - 2], buf[at - 1]]);
    Some(Frame {
        b0: buf[0],
        opcode: buf[0] & 0x0F,
        mask,
        payload_at: at,
        len: size - at,
    })
}

/// Writes a server frame header (no mask) into `out`; returns its length.
fn header_into(out: &mut [u8; 10], b0: u8, len: usize) -> usize {
    out[0] = b0;
    if len < 126 {
        out[1] = len as u8;
        2
    } else if len <= u16::MAX as usize {
        out[1] = 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

/// Writes as much of `slices` as the socket takes now; returns the bytes
/// written (WouldBlock ends it early, not in error).
fn write_all_now(stream: &mut TcpStream, mut slices: &mut [IoSlice<'_>]) -> io::Result<usize> {
    let mut total = 0;
    while !slices.is_empty() {
        // At most IOV_MAX (1024) slices per call.
        let upto = slices.len().min(1024);
        match stream.write_vectored(&slices[..upto]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                total += n;
                IoSlice::advance_slices(&mut slices, n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// XORs the payload with the mask, eight bytes at a time.
fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes((&*chunk).try_into().expect("8 bytes")) ^ wide;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}
