//! One socket's network side, driven by readiness and timers on the IO
//! thread: resolve → TCP connect → opening handshake → open → closing.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use tungstenite::client::IntoClientRequest;
use tungstenite::error::ProtocolError;
use tungstenite::handshake::client::{ClientHandshake, Request, Response};
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use super::resolver::Resolver;
use super::stream::Stream;
use crate::dispatch::Dispatcher;
use crate::event::CloseRecord;
use crate::proxy;
use crate::socket::{CloseRequest, Socket, StagingGuard};
use crate::status::AsyncErrorKind;

/// Reads per turn: a peer that sends without pause must not starve the
/// other sockets.
const READ_BUDGET: usize = 64;
/// A proxy's answer head longer than this is not an HTTP answer.
const PROXY_ANSWER_MAX: usize = 16 * 1024;
/// tungstenite allocates this per connection up front.
const READ_BUFFER_BYTES: usize = 16 * 1024;

const CLOSE_NO_STATUS: u16 = 1005;
/// The reason tungstenite puts in its 1002 reply to an invalid close code.
const INVALID_CLOSE_CODE_REASON: &str = "Protocol violation";
const CLOSE_ABNORMAL: u16 = 1006;
const CLOSE_GOING_AWAY: u16 = 1001;

/// What the reactor lends a connection for one step.
pub struct Ctx<'a> {
    pub registry: &'a Registry,
    pub dispatcher: &'a mut Dispatcher,
    pub resolver: &'a mut Resolver,
    /// Read from the clock on first use: most steps set no deadline.
    pub now: Option<Instant>,
}

impl Ctx<'_> {
    pub fn now(&mut self) -> Instant {
        *self.now.get_or_insert_with(Instant::now)
    }
}

enum Phase {
    Resolving,
    Connecting {
        stream: TcpStream,
        addr: SocketAddr,
        rest: VecDeque<SocketAddr>,
    },
    /// Asking an HTTP proxy for a tunnel.
    Proxying {
        stream: TcpStream,
        request: Vec<u8>,
        written: usize,
        answer: Vec<u8>,
    },
    Handshaking(MidHandshake<ClientHandshake<Stream>>),
    Open(WebSocket<Stream>),
    Done,
}

/// A failure to report: the error event's kind and text, and the close
/// code to send the peer if the connection is still speaking WebSocket.
struct Failure {
    kind: AsyncErrorKind,
    message: String,
    close_code: Option<u16>,
}

impl Failure {
    fn new(kind: AsyncErrorKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
            close_code: None,
        }
    }
}

pub struct Connection {
    socket: Arc<Socket>,
    token: Token,
    phase: Phase,
    connect_deadline: Option<Instant>,
    close_deadline: Option<Instant>,
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    /// The deadline the reactor's timer heap last heard of.
    pub scheduled: Option<Instant>,
    /// Payload bytes staged in the stream's queue and not yet all written.
    in_flight: usize,
    sent_close: bool,
    received_close: Option<(u16, String)>,
    /// A protocol failure was reported: only drain until the peer hangs up.
    failed: bool,
    /// Reading stopped while held messages are over their limit.
    read_paused: bool,
    /// Freed by the caller: finish quietly, deliver nothing.
    detached: bool,
    /// The read budget ran out with data left; the reactor drives this
    /// connection again on its next turn.
    pub more_to_read: bool,
    /// Messages tungstenite has returned (of every kind).
    messages_taken: u64,
}

fn io_would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Names what went wrong in the opening handshake, as precisely as
/// tungstenite lets us.
fn handshake_failure(e: tungstenite::Error, host: &str) -> Failure {
    use tungstenite::Error as E;
    #[cfg(feature = "tls")]
    if let E::Io(io) = &e {
        if let Some(message) = crate::tls::describe_failure(io, host) {
            return Failure::new(AsyncErrorKind::Tls, message);
        }
    }
    let _ = host;
    match e {
        E::Http(response) => {
            let status = response.status();
            Failure::new(
                AsyncErrorKind::Handshake,
                format!(
                    "server answered HTTP {} {} instead of 101 Switching Protocols",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                ),
            )
        }
        E::Io(io) => Failure::new(
            AsyncErrorKind::Io,
            format!("connection lost during the opening handshake: {io}"),
        ),
        E::ConnectionClosed | E::AlreadyClosed => Failure::new(
            AsyncErrorKind::Handshake,
            "connection closed during the opening handshake",
        ),
        other => Failure::new(
            AsyncErrorKind::Handshake,
            format!("opening handshake failed: {other}"),
        ),
    }
}

