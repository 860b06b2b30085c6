//! The byte stream under tungstenite: plain TCP or TLS over it (one type,
//! so the connection state machine does not change with it), with the
//! bytes waiting to be written.
//!
//! Writes never raise SIGPIPE: std sends with MSG_NOSIGNAL, and the
//! vectored write here is a `sendmsg` with the same flag.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

use mio::net::TcpStream;

use super::out_queue::OutQueue;
use crate::answer::{Answer, AnswerReader};
#[cfg(feature = "deflate")]
use crate::framing::Inflate;
use crate::framing::{Agreement, FrameTally};
use crate::options::Options;
use crate::route::Route;
use crate::socket::SharedStats;

/// Bytes of a connection read before the stream over it was built (those
/// after a proxy's answer), handed out before anything else.
struct Early {
    bytes: Vec<u8>,
    taken: usize,
}

impl Early {
    fn new(bytes: Vec<u8>) -> Early {
        Early { bytes, taken: 0 }
    }

    /// Fills `buf` from what is left; None once all was taken.
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> Option<usize> {
        if self.taken == self.bytes.len() {
            return None;
        }
        self.take(buf)
    }

    #[cold]
    fn take(&mut self, buf: &mut [u8]) -> Option<usize> {
        let rest = &self.bytes[self.taken..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.taken += n;
        if self.taken == self.bytes.len() {
            *self = Early::new(Vec::new());
        }
        Some(n)
    }
}

/// The connection to the first hop, as the proxy exchange runs over it:
/// TCP, or TLS to an `https://` proxy (its handshake runs lazily inside
/// the first reads and writes).
pub enum Link {
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Link {
    /// `tls`: the proxy's, for an `https://` proxy.
    #[cfg(feature = "tls")]
    pub fn new(tcp: TcpStream, tls: Option<&crate::tls::ClientTls>) -> io::Result<Link> {
        let Some(tls) = tls else {
            return Ok(Link::Tcp(tcp));
        };
        let conn = rustls::ClientConnection::new(tls.config.clone(), tls.name.clone())
            .map_err(io::Error::other)?;
        Ok(Link::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
    }

    /// The TLS to an `https://` proxy, as `describe_tls` says it.
    pub fn tls_summary(&self) -> Option<String> {
        match self {
            Link::Tcp(_) => None,
            #[cfg(feature = "tls")]
            Link::Tls(tls) => Some(describe_tls(&tls.conn)),
        }
    }

    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Link::Tcp(tcp) => tcp,
            #[cfg(feature = "tls")]
            Link::Tls(tls) => &mut tls.sock,
        }
    }
}

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Link::Tcp(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Link::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Link::Tcp(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Link::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Link::Tcp(s) => s.flush(),
            #[cfg(feature = "tls")]
            Link::Tls(s) => s.flush(),
        }
    }
}

/// The tunnel through an `https://` proxy, as the WebSocket (or the
/// server's own TLS) runs over it: TLS to the proxy, with the bytes read
/// past the proxy's answer first.
#[cfg(feature = "tls")]
pub struct ProxyTls {
    tls: rustls::StreamOwned<rustls::ClientConnection, Tcp>,
    early: Early,
}

#[cfg(feature = "tls")]
impl Read for ProxyTls {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.early.read(buf) {
            Some(n) => Ok(n),
            None => self.tls.read(buf),
        }
    }
}

#[cfg(feature = "tls")]
impl Write for ProxyTls {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tls.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tls.flush()
    }
}

/// "TLSv1_3 with TLS13_AES_256_GCM_SHA384", for the log.
#[cfg(feature = "tls")]
fn describe_tls(conn: &rustls::ClientConnection) -> String {
    let version = conn
        .protocol_version()
        .map_or_else(|| "TLS".to_owned(), |v| format!("{v:?}"));
    match conn.negotiated_cipher_suite() {
        Some(suite) => format!("{version} with {:?}", suite.suite()),
        None => version,
    }
}

/// A TCP stream that skips the read that could only say "would block".
///
/// A read that returns fewer bytes than asked for emptied the kernel's
/// receive queue, and edge-triggered epoll reports every later arrival, so
/// the next read before the next readiness event would cost a syscall (and
/// tungstenite zeroing its buffer) to learn nothing. tokio clears readiness
/// on a short read for the same reason. The one thing a later read could
/// still learn is end of stream, so once an event says the peer's side is
/// closed (or in error) every read goes to the kernel again.
pub struct Tcp {
    inner: TcpStream,
    /// Read past a proxy's answer, before the kernel's bytes.
    early: Early,
    /// The last read was short and no readiness event came since.
    drained: bool,
    /// The peer may have shut its side: read until the kernel says so.
    read_closed: bool,
    /// Bytes the kernel took and gave, over all the socket's connections,
    /// stored in `stats` as they change.
    sent: u64,
    received: u64,
    stats: Arc<SharedStats>,
}