/// Maps a failure while open to the error event and the close code that
/// RFC 6455 7.4.1 asks for.
fn open_failure(e: tungstenite::Error) -> Failure {
    use tungstenite::Error as E;
    let (kind, message, close_code) = match e {
        E::Capacity(c) => (
            AsyncErrorKind::Protocol,
            format!("message too big: {c}"),
            Some(1009),
        ),
        E::Utf8(_) => (
            AsyncErrorKind::Protocol,
            "invalid UTF-8 in a text message or close reason".to_owned(),
            Some(1007),
        ),
        E::Protocol(ProtocolError::ResetWithoutClosingHandshake) => (
            AsyncErrorKind::Io,
            "the peer closed the connection without a closing handshake".to_owned(),
            None,
        ),
        E::Protocol(p) => (
            AsyncErrorKind::Protocol,
            format!("protocol violation by the peer: {p}"),
            Some(1002),
        ),
        E::Io(io) => {
            #[cfg(feature = "tls")]
            if let Some(message) = crate::tls::describe_failure(&io, "") {
                return Failure::new(AsyncErrorKind::Tls, message);
            }
            (AsyncErrorKind::Io, format!("I/O error: {io}"), None)
        }
        other => (AsyncErrorKind::Protocol, other.to_string(), Some(1002)),
    };
    Failure {
        kind,
        message,
        close_code,
    }
}

impl Connection {
    pub fn new(socket: Arc<Socket>, now: Instant) -> Connection {
        let connect_deadline = Some(now + socket.options.connect_timeout);
        Connection {
            token: Token(socket.handle as usize),
            socket,
            phase: Phase::Resolving,
            connect_deadline,
            close_deadline: None,
            next_ping: None,
            pong_deadline: None,
            scheduled: None,
            in_flight: 0,
            sent_close: false,
            received_close: None,
            failed: false,
            read_paused: false,
            detached: false,
            more_to_read: false,
            messages_taken: 0,
        }
    }

    fn handshake_failure(&self, e: tungstenite::Error) -> Failure {
        handshake_failure(e, &self.socket.target.host)
    }

    pub fn socket(&self) -> &Arc<Socket> {
        &self.socket
    }

    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.connect_deadline,
            self.close_deadline,
            self.next_ping,
            self.pong_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- connecting --------------------------------------------------

    pub fn start(&mut self, ctx: &mut Ctx<'_>) {
        // Through a proxy, the TCP peer is the proxy; it resolves the server.
        let (host, ip, port) = match &self.socket.route.proxy {
            Some(p) => (&p.host, p.ip, p.port),
            None => {
                let t = &self.socket.target;
                (&t.host, t.ip, t.port)
            }
        };
        match ip {
            Some(ip) => self.connect(ctx, VecDeque::from([SocketAddr::new(ip, port)])),
            None => ctx.resolver.resolve(self.socket.handle, host, port),
        }
    }

    pub fn on_resolved(&mut self, ctx: &mut Ctx<'_>, result: io::Result<Vec<SocketAddr>>) {
        if !matches!(self.phase, Phase::Resolving) {
            return;
        }
        let host = &self.socket.target.host;
        match result {
            Ok(addrs) if !addrs.is_empty() => self.connect(ctx, addrs.into()),
            Ok(_) => self.fail(
                ctx,
                Failure::new(AsyncErrorKind::Dns, format!("{host:?} has no address")),
            ),
            Err(e) => self.fail(
                ctx,
                Failure::new(AsyncErrorKind::Dns, format!("cannot resolve {host:?}: {e}")),
            ),
        }
    }

    /// Tries the addresses in turn until one accepts a non-blocking connect.
    fn connect(&mut self, ctx: &mut Ctx<'_>, mut addrs: VecDeque<SocketAddr>) {
        let mut last_error = None;
        while let Some(addr) = addrs.pop_front() {
            let attempt = TcpStream::connect(addr).and_then(|mut stream| {
                ctx.registry
                    .register(
                        &mut stream,
                        self.token,
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .map(|()| stream)
            });
            match attempt {
                Ok(stream) => {
                    self.phase = Phase::Connecting {
                        stream,
                        addr,
                        rest: addrs,
                    };
                    return;
                }
                Err(e) => last_error = Some(format!("cannot connect to {addr}: {e}")),
            }
        }
        let message = last_error.unwrap_or_else(|| "no address to connect to".into());
        self.fail(ctx, Failure::new(AsyncErrorKind::Connect, message));
    }

    /// Readiness while connecting: the connect finished one way or the other.
    fn on_connecting_ready(&mut self, ctx: &mut Ctx<'_>) {
        let Phase::Connecting { stream, addr, .. } = &mut self.phase else {
            return;
        };
        let error = match stream.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match stream.peer_addr() {
                Ok(_) => None,
                // Not connected yet: a spurious wake-up.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => Some(e),
            },
        };
        let addr = *addr;
        let Phase::Connecting {
            mut stream, rest, ..
        } = std::mem::replace(&mut self.phase, Phase::Resolving)
        else {
            unreachable!("matched above");
        };
        if let Some(e) = error {
            let _ = ctx.registry.deregister(&mut stream);
            drop(stream);
            if rest.is_empty() {
                let message = format!("cannot connect to {addr}: {e}");
                return self.fail(ctx, Failure::new(AsyncErrorKind::Connect, message));
            }
            return self.connect(ctx, rest);
        }
        // Small messages go out at once; batching is done above the socket.
        let _ = stream.set_nodelay(true);
        match &self.socket.route.proxy {
            Some(proxy) => {
                let target = &self.socket.target;
                let authority = match target.ip {
                    Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{}", target.port),
                    _ => format!("{}:{}", target.host, target.port),
                };
                self.phase = Phase::Proxying {
                    stream,
                    request: proxy.request(&authority),
                    written: 0,
                    answer: Vec::new(),
                };
                self.on_proxy_ready(ctx);
            }
            None => self.start_handshake(ctx, stream),
        }
    }