impl Tcp {
    fn new(inner: TcpStream, early: Vec<u8>, stats: Arc<SharedStats>) -> Tcp {
        Tcp {
            inner,
            early: Early::new(early),
            drained: false,
            read_closed: false,
            sent: stats.bytes_sent(),
            received: stats.bytes_received(),
            stats,
        }
    }
}

impl Tcp {
    /// One `sendmsg` for several buffers. Not `write_vectored`: std's
    /// `writev` cannot pass MSG_NOSIGNAL, and a SIGPIPE would kill a C
    /// host that does not ignore it.
    fn send_vectored(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        if let [one] = slices {
            // std's `send` passes MSG_NOSIGNAL too, with less to set up.
            return self.write(one);
        }
        // SAFETY: msghdr is plain old data; all zeroes is a valid (empty)
        // message.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        // IoSlice is ABI-compatible with iovec on Unix (std guarantees it);
        // sendmsg only reads the array.
        msg.msg_iov = slices.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = slices.len() as _;
        // SAFETY: the descriptor is this open socket's; `msg` and every
        // buffer it points to live until the call returns.
        let sent = unsafe { libc::sendmsg(self.inner.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            self.sent += sent as u64;
            self.stats.store_bytes_sent(self.sent);
            Ok(sent as usize)
        }
    }
}

impl Read for Tcp {
    // Inlined into the transport's read: the round trip's hottest call.
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(n) = self.early.read(buf) {
            return Ok(n);
        }
        if self.drained {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.inner.read(buf)?;
        self.drained = n > 0 && n < buf.len() && !self.read_closed;
        self.received += n as u64;
        self.stats.store_bytes_received(self.received);
        Ok(n)
    }
}

impl Write for Tcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sent += n as u64;
        self.stats.store_bytes_sent(self.sent);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Transport {
    Plain(Tcp),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, Tcp>>),
    /// `ws://` through an `https://` proxy.
    #[cfg(feature = "tls")]
    Proxied(Box<ProxyTls>),
    /// `wss://` through an `https://` proxy: TLS inside TLS.
    #[cfg(feature = "tls")]
    ProxiedTls(Box<rustls::StreamOwned<rustls::ClientConnection, ProxyTls>>),
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Transport::Proxied(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Transport::ProxiedTls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Transport::Proxied(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Transport::ProxiedTls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.flush(),
            #[cfg(feature = "tls")]
            Transport::Proxied(s) => s.flush(),
            // rustls flushes the stream under it too: the proxy's TLS.
            #[cfg(feature = "tls")]
            Transport::ProxiedTls(s) => s.flush(),
        }
    }
}

/// Where a connection finds the answer to its opening handshake once it
/// came (in part, if its body is still awaited).
pub type AnswerSlot = Arc<Mutex<Option<Answer>>>;

/// Reads the answer to the opening handshake ahead of tungstenite, body
/// included, and hands it on once whole (see `crate::answer`).
struct Gate {
    reader: AnswerReader,
    handed: usize,
    slot: AnswerSlot,
}

/// The transport as seen from above: first what the gate holds, then the
/// transport itself.
struct Source<'a> {
    gate: &'a mut Option<Box<Gate>>,
    transport: &'a mut Transport,
}

impl Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(gate) = self.gate else {
            return self.transport.read(buf);
        };
        while !gate.reader.is_complete() {
            let mut chunk = [0u8; 4096];
            match self.transport.read(&mut chunk) {
                Ok(0) => gate.reader.end(),
                Ok(n) => gate.reader.feed(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Some(answer) = gate.reader.answer() {
                *crate::sync::lock(&gate.slot) = Some(answer);
            }
        }
        let rest = &gate.reader.bytes()[gate.handed..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        gate.handed += n;
        if gate.handed == gate.reader.bytes().len() {
            *self.gate = None;
            if n == 0 {
                return self.transport.read(buf);
            }
        }
        Ok(n)
    }
}

/// What tungstenite reads from and writes to: the transport, with the
/// bytes waiting for it. tungstenite's writes always succeed here (what the
/// socket does not take is queued), so frames wsembed encodes itself and
/// tungstenite's control frames keep one order; `flush` says "would block"
/// until the queue is empty.
pub struct Stream {
    transport: Transport,
    out: OutQueue,
    /// The frames in the plaintext bytes read so far (see `frame_tally`).
    tally: FrameTally,
    /// The tally's message count disagreed with tungstenite's once: a bug
    /// that must cost speed, never a message. It is no longer trusted.
    tally_doubted: bool,
    /// permessage-deflate's read side, for a connection that offers it
    /// (the others read straight from the transport).
    #[cfg(feature = "deflate")]
    inflate: Option<Box<Inflate>>,
    /// Until the handshake's answer has been handed on whole.
    gate: Option<Box<Gate>>,
}

impl Stream {
    /// Wraps a connection to the server (or a tunnel to it) as the route
    /// says; `early` are bytes of the connection already read (past a
    /// proxy's answer). The TLS handshake itself runs lazily inside the
    /// first reads and writes. The answer to the opening handshake goes to
    /// `answer` as it comes.
    pub fn new(
        link: Link,
        route: &Route,
        early: Vec<u8>,
        options: &Options,
        answer: AnswerSlot,
        stats: Arc<SharedStats>,
    ) -> io::Result<Stream> {
        let transport = Stream::transport_for(link, early, route, stats)?;
        let _ = options;
        Ok(Stream {
            transport,
            out: OutQueue::default(),
            tally: FrameTally::default(),
            tally_doubted: false,
            #[cfg(feature = "deflate")]
            inflate: options
                .deflate_offer()
                .map(|_| Box::new(Inflate::new(options.max_message_size))),
            gate: Some(Box::new(Gate {
                reader: AnswerReader::default(),
                handed: 0,
                slot: answer,
            })),
        })
    }

    /// The handshake is over: what it agreed decides how the bytes after
    /// the answer head are read.
    pub fn agree(&mut self, deflate: Option<&Agreement>) {
        #[cfg(feature = "deflate")]
        if let Some(inflate) = &mut self.inflate {
            inflate.agree(deflate);
        }
        let _ = deflate;
    }

    fn transport_for(
        link: Link,
        early: Vec<u8>,
        route: &Route,
        stats: Arc<SharedStats>,
    ) -> io::Result<Transport> {
        #[cfg(feature = "tls")]
        let server_tls = |tls: &crate::tls::ClientTls| {
            rustls::ClientConnection::new(tls.config.clone(), tls.name.clone())
                .map_err(io::Error::other)
        };
        match link {
            Link::Tcp(tcp) => {
                let tcp = Tcp::new(tcp, early, stats);
                #[cfg(feature = "tls")]
                if let Some(tls) = &route.tls {
                    let stream = rustls::StreamOwned::new(server_tls(tls)?, tcp);
                    return Ok(Transport::Tls(Box::new(stream)));
                }
                let _ = route;
                Ok(Transport::Plain(tcp))
            }
            #[cfg(feature = "tls")]
            Link::Tls(proxy) => {
                let proxy = *proxy;
                let tunnel = ProxyTls {
                    tls: rustls::StreamOwned::new(
                        proxy.conn,
                        Tcp::new(proxy.sock, Vec::new(), stats),
                    ),
                    early: Early::new(early),
                };
                Ok(match &route.tls {
                    Some(tls) => Transport::ProxiedTls(Box::new(rustls::StreamOwned::new(
                        server_tls(tls)?,
                        tunnel,
                    ))),
                    None => Transport::Proxied(Box::new(tunnel)),
                })
            }
        }
    }

    fn tcp_ref(&self) -> &Tcp {
        match &self.transport {
            Transport::Plain(s) => s,
            #[cfg(feature = "tls")]
            Transport::Tls(s) => &s.sock,
            #[cfg(feature = "tls")]
            Transport::Proxied(s) => &s.tls.sock,
            #[cfg(feature = "tls")]
            Transport::ProxiedTls(s) => &s.sock.tls.sock,
        }
    }

    fn tcp_ref_mut(&mut self) -> &mut Tcp {
        match &mut self.transport {
            Transport::Plain(s) => s,
            #[cfg(feature = "tls")]
            Transport::Tls(s) => &mut s.sock,
            #[cfg(feature = "tls")]
            Transport::Proxied(s) => &mut s.tls.sock,
            #[cfg(feature = "tls")]
            Transport::ProxiedTls(s) => &mut s.sock.tls.sock,
        }
    }

    /// The TLS with the server, as `describe_tls` says it; None without.
    pub fn tls_summary(&self) -> Option<String> {
        match &self.transport {
            Transport::Plain(_) => None,
            #[cfg(feature = "tls")]
            Transport::Tls(s) => Some(describe_tls(&s.conn)),
            #[cfg(feature = "tls")]
            Transport::Proxied(_) => None,
            #[cfg(feature = "tls")]
            Transport::ProxiedTls(s) => Some(describe_tls(&s.conn)),
        }
    }

    /// Frames read from the peer so far, of every kind.
    pub fn frames_received(&self) -> u64 {
        self.tally.frames()
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp_ref().inner
    }

    pub fn tcp_mut(&mut self) -> &mut TcpStream {
        &mut self.tcp_ref_mut().inner
    }

    /// Queues encoded frames behind everything already written; `fill`
    /// gets an empty (reused) buffer to fill. Sent by the next `flush`.
    pub fn queue_with(&mut self, fill: impl FnOnce(&mut Vec<u8>)) {
        let mut chunk = self.out.take_spare();
        fill(&mut chunk);
        self.out.push(chunk);
    }

    /// Bytes the socket has not taken yet (queued here, or TLS records
    /// rustls holds).
    pub fn has_queued(&self) -> bool {
        if !self.out.is_empty() {
            return true;
        }
        match &self.transport {
            Transport::Plain(_) => false,
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.conn.wants_write(),
            #[cfg(feature = "tls")]
            Transport::Proxied(s) => s.tls.conn.wants_write(),
            #[cfg(feature = "tls")]
            Transport::ProxiedTls(s) => s.conn.wants_write() || s.sock.tls.conn.wants_write(),
        }
    }

    /// True when asking tungstenite for a message now could only find
    /// none: the kernel had nothing at the last read, no readiness event
    /// came since, and tungstenite has returned all `taken` complete
    /// messages read so far. Saves it zeroing its buffer to learn nothing
    /// (see `frame_tally`).
    pub fn nothing_to_read(&mut self, taken: u64) -> bool {
        let drained = match &self.transport {
            Transport::Plain(tcp) => tcp.drained,
            // rustls may hold decrypted bytes the kernel no longer has.
            #[cfg(feature = "tls")]
            Transport::Tls(_) | Transport::Proxied(_) | Transport::ProxiedTls(_) => return false,
        };
        if self.tally_doubted || self.gate.is_some() {
            return false;
        }
        #[cfg(feature = "deflate")]
        if self.inflate.as_ref().is_some_and(|i| i.has_buffered()) {
            return false;
        }
        if self.tally.complete() < taken {
            // Cannot happen if the tally is right; if it does, stop using it.
            self.tally_doubted = true;
            return false;
        }
        drained && self.tally.complete() == taken
    }

    /// The code of the peer's first close frame as it was on the wire;
    /// `None` if no close frame with a code was seen.
    pub fn peer_close_code(&self) -> Option<u16> {
        self.tally.peer_close_code().flatten()
    }

    /// A readiness event came for this socket: reads go to the kernel
    /// again. `read_closed` is the event's word that the peer's side is
    /// shut or the socket is in error.
    pub fn on_readiness(&mut self, read_closed: bool) {
        let tcp = self.tcp_ref_mut();
        tcp.drained = false;
        tcp.read_closed |= read_closed;
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut source = Source {
            gate: &mut self.gate,
            transport: &mut self.transport,
        };
        #[cfg(feature = "deflate")]
        let n = match &mut self.inflate {
            Some(inflate) => inflate.read(&mut source, buf)?,
            None => source.read(buf)?,
        };
        #[cfg(not(feature = "deflate"))]
        let n = source.read(buf)?;
        self.tally.feed(&buf[..n]);
        Ok(n)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write_through(&mut self.transport, buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing a TCP stream does nothing: done once it took all;
        // rustls writes its records to the socket in its flush.
        match &mut self.transport {
            Transport::Plain(tcp) => self.out.send_vectored(|s| tcp.send_vectored(s)),
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => {
                self.out.send(tls)?;
                tls.flush()
            }
            #[cfg(feature = "tls")]
            Transport::Proxied(tls) => {
                self.out.send(tls)?;
                tls.flush()
            }
            #[cfg(feature = "tls")]
            Transport::ProxiedTls(tls) => {
                self.out.send(tls)?;
                tls.flush()
            }
        }
    }
}