    /// Readiness while talking to an HTTP CONNECT proxy: send the request,
    /// read the answer head byte by byte (so not one byte of the tunnel is
    /// taken), then start TLS and the WebSocket handshake inside the tunnel.
    fn on_proxy_ready(&mut self, ctx: &mut Ctx<'_>) {
        let Phase::Proxying {
            stream,
            request,
            written,
            answer,
        } = &mut self.phase
        else {
            return;
        };
        let proxy_failure = |message: String| Failure::new(AsyncErrorKind::Connect, message);
        while *written < request.len() {
            match stream.write(&request[*written..]) {
                Ok(n) => *written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(ctx, proxy_failure(format!("proxy: {e}"))),
            }
        }
        let mut byte = [0u8; 1];
        while !answer.ends_with(b"\r\n\r\n") {
            if answer.len() > PROXY_ANSWER_MAX {
                return self.fail(ctx, proxy_failure("proxy: answer head too long".into()));
            }
            match stream.read(&mut byte) {
                Ok(0) => {
                    let message = "proxy closed the connection before answering".into();
                    return self.fail(ctx, proxy_failure(message));
                }
                Ok(_) => answer.push(byte[0]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(ctx, proxy_failure(format!("proxy: {e}"))),
            }
        }
        if let Err(status) = proxy::check_answer(answer) {
            let message = format!("proxy refused the tunnel: {status}");
            return self.fail(ctx, proxy_failure(message));
        }
        let Phase::Proxying { stream, .. } = std::mem::replace(&mut self.phase, Phase::Resolving)
        else {
            unreachable!("matched above");
        };
        self.start_handshake(ctx, stream);
    }

    /// Wraps the connected stream (TLS for wss://) and starts the opening
    /// handshake; both advance with readiness from here on.
    fn start_handshake(&mut self, ctx: &mut Ctx<'_>, tcp: TcpStream) {
        let stream = match Stream::new(tcp, &self.socket.route) {
            Ok(stream) => stream,
            Err(e) => {
                let failure = Failure::new(AsyncErrorKind::Tls, format!("TLS setup failed: {e}"));
                return self.fail(ctx, failure);
            }
        };
        match self.request() {
            Ok(request) => {
                let config = self.config();
                match ClientHandshake::start(stream, request, Some(config)) {
                    Ok(mid) => self.on_handshake_step(ctx, mid.handshake()),
                    Err(e) => {
                        let failure = self.handshake_failure(e);
                        self.fail(ctx, failure)
                    }
                }
            }
            Err(failure) => self.fail(ctx, failure),
        }
    }

    fn request(&self) -> Result<Request, Failure> {
        let options = &self.socket.options;
        let bad = |what: String| Failure::new(AsyncErrorKind::Handshake, what);
        let mut request = self
            .socket
            .target
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| bad(format!("cannot build the opening handshake: {e}")))?;
        let headers = request.headers_mut();
        if !options.protocols.is_empty() {
            let value = HeaderValue::from_str(&options.protocols.join(", "))
                .map_err(|e| bad(format!("bad subprotocol list: {e}")))?;
            headers.insert("Sec-WebSocket-Protocol", value);
        }
        for (name, value) in &options.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| bad(format!("bad header name {name:?}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| bad(format!("bad value for header {name}: {e}")))?;
            headers.append(name, value);
        }
        Ok(request)
    }

    fn config(&self) -> WebSocketConfig {
        let max = self.socket.options.max_message_size;
        WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            // tungstenite writes only control frames (wsembed encodes data
            // frames itself, see `wire`); its buffer goes out when flushed,
            // behind the frames already staged, never on its own.
            .write_buffer_size(usize::MAX / 2)
            .max_write_buffer_size(usize::MAX)
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    }

    fn on_handshake_step(
        &mut self,
        ctx: &mut Ctx<'_>,
        step: Result<(WebSocket<Stream>, Response), HandshakeError<ClientHandshake<Stream>>>,
    ) {
        match step {
            Ok((ws, response)) => self.on_open(ctx, ws, &response),
            Err(HandshakeError::Interrupted(mid)) => self.phase = Phase::Handshaking(mid),
            Err(HandshakeError::Failure(e)) => {
                let failure = self.handshake_failure(e);
                self.fail(ctx, failure)
            }
        }
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_>, ws: WebSocket<Stream>, response: &Response) {
        let protocol = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.phase = Phase::Open(ws);
        self.connect_deadline = None;
        if self.detached {
            return self.begin_close(ctx, Some((CLOSE_GOING_AWAY, String::new())));
        }
        if !self.socket.mark_open(protocol) {
            // Closed while connecting: the close command aborts it.
            return;
        }
        if let Some(interval) = self.socket.options.ping_interval {
            self.next_ping = Some(ctx.now() + interval);
        }
        ctx.dispatcher.open(&self.socket);
        // The handshake response may have carried messages, and their
        // readiness edge is spent.
        self.drive(ctx);
    }

    // ----- readiness ---------------------------------------------------

    /// A readiness event from the poller; `read_closed` says the peer's
    /// side is shut or the socket is in error.
    pub fn on_event(&mut self, ctx: &mut Ctx<'_>, read_closed: bool) {
        match &mut self.phase {
            Phase::Handshaking(mid) => mid.get_mut().get_mut().on_readiness(read_closed),
            Phase::Open(ws) => ws.get_mut().on_readiness(read_closed),
            _ => {}
        }
        self.on_ready(ctx);
    }

    /// Drives whatever the phase waits for; also called without a new
    /// event (a read budget ran out, reading resumed).
    pub fn on_ready(&mut self, ctx: &mut Ctx<'_>) {
        match &mut self.phase {
            Phase::Connecting { .. } => self.on_connecting_ready(ctx),
            Phase::Proxying { .. } => self.on_proxy_ready(ctx),
            Phase::Handshaking(_) => {
                let Phase::Handshaking(mid) = std::mem::replace(&mut self.phase, Phase::Resolving)
                else {
                    unreachable!("matched above");
                };
                self.on_handshake_step(ctx, mid.handshake());
            }
            Phase::Open(_) => self.drive(ctx),
            Phase::Resolving | Phase::Done => {}
        }
    }

    /// Flushes what is pending and reads what has arrived, each until the
    /// socket would block (readiness is edge-triggered).
    fn drive(&mut self, ctx: &mut Ctx<'_>) {
        // Sending first lets a writable edge move a backlog before reads
        // add to it; with nothing waiting it would only cost the flush
        // calls, on the path from a message's arrival to its answer.
        if self.has_output_waiting() {
            self.pump(ctx);
        }
        self.read_all(ctx);
        // Callbacks may have queued messages or auto-pongs may be pending.
        self.pump(ctx);
    }

    /// Bytes for the wire are waiting: in the stream's queue (what the
    /// socket did not take) or in the socket's (sent, not yet staged).
    /// tungstenite holds none between turns: every pump ends in its flush,
    /// which hands its buffer to the stream whole.
    fn has_output_waiting(&self) -> bool {
        let Phase::Open(ws) = &self.phase else {
            return false;
        };
        ws.get_ref().has_queued() || self.socket.has_outbound()
    }

    /// Sends what is queued: tungstenite's frames and ours, in order,
    /// until the socket would block or nothing is left.
    pub fn pump(&mut self, ctx: &mut Ctx<'_>) {
        loop {
            let Phase::Open(ws) = &mut self.phase else {
                return;
            };
            match ws.flush() {
                Ok(()) => {
                    self.socket.written(self.in_flight);
                    self.in_flight = 0;
                }
                Err(e) if io_would_block(&e) => return,
                Err(e) => return self.on_stream_error(ctx, e),
            }
            if !self.stage_outbound() {
                return;
            }
        }
    }

    fn read_all(&mut self, ctx: &mut Ctx<'_>) {
        for _ in 0..READ_BUDGET {
            if !self.detached && self.socket.hold_is_full() {
                self.read_paused = true;
                return;
            }
            let Phase::Open(ws) = &mut self.phase else {
                return;
            };
            if self.failed {
                // After a protocol failure only the peer's hang-up matters.
                let mut discard = [0u8; 4096];
                match ws.get_mut().read(&mut discard) {
                    Ok(0) => return self.finish(ctx, CLOSE_ABNORMAL, String::new(), false),
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return self.finish(ctx, CLOSE_ABNORMAL, String::new(), false),
                }
            }
            if ws.get_mut().nothing_to_read(self.messages_taken) {
                return;
            }
            let read = ws.read();
            self.messages_taken += u64::from(read.is_ok());
            match read {
                Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                    if !self.detached {
                        let staging = StagingGuard::new(self.socket.handle);
                        ctx.dispatcher.message(&self.socket, message);
                        drop(staging);
                        // What the callback sent must precede any close
                        // frame that a later frame of this pass triggers.
                        self.stage_outbound();
                    }
                }
                Ok(Message::Pong(_)) => self.pong_deadline = None,
                Ok(Message::Ping(_) | Message::Frame(_)) => {}
                Ok(Message::Close(frame)) => self.on_close_frame(ctx, frame),
                Err(e) if io_would_block(&e) => return,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return self.on_closing_handshake_done(ctx);
                }
                Err(e) => return self.on_stream_error(ctx, e),
            }
        }
        // Budget spent before the socket would block: the reactor comes
        // back after serving the others (readiness is edge-triggered, so no
        // new event would say so).
        self.more_to_read = true;
    }

    /// Queues every frame the socket has for the wire, without sending, so
    /// it goes before any frame tungstenite writes next (a close reply).
    /// False when there was none.
    fn stage_outbound(&mut self) -> bool {
        if self.sent_close || self.failed {
            return false;
        }
        let Phase::Open(ws) = &mut self.phase else {
            return false;
        };
        let mut staged = false;
        ws.get_mut().queue_with(|frames| {
            self.in_flight += self.socket.take_outbound(frames);
            // Empty messages are frames too: judge by bytes, not payload.
            staged = !frames.is_empty();
        });
        staged
    }

    /// Resumes reading that stopped while held messages were over limit.
    pub fn resume_reading(&mut self, ctx: &mut Ctx<'_>) {
        if self.read_paused && !self.socket.hold_is_full() {
            self.read_paused = false;
            self.drive(ctx);
        }
    }

    fn on_close_frame(&mut self, ctx: &mut Ctx<'_>, frame: Option<CloseFrame>) {
        let (code, reason) = frame.map_or((CLOSE_NO_STATUS, String::new()), |f| {
            (u16::from(f.code), f.reason.as_str().to_owned())
        });
        // tungstenite answers a close frame with a code the RFC forbids
        // (999, 1005, 1006, 1015, 5000...) with 1002 and reports it as this
        // frame; the browser fails such a connection: error, then 1006.
        if !self.sent_close && code == 1002 && reason == INVALID_CLOSE_CODE_REASON {
            self.sent_close = true;
            let message = "the peer sent a close frame with an invalid close code";
            return self.fail(ctx, Failure::new(AsyncErrorKind::Protocol, message));
        }
        self.received_close = Some((code, reason));
        self.socket.mark_closing();
        // tungstenite queued the echo; it counts as our close frame.
        self.sent_close = true;
        self.next_ping = None;
        self.pong_deadline = None;
        // RFC 6455 7.1.1: the server closes TCP first; do not wait forever.
        if self.close_deadline.is_none() {
            self.close_deadline = Some(ctx.now() + self.socket.options.close_timeout);
        }
    }

    /// Both close frames went by and the peer closed TCP.
    fn on_closing_handshake_done(&mut self, ctx: &mut Ctx<'_>) {
        let (code, reason) = self
            .received_close
            .take()
            .unwrap_or((CLOSE_ABNORMAL, String::new()));
        let clean = self.sent_close && code != CLOSE_ABNORMAL;
        self.finish(ctx, code, reason, clean);
    }

    fn on_stream_error(&mut self, ctx: &mut Ctx<'_>, e: tungstenite::Error) {
        if self.failed {
            return self.finish(ctx, CLOSE_ABNORMAL, String::new(), false);
        }
        if self.sent_close
            && !matches!(
                e,
                tungstenite::Error::Capacity(_) | tungstenite::Error::Utf8(_)
            )
        {
            // We were closing; the peer hanging up without its close frame
            // is an unclean close, not a new error.
            if let Some((code, reason)) = self.received_close.take() {
                return self.finish(ctx, code, reason, true);
            }
            return self.finish(ctx, CLOSE_ABNORMAL, String::new(), false);
        }
        self.fail(ctx, open_failure(e));
    }

    // ----- closing -----------------------------------------------------

    /// A caller's `close` or `free` reached the IO thread.
    pub fn on_close_request(&mut self, ctx: &mut Ctx<'_>) {
        match self.socket.close_request() {
            Some(CloseRequest::Abort) => self.abort(ctx),
            Some(CloseRequest::Handshake(frame)) => self.begin_close(ctx, frame),
            None => {}
        }
    }

    pub fn on_free(&mut self, ctx: &mut Ctx<'_>) {
        self.detached = true;
        match self.phase {
            Phase::Open(_) => self.begin_close(ctx, Some((CLOSE_GOING_AWAY, String::new()))),
            _ => self.finish(ctx, CLOSE_ABNORMAL, String::new(), false),
        }
    }

    /// Library shutdown: close as `free` would, but still deliver events.
    pub fn on_shutdown(&mut self, ctx: &mut Ctx<'_>) {
        match self.phase {
            Phase::Open(_) => {
                self.socket.mark_closing();
                self.begin_close(ctx, Some((CLOSE_GOING_AWAY, String::new())));
            }
            _ => self.abort(ctx),
        }
    }

    /// `close()` while CONNECTING: no error, a 1006 close.
    fn abort(&mut self, ctx: &mut Ctx<'_>) {
        self.finish(ctx, CLOSE_ABNORMAL, String::new(), false);
    }

    /// Sends what was queued before the close, then the close frame, and
    /// waits for the peer's answer up to the close timeout.
    fn begin_close(&mut self, ctx: &mut Ctx<'_>, frame: Option<(u16, String)>) {
        if self.sent_close || self.failed {
            return;
        }
        if !matches!(self.phase, Phase::Open(_)) {
            return self.abort(ctx);
        }
        self.stage_outbound();
        let Phase::Open(ws) = &mut self.phase else {
            unreachable!("checked above");
        };
        let frame = frame.map(|(code, reason)| CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        });
        self.sent_close = true;
        self.next_ping = None;
        self.pong_deadline = None;
        self.close_deadline = Some(ctx.now() + self.socket.options.close_timeout);
        match ws.close(frame) {
            Ok(()) => {
                self.socket.written(self.in_flight);
                self.in_flight = 0;
            }
            Err(e) if io_would_block(&e) => {}
            Err(e) => self.on_stream_error(ctx, e),
        }
    }

    /// Reports a failure (once) and ends the connection: with a close frame
    /// when the connection speaks WebSocket, so the peer learns why.
    fn fail(&mut self, ctx: &mut Ctx<'_>, failure: Failure) {
        if !self.detached && !self.failed {
            ctx.dispatcher
                .error(&self.socket, failure.kind, &failure.message);
        }
        self.failed = true;
        self.next_ping = None;
        self.pong_deadline = None;
        self.connect_deadline = None;
        let close_code = if self.sent_close {
            None
        } else {
            failure.close_code
        };
        match (&mut self.phase, close_code) {
            (Phase::Open(ws), Some(code)) => {
                self.sent_close = true;
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: "".into(),
                };
                // Once the frame is out, half-close so the peer sees our
                // end.
                if ws.close(Some(frame)).is_ok() {
                    let _ = ws.get_ref().tcp().shutdown(std::net::Shutdown::Write);
                }
            }
            // Our close frame is already queued (a reply): send it.
            (Phase::Open(ws), None) if self.sent_close => {
                let _ = ws.flush();
            }
            _ => return self.finish(ctx, CLOSE_ABNORMAL, String::new(), false),
        }
        // Drain the peer's bytes until it hangs up or the close timeout
        // passes.
        self.close_deadline = Some(ctx.now() + self.socket.options.close_timeout);
        self.read_all(ctx);
    }

    /// Ends the connection and delivers its one `close` event.
    fn finish(&mut self, ctx: &mut Ctx<'_>, code: u16, reason: String, clean: bool) {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Connecting { mut stream, .. } | Phase::Proxying { mut stream, .. } => {
                let _ = ctx.registry.deregister(&mut stream);
            }
            Phase::Handshaking(mut mid) => {
                let _ = ctx.registry.deregister(mid.get_mut().get_mut().tcp_mut());
            }
            Phase::Open(mut ws) => {
                let _ = ctx.registry.deregister(ws.get_mut().tcp_mut());
            }
            Phase::Resolving => {}
            Phase::Done => return,
        }
        self.connect_deadline = None;
        self.close_deadline = None;
        self.next_ping = None;
        self.pong_deadline = None;
        if self.detached {
            self.socket.mark_closed();
            return;
        }
        let record = CloseRecord {
            code,
            reason: crate::event::lossy_cstring(&reason),
            was_clean: clean,
        };
        ctx.dispatcher.close(&self.socket, record);
    }

    // ----- timers ------------------------------------------------------

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let due = |d: Option<Instant>| d.is_some_and(|d| d <= now);
        if due(self.connect_deadline) {
            let timeout = self.socket.options.connect_timeout;
            let message = format!("connection not established within {} ms", ms(timeout));
            return self.fail(ctx, Failure::new(AsyncErrorKind::Timeout, message));
        }
        if due(self.close_deadline) {
            return if self.failed {
                self.finish(ctx, CLOSE_ABNORMAL, String::new(), false)
            } else if let Some((code, reason)) = self.received_close.take() {
                // Both close frames went by; only the TCP close is late.
                self.finish(ctx, code, reason, true)
            } else {
                // The peer never answered our close frame.
                self.finish(ctx, CLOSE_ABNORMAL, String::new(), false)
            };
        }
        if due(self.pong_deadline) {
            let timeout = self
                .socket
                .options
                .effective_pong_timeout()
                .unwrap_or_default();
            let message = format!("no pong within {} ms of a ping", ms(timeout));
            return self.fail(ctx, Failure::new(AsyncErrorKind::Timeout, message));
        }
        if due(self.next_ping) {
            self.send_ping(ctx);
        }
    }

    fn send_ping(&mut self, ctx: &mut Ctx<'_>) {
        let Phase::Open(ws) = &mut self.phase else {
            return;
        };
        let interval = self.socket.options.ping_interval.unwrap_or_default();
        self.next_ping = Some(ctx.now() + interval);
        if self.pong_deadline.is_none() {
            let timeout = self
                .socket
                .options
                .effective_pong_timeout()
                .unwrap_or_default();
            self.pong_deadline = Some(ctx.now() + timeout);
        }
        match ws.write(Message::Ping(Default::default())) {
            Ok(()) => self.pump(ctx),
            Err(e) if io_would_block(&e) => {}
            Err(e) => self.on_stream_error(ctx, e),
        }
    }
}
