//! One socket's network side, driven by readiness and timers on the IO
//! thread: resolve → TCP connect → (proxy tunnel) → opening handshake →
//! open → closing → done; or, with automatic reconnection, from a lost
//! connection to waiting and round again (`crate::reconnect` decides).
//!
//! The closing handshake's rules live in `closing`, the timers in
//! `deadlines`, the meaning of errors in `failure`, the handshake's words
//! in `handshake` and the proxy exchange in `proxy::tunnel`: this file
//! moves bytes and calls them.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use tungstenite::handshake::client::{ClientHandshake, Response};
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::{Message, WebSocket};

use super::closing::{self, Closing, Ending, OnError, OnFail, PeerClose};
use super::deadlines::{Deadlines, Due};
use super::eyeballs::Race;
use super::failure::{self, Failure};
use super::handshake;
use super::resolver::Resolver;
use super::staging::StagingGuard;
use super::stream::{AnswerSlot, Link, Stream};
use crate::deliver::Delivery;
use crate::event::{lossy_cstring, CloseRecord};
use crate::log::log_at;
use crate::proxy::tunnel::Progress;
use crate::proxy::{Exchange, ProxyKind};
use crate::reconnect::{Backoff, Decision};
use crate::route::Route;
use crate::socket::{CloseRequest, Socket, Stats};
use crate::status::AsyncErrorKind;
use crate::target::Target;

/// Reads per turn: a peer that sends without pause must not starve the
/// other sockets.
const READ_BUDGET: usize = 64;

/// What the reactor lends a connection for one step.
pub struct Ctx<'a> {
    pub registry: &'a Registry,
    pub delivery: &'a mut Delivery,
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
    /// TCP connects under way, raced (Happy Eyeballs): the first to
    /// connect wins.
    Connecting {
        attempts: Vec<(TcpStream, SocketAddr)>,
        race: Race,
    },
    /// Asking a proxy for a tunnel (over TLS to an `https://` one).
    Tunneling {
        link: Link,
        tunnel: Exchange,
    },
    Handshaking(MidHandshake<ClientHandshake<Stream>>),
    Open {
        ws: WebSocket<Stream>,
        closing: Closing,
    },
    /// A connection was lost; the next attempt starts when the retry
    /// timer fires.
    Waiting,
    Done,
}

/// A failure of the current connection, kept until it ends: reported
/// at once, or (when a retry will follow) carried by `reconnecting`.
struct Lost {
    failure: Failure,
    reported: bool,
}

/// Ends a socket: marks it CLOSED and delivers its one `close` event. The
/// only way a socket is closed, for a connection that ends and for one the
/// reactor had to drop; a freed socket gets no event (its gate is shut).
pub(super) fn end_socket(socket: &Arc<Socket>, delivery: &mut Delivery, ending: Ending) {
    if socket.outbox().mark_closed() {
        log_at!(
            Info,
            socket.handle,
            "closed: code {}{}, {}",
            ending.code,
            match ending.reason.is_empty() {
                true => String::new(),
                false => format!(" {:?}", ending.reason),
            },
            if ending.clean { "clean" } else { "not clean" }
        );
        let record = CloseRecord {
            code: ending.code,
            reason: lossy_cstring(&ending.reason),
            was_clean: ending.clean,
        };
        delivery.close(socket, record);
    }
}

mod reconnecting;

pub struct Connection {
    socket: Arc<Socket>,
    token: Token,
    phase: Phase,
    deadlines: Deadlines,
    /// The deadline the reactor's timer heap last heard of.
    pub scheduled: Option<Instant>,
    /// Payload bytes staged in the stream's queue and not yet all written.
    in_flight: usize,
    /// Reading stopped while held messages are over their limit.
    read_paused: bool,
    /// Freed by the caller: finish quietly, deliver nothing.
    detached: bool,
    /// The read budget ran out with data left; the reactor drives this
    /// connection again on its next turn.
    pub more_to_read: bool,
    /// Messages tungstenite has returned (of every kind).
    messages_taken: u64,
    /// The answer to this connection's opening handshake, as it comes.
    answer: AnswerSlot,
    /// Where this connection goes: the socket's URL, or where redirects
    /// led, and how.
    target: Target,
    route: Route,
    redirects: u32,
    /// A redirect changed the host: the caller's `Authorization` and
    /// `Cookie` headers stay behind.
    credentials_dropped: bool,
    /// `socks5://`: the server's address, resolved here before connecting
    /// to the proxy (`resolving_target` while that is under way).
    target_addr: Option<SocketAddr>,
    resolving_target: bool,
    // ----- across connections (automatic reconnection) -----
    backoff: Backoff,
    /// How many times the socket opened.
    opens: u32,
    /// When the current connection opened: a stable one resets the
    /// backoff.
    opened_at: Option<Instant>,
    /// The current connection's failure, if one came.
    lost: Option<Lost>,
    /// The library is shutting down: end, never retry.
    no_retry: bool,
    /// `ws_reconnect` asked for this connection's end: retry at once.
    manual: bool,
    // ----- statistics --------------------------------------------------
    /// The socket's totals, but for the bytes on the wire (the stream
    /// keeps those) and the current stream's frames received (added when
    /// it ends).
    stats: Stats,
    /// When the current attempt started, for `handshake_ms`.
    attempt_started: Option<Instant>,
    /// The payload of the latest ping sent and when, until its pong.
    ping_out: Option<(Vec<u8>, Instant)>,
}

impl Connection {
    pub fn new(socket: Arc<Socket>, now: Instant) -> Connection {
        let deadlines = Deadlines::connecting_until(now + socket.options.connect_timeout);
        // Differs per socket and per run, so that sockets dropped together
        // spread their retries.
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed = clock ^ socket.handle.rotate_left(32);
        Connection {
            token: Token(socket.handle as usize),
            target: socket.target.clone(),
            route: socket.route.clone(),
            socket,
            phase: Phase::Resolving,
            deadlines,
            scheduled: None,
            in_flight: 0,
            read_paused: false,
            detached: false,
            more_to_read: false,
            messages_taken: 0,
            answer: AnswerSlot::default(),
            redirects: 0,
            credentials_dropped: false,
            target_addr: None,
            resolving_target: false,
            backoff: Backoff::new(seed),
            opens: 0,
            opened_at: None,
            lost: None,
            no_retry: false,
            manual: false,
            stats: Stats::default(),
            attempt_started: None,
            ping_out: None,
        }
    }

    pub fn socket(&self) -> &Arc<Socket> {
        &self.socket
    }

    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.next()
    }

    // ----- connecting --------------------------------------------------

    pub fn start(&mut self, ctx: &mut Ctx<'_>) {
        if self.attempt_started.is_none() {
            self.attempt_started = Some(ctx.now());
        }
        // `socks5://` sends the server's address: find it first.
        let local_dns = matches!(
            self.route.proxy.as_ref().map(|p| p.kind),
            Some(ProxyKind::Socks5 { remote_dns: false })
        );
        if local_dns && self.target.ip.is_none() && self.target_addr.is_none() {
            self.resolving_target = true;
            let target = &self.target;
            return ctx
                .resolver
                .resolve(self.socket.handle, &target.host, target.port);
        }
        let (host, ip, port) = self.route.first_hop(&self.target);
        match ip {
            Some(ip) => self.connect(ctx, vec![SocketAddr::new(ip, port)]),
            None => {
                log_at!(Debug, self.socket.handle, "resolving {host:?}");
                ctx.resolver.resolve(self.socket.handle, host, port)
            }
        }
    }

    pub fn on_resolved(&mut self, ctx: &mut Ctx<'_>, result: io::Result<Vec<SocketAddr>>) {
        if !matches!(self.phase, Phase::Resolving) {
            return;
        }
        let resolving_target = std::mem::take(&mut self.resolving_target);
        if resolving_target {
            if let Ok(addrs) = &result {
                if let Some(addr) = addrs.first() {
                    self.target_addr = Some(*addr);
                    return self.start(ctx);
                }
            }
        }
        // The name that was looked up: the server's for `socks5://`, else
        // the first hop's (the proxy's, when there is one).
        let host = match resolving_target {
            true => self.target.host.clone(),
            false => self.route.first_hop(&self.target).0.to_owned(),
        };
        let what = match resolving_target {
            true => "",
            false => self.first_hop_kind().trim_end_matches("at "),
        };
        match result {
            Ok(addrs) if !addrs.is_empty() => {
                log_at!(
                    Info,
                    self.socket.handle,
                    "resolved {host:?}: {}",
                    addrs
                        .iter()
                        .map(|a| a.ip().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                self.connect(ctx, addrs)
            }
            Ok(_) => {
                let message = format!("{what}{host:?} has no address");
                self.fail(ctx, Failure::new(AsyncErrorKind::Dns, message))
            }
            Err(e) => {
                let message = format!("cannot resolve {what}{host:?}: {e}");
                self.fail(ctx, Failure::new(AsyncErrorKind::Dns, message))
            }
        }
    }

    /// Starts connecting to the host's addresses, raced as RFC 8305 says.
    fn connect(&mut self, ctx: &mut Ctx<'_>, addrs: Vec<SocketAddr>) {
        let race = Race::new(addrs, self.socket.options.happy_eyeballs_delay);
        self.phase = Phase::Connecting {
            attempts: Vec::with_capacity(1),
            race,
        };
        self.start_attempts(ctx);
    }

    /// Starts the next attempt, and the one after at once if it cannot
    /// even begin; fails the connection when nothing is left to try.
    fn start_attempts(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let to = self.first_hop_kind();
        let Phase::Connecting { attempts, race } = &mut self.phase else {
            return;
        };
        while let Some(addr) = race.start(now) {
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
                    log_at!(Info, self.socket.handle, "connecting to {addr}");
                    attempts.push((stream, addr));
                    break;
                }
                Err(e) => {
                    let why = format!("cannot connect to {to}{addr}: {e}");
                    log_at!(Debug, self.socket.handle, "{why}");
                    race.failed(why);
                }
            }
        }
        self.deadlines.attempt = race.deadline();
        if attempts.is_empty() {
            let message = race
                .take_last_error()
                .unwrap_or_else(|| "no address to connect to".into());
            self.fail(ctx, Failure::new(AsyncErrorKind::Connect, message));
        }
    }

    /// How connect errors name what they tried to reach.
    fn first_hop_kind(&self) -> &'static str {
        match self.route.proxy {
            Some(_) => "the proxy at ",
            None => "",
        }
    }

    /// Readiness while connecting: some connect finished one way or the
    /// other. The first to succeed wins and the others are closed.
    fn on_connecting_ready(&mut self, ctx: &mut Ctx<'_>) {
        let to = self.first_hop_kind();
        let Phase::Connecting { attempts, race } = &mut self.phase else {
            return;
        };
        let mut winner = None;
        let mut i = 0;
        while i < attempts.len() {
            let (stream, _) = &attempts[i];
            let error = match stream.take_error() {
                Ok(Some(e)) | Err(e) => Some(e),
                Ok(None) => match stream.peer_addr() {
                    Ok(_) => None,
                    // Not connected yet (or a spurious wake-up).
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        i += 1;
                        continue;
                    }
                    Err(e) => Some(e),
                },
            };
            let (mut stream, addr) = attempts.swap_remove(i);
            match error {
                None => {
                    log_at!(Info, self.socket.handle, "connected to {addr}");
                    winner = Some(stream);
                    break;
                }
                Some(e) => {
                    let _ = ctx.registry.deregister(&mut stream);
                    let why = format!("cannot connect to {to}{addr}: {e}");
                    log_at!(Debug, self.socket.handle, "{why}");
                    race.failed(why);
                }
            }
        }
        let Some(mut stream) = winner else {
            if attempts.is_empty() || race.is_due(ctx.now()) {
                return self.start_attempts(ctx);
            }
            self.deadlines.attempt = race.deadline();
            return;
        };
        for (mut loser, _) in attempts.drain(..) {
            let _ = ctx.registry.deregister(&mut loser);
        }
        self.deadlines.attempt = None;
        self.phase = Phase::Resolving;
        // Small messages go out at once; batching is done above the socket.
        let _ = stream.set_nodelay(true);
        let Some(proxy) = &self.route.proxy else {
            return self.start_handshake(ctx, Link::Tcp(stream), Vec::new());
        };
        let tunnel = match Exchange::new(proxy, &self.target, self.target_addr) {
            Ok(tunnel) => tunnel,
            Err(message) => {
                let _ = ctx.registry.deregister(&mut stream);
                return self.fail(ctx, Failure::new(AsyncErrorKind::Proxy, message));
            }
        };
        #[cfg(feature = "tls")]
        let link = Link::new(stream, self.route.proxy_tls.as_ref());
        #[cfg(not(feature = "tls"))]
        let link = io::Result::Ok(Link::Tcp(stream));
        match link {
            Ok(link) => {
                log_at!(
                    Info,
                    self.socket.handle,
                    "asking the proxy {}:{} ({}) for a tunnel to {}:{}",
                    proxy.host,
                    proxy.port,
                    match (proxy.kind, proxy.secure) {
                        (ProxyKind::Http, false) => "HTTP CONNECT",
                        (ProxyKind::Http, true) => "HTTP CONNECT over TLS",
                        (ProxyKind::Socks5 { remote_dns: false }, _) => "SOCKS5",
                        (ProxyKind::Socks5 { remote_dns: true }, _) => "SOCKS5, its DNS",
                    },
                    self.target.host,
                    self.target.port
                );
                self.phase = Phase::Tunneling { link, tunnel };
                self.on_tunnel_ready(ctx);
            }
            Err(e) => {
                let message = format!("TLS setup for the proxy failed: {e}");
                self.fail(ctx, Failure::new(AsyncErrorKind::Tls, message));
            }
        }
    }

    /// Readiness while asking a proxy for a tunnel; once it is up,
    /// TLS and the WebSocket handshake start inside it, with the bytes that
    /// came after the proxy's answer.
    fn on_tunnel_ready(&mut self, ctx: &mut Ctx<'_>) {
        let Phase::Tunneling { link, tunnel } = &mut self.phase else {
            return;
        };
        let proxy = self
            .route
            .proxy
            .as_ref()
            .expect("tunneling through a proxy");
        match exchange(link, tunnel, proxy) {
            Ok(None) => {}
            Ok(Some(leftover)) => {
                let Phase::Tunneling { link, .. } =
                    std::mem::replace(&mut self.phase, Phase::Resolving)
                else {
                    unreachable!("matched above");
                };
                match link.tls_summary() {
                    Some(tls) => {
                        log_at!(Info, self.socket.handle, "tunnel up ({tls} to the proxy)")
                    }
                    None => log_at!(Info, self.socket.handle, "tunnel up"),
                }
                self.start_handshake(ctx, link, leftover);
            }
            Err(failure) => self.fail(ctx, failure),
        }
    }

    /// Wraps the connected stream (TLS for wss://) and starts the opening
    /// handshake; both advance with readiness from here on. `first_bytes`
    /// were read from the connection already and come before the socket's.
    fn start_handshake(&mut self, ctx: &mut Ctx<'_>, link: Link, first_bytes: Vec<u8>) {
        self.answer = AnswerSlot::default();
        let stream = match Stream::new(
            link,
            &self.route,
            first_bytes,
            &self.socket.options,
            self.answer.clone(),
            self.socket.stats.clone(),
        ) {
            Ok(stream) => stream,
            Err(e) => {
                let failure = Failure::new(AsyncErrorKind::Tls, format!("TLS setup failed: {e}"));
                return self.fail(ctx, failure);
            }
        };
        let keep_credentials = !self.credentials_dropped;
        let headers = self.socket.handshake_headers();
        let options = &self.socket.options;
        let request = match handshake::request(&self.target, options, &headers, keep_credentials) {
            Ok(request) => request,
            Err(failure) => return self.fail(ctx, failure),
        };
        let config = handshake::config(&self.socket.options);
        match ClientHandshake::start(stream, request, Some(config)) {
            Ok(mid) => self.on_handshake_step(ctx, mid.handshake()),
            Err(e) => self.on_handshake_failure(ctx, e),
        }
    }

    fn on_handshake_step(
        &mut self,
        ctx: &mut Ctx<'_>,
        step: Result<(WebSocket<Stream>, Response), HandshakeError<ClientHandshake<Stream>>>,
    ) {
        match step {
            Ok((ws, response)) => self.on_open(ctx, ws, &response),
            Err(HandshakeError::Interrupted(mid)) => self.phase = Phase::Handshaking(mid),
            Err(HandshakeError::Failure(e)) => self.on_handshake_failure(ctx, e),
        }
    }

    /// The handshake failed: a refusal, unless it is a redirect to follow.
    fn on_handshake_failure(&mut self, ctx: &mut Ctx<'_>, e: tungstenite::Error) {
        self.keep_answer();
        if let tungstenite::Error::Http(response) = &e {
            let status = response.status().as_u16();
            if matches!(status, 301 | 302 | 303 | 307 | 308)
                && self.socket.options.max_redirects > 0
            {
                return match self.follow(status, response.headers().get("Location")) {
                    Ok(()) => self.start(ctx),
                    Err(failure) => self.fail(ctx, failure),
                };
            }
        }
        let failure = failure::handshake_failure(e, &self.target.host);
        self.fail(ctx, failure)
    }

    /// Points the connection at a redirect's `Location`: relative or
    /// absolute, `http(s)` read as `ws(s)`, never from `wss` to `ws`; a
    /// change of host leaves the caller's credentials behind. The connect
    /// timeout keeps running over every hop.
    fn follow(
        &mut self,
        status: u16,
        location: Option<&tungstenite::http::HeaderValue>,
    ) -> Result<(), Failure> {
        let refuse =
            |why: String| Failure::new(AsyncErrorKind::Handshake, why).with_http_status(status);
        let max = self.socket.options.max_redirects;
        if self.redirects >= max {
            return Err(refuse(format!(
                "too many redirects: the server answered HTTP {status} after {max} already followed"
            )));
        }
        let location = location.and_then(|v| v.to_str().ok()).ok_or_else(|| {
            refuse(format!(
                "the server answered HTTP {status} without a usable Location"
            ))
        })?;
        let next = redirect_target(&self.target, location).map_err(refuse)?;
        if self.target.secure && !next.secure {
            return Err(refuse(format!(
                "refused a redirect from wss:// to ws:// ({location}): it would drop encryption"
            )));
        }
        // The new host may be one the proxy settings exempt, or not.
        let route = self
            .route
            .redirected(&next)
            .map_err(|e| {
                refuse(format!(
                    "cannot follow the redirect to {location}: {}",
                    e.message
                ))
            })?
            .reselected(&next, &self.socket.options);
        if !next.host.eq_ignore_ascii_case(&self.target.host) {
            self.credentials_dropped = true;
        }
        self.redirects += 1;
        log_at!(
            Info,
            self.socket.handle,
            "following an HTTP {status} redirect to {}:{}",
            next.host,
            next.port
        );
        self.target_addr = None;
        self.socket.set_redirected_to(Some(next.url.as_str()));
        self.target = next;
        self.route = route;
        self.phase = Phase::Resolving;
        Ok(())
    }

    /// Makes the handshake's answer (what came of it) the socket's, for
    /// `ws_response_*` from the `open` or `error` callback on.
    fn keep_answer(&self) {
        let answer = crate::sync::lock(&self.answer).take();
        self.socket.set_answer(answer);
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_>, mut ws: WebSocket<Stream>, response: &Response) {
        self.keep_answer();
        let agreed = match handshake::agreed(response, &self.socket.options) {
            Ok(agreed) => agreed,
            Err(failure) => {
                let _ = ctx.registry.deregister(ws.get_mut().tcp_mut());
                return self.fail(ctx, failure);
            }
        };
        ws.get_mut().agree(agreed.deflate.as_ref());
        if let Some(tls) = ws.get_ref().tls_summary() {
            log_at!(Info, self.socket.handle, "TLS established: {tls}");
        }
        self.phase = Phase::Open {
            ws,
            closing: Closing::No,
        };
        self.deadlines.connect = None;
        if self.detached {
            return self.begin_close(ctx, Some((CloseCode::Away.into(), String::new())));
        }
        let protocol = handshake::accepted_protocol(response);
        log_at!(
            Info,
            self.socket.handle,
            "open: HTTP {}, subprotocol {:?}, extensions {:?}",
            response.status().as_u16(),
            protocol.as_deref().unwrap_or(""),
            agreed.extensions
        );
        if !self
            .socket
            .mark_open(protocol, agreed.extensions, agreed.deflate)
        {
            // Closed while connecting: the close request aborts it.
            return;
        }
        if let Some(interval) = self.socket.options.ping_interval {
            self.deadlines.ping = Some(ctx.now() + interval);
        }
        if self.socket.options.reconnect.enabled {
            self.opened_at = Some(ctx.now());
        }
        let attempt = self.opens;
        self.opens += 1;
        self.stats.connections += 1;
        if let Some(started) = self.attempt_started.take() {
            let ms = ctx.now().saturating_duration_since(started).as_millis();
            self.stats.handshake_ms = u32::try_from(ms).unwrap_or(u32::MAX);
        }
        self.publish_stats();
        ctx.delivery.open(&self.socket, attempt);
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
            Phase::Open { ws, .. } => ws.get_mut().on_readiness(read_closed),
            _ => {}
        }
        self.on_ready(ctx);
    }

    /// Drives whatever the phase waits for; also called without a new
    /// event (a read budget ran out, reading resumed).
    pub fn on_ready(&mut self, ctx: &mut Ctx<'_>) {
        match &mut self.phase {
            Phase::Connecting { .. } => self.on_connecting_ready(ctx),
            Phase::Tunneling { .. } => self.on_tunnel_ready(ctx),
            Phase::Handshaking(_) => {
                let Phase::Handshaking(mid) = std::mem::replace(&mut self.phase, Phase::Resolving)
                else {
                    unreachable!("matched above");
                };
                self.on_handshake_step(ctx, mid.handshake());
            }
            Phase::Open { .. } => self.drive(ctx),
            Phase::Resolving | Phase::Waiting | Phase::Done => {}
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
    /// socket did not take) or in the socket's outbox (sent, not yet
    /// staged). tungstenite holds none between turns: every pump ends in
    /// its flush, which hands its buffer to the stream whole.
    fn has_output_waiting(&self) -> bool {
        let Phase::Open { ws, .. } = &self.phase else {
            return false;
        };
        ws.get_ref().has_queued() || self.socket.outbox().has_frames()
    }

    /// Sends what is queued: tungstenite's frames and ours, in order,
    /// until the socket would block or nothing is left.
    pub fn pump(&mut self, ctx: &mut Ctx<'_>) {
        loop {
            let Phase::Open { ws, .. } = &mut self.phase else {
                return;
            };
            match ws.flush() {
                Ok(()) => {
                    self.written(ctx);
                }
                Err(e) if failure::would_block(&e) => return,
                Err(e) => return self.on_stream_error(ctx, e),
            }
            if !self.stage_outbound() {
                return;
            }
        }
    }

    fn read_all(&mut self, ctx: &mut Ctx<'_>) {
        for _ in 0..READ_BUDGET {
            if !self.detached && self.socket.hold_is_full() && self.socket.pause_reading() {
                self.read_paused = true;
                return;
            }
            let Phase::Open { ws, closing } = &mut self.phase else {
                return;
            };
            if closing.is_failed() {
                // After a failure only the peer's hang-up matters.
                let mut discard = [0u8; 4096];
                match ws.get_mut().read(&mut discard) {
                    Ok(0) => return self.finish(ctx, Ending::abnormal()),
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return self.finish(ctx, Ending::abnormal()),
                }
            }
            if ws.get_mut().nothing_to_read(self.messages_taken) {
                return;
            }
            let read = ws.read();
            self.messages_taken += u64::from(read.is_ok());
            match read {
                Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                    self.stats.messages_received += 1;
                    self.stats.payload_bytes_received += message.len() as u64;
                    // Before the callback, which may read them.
                    let frames = self.stats.frames_received + ws.get_ref().frames_received();
                    self.socket.stats.publish_received(&self.stats, frames);
                    if !self.detached {
                        let staging = StagingGuard::new(self.socket.handle);
                        ctx.delivery.message(&self.socket, message);
                        drop(staging);
                        // What the callback sent must precede any close
                        // frame that a later frame of this pass triggers.
                        self.stage_outbound();
                    }
                }
                Ok(Message::Pong(payload)) => {
                    self.deadlines.pong = None;
                    self.on_pong(&payload);
                    self.publish_stats();
                }
                // tungstenite answers it.
                Ok(Message::Ping(_)) => {
                    self.stats.frames_sent += 1;
                    self.publish_stats();
                }
                Ok(Message::Frame(_)) => {}
                Ok(Message::Close(frame)) => self.on_close_frame(ctx, frame),
                Err(e) if failure::would_block(&e) => return,
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
    /// False when there was none, or data may no longer be sent.
    fn stage_outbound(&mut self) -> bool {
        let Phase::Open { ws, closing } = &mut self.phase else {
            return false;
        };
        if !closing.is_open() {
            return false;
        }
        let mut staged = false;
        let stats = &mut self.stats;
        ws.get_mut().queue_with(|frames| {
            let taken = self.socket.outbox().take(frames);
            self.in_flight += taken.payload;
            if taken.messages > 0 {
                stats.messages_sent += taken.messages as u64;
                stats.frames_sent += taken.messages as u64;
                stats.payload_bytes_sent += taken.payload as u64;
                self.socket.stats.publish_sent(stats);
            }
            // Empty messages are frames too: judge by bytes, not payload.
            staged = !frames.is_empty();
        });
        staged
    }

    /// The stream took everything staged: it leaves `bufferedAmount`,
    /// which may fall to the socket's low threshold.
    #[inline]
    fn written(&mut self, ctx: &mut Ctx<'_>) {
        let bytes = std::mem::take(&mut self.in_flight);
        if bytes == 0 {
            return;
        }
        if let Some(buffered) = self.socket.written(bytes) {
            if !self.detached {
                ctx.delivery.buffered_low(&self.socket, buffered);
            }
        }
    }

    /// Resumes reading that stopped while held messages were over limit.
    pub fn resume_reading(&mut self, ctx: &mut Ctx<'_>) {
        if self.read_paused && !self.socket.hold_is_full() {
            self.read_paused = false;
            self.socket.reading_resumed();
            self.drive(ctx);
        }
    }

    fn on_close_frame(&mut self, ctx: &mut Ctx<'_>, frame: Option<CloseFrame>) {
        let Phase::Open { ws, closing } = &mut self.phase else {
            return;
        };
        let (code, reason) = frame.map_or((closing::no_status(), String::new()), |f| {
            (u16::from(f.code), f.reason.as_str().to_owned())
        });
        // The code as the peer sent it: tungstenite reports a code that may
        // not be sent (999, 1005, 1006, 1015, 5000...) as 1002.
        let wire_code = ws.get_ref().peer_close_code();
        log_at!(
            Info,
            self.socket.handle,
            "received close {}",
            match wire_code {
                Some(c) => format!("{c} {reason:?}"),
                None => "without a code".to_owned(),
            }
        );
        // tungstenite answers the peer's close unless ours went first.
        self.stats.frames_sent += u64::from(closing.is_open());
        let frames = self.stats.frames_received + ws.get_ref().frames_received();
        self.socket.stats.publish_received(&self.stats, frames);
        self.socket.stats.publish_sent(&self.stats);
        match closing.on_peer_close(code, reason, wire_code) {
            PeerClose::Closing => {
                self.socket.outbox().mark_closing();
                self.deadlines.stop_keepalive();
                // RFC 6455 7.1.1: the server closes TCP first; do not wait
                // forever.
                let at = ctx.now() + self.socket.options.close_timeout;
                self.deadlines.close_by(at, false);
            }
            // The browser fails such a connection: error, then 1006.
            PeerClose::InvalidCode => {
                let message = "the peer sent a close frame with an invalid close code";
                self.fail(ctx, Failure::new(AsyncErrorKind::Protocol, message));
            }
            PeerClose::Ignored => {}
        }
    }

    /// Both close frames went by and the peer closed TCP.
    fn on_closing_handshake_done(&mut self, ctx: &mut Ctx<'_>) {
        let ending = match &mut self.phase {
            Phase::Open { closing, .. } => closing.on_hang_up(),
            _ => Ending::abnormal(),
        };
        self.finish(ctx, ending);
    }

    fn on_stream_error(&mut self, ctx: &mut Ctx<'_>, e: tungstenite::Error) {
        let answer = match &mut self.phase {
            Phase::Open { closing, .. } => closing.on_stream_error(failure::is_size_or_utf8(&e)),
            _ => OnError::Fail,
        };
        match answer {
            OnError::End(ending) => self.finish(ctx, ending),
            OnError::Fail => self.fail(ctx, failure::open_failure(e)),
        }
    }

    // ----- closing -----------------------------------------------------

    /// A caller's `close` reached the IO thread.
    pub fn on_close_request(&mut self, ctx: &mut Ctx<'_>) {
        match self.socket.outbox().close_request() {
            Some(CloseRequest::Abort) => self.finish(ctx, Ending::abnormal()),
            Some(CloseRequest::Handshake(frame)) => self.begin_close(ctx, frame),
            None => {}
        }
    }

    /// The caller freed the socket: close politely if open, deliver nothing.
    pub fn on_free(&mut self, ctx: &mut Ctx<'_>) {
        self.detached = true;
        self.close_going_away(ctx);
    }

    /// Library shutdown: close as `free` would, but still deliver events.
    pub fn on_shutdown(&mut self, ctx: &mut Ctx<'_>) {
        self.no_retry = true;
        self.close_going_away(ctx);
    }

    fn close_going_away(&mut self, ctx: &mut Ctx<'_>) {
        match self.phase {
            Phase::Open { .. } => {
                self.begin_close(ctx, Some((CloseCode::Away.into(), String::new())))
            }
            _ => self.finish(ctx, Ending::abnormal()),
        }
    }

    /// Sends what was queued before the close, then the close frame, and
    /// waits for the peer's answer up to the close timeout. Before the
    /// connection is open, a close drops the attempt.
    fn begin_close(&mut self, ctx: &mut Ctx<'_>, frame: Option<(u16, String)>) {
        let Phase::Open { closing, .. } = &self.phase else {
            return self.finish(ctx, Ending::abnormal());
        };
        if !closing.is_open() {
            return;
        }
        self.socket.outbox().mark_closing();
        self.stage_outbound();
        let Phase::Open { ws, closing } = &mut self.phase else {
            unreachable!("checked above");
        };
        closing.begin();
        self.deadlines.stop_keepalive();
        let at = ctx.now() + self.socket.options.close_timeout;
        self.deadlines.close_by(at, true);
        let frame = frame.map(|(code, reason)| CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        });
        log_at!(
            Info,
            self.socket.handle,
            "sending close {}",
            frame
                .as_ref()
                .map_or("without a code".to_owned(), |f| format!(
                    "{} {:?}",
                    u16::from(f.code),
                    f.reason.as_str()
                ))
        );
        let sent = ws.close(frame);
        self.stats.frames_sent += 1;
        self.socket.stats.publish_sent(&self.stats);
        match sent {
            Ok(()) => {
                self.written(ctx);
            }
            Err(e) if failure::would_block(&e) => {}
            Err(e) => self.on_stream_error(ctx, e),
        }
    }

    /// Reports a failure (once) and ends the connection: with a close frame
    /// when the connection speaks WebSocket, so the peer learns why. A
    /// failure that another attempt will follow is not reported: the
    /// `reconnecting` event carries it.
    fn fail(&mut self, ctx: &mut Ctx<'_>, failure: Failure) {
        let close_code = failure.close_code;
        let reported = matches!(&self.phase, Phase::Open { closing, .. } if closing.is_failed());
        if !reported && self.lost.is_none() {
            let retrying = failure.transient && self.may_retry();
            if !self.detached && !retrying {
                ctx.delivery.error(
                    &self.socket,
                    failure.kind,
                    &failure.message,
                    failure.http_status,
                );
            }
            self.lost = Some(Lost {
                failure,
                reported: !retrying,
            });
        }
        self.deadlines.stop_keepalive();
        self.deadlines.connect = None;
        let Phase::Open { ws, closing } = &mut self.phase else {
            return self.finish(ctx, Ending::abnormal());
        };
        match closing.fail(close_code) {
            OnFail::SendClose(code) => {
                let frame = CloseFrame {
                    code,
                    reason: "".into(),
                };
                // Once the frame is out, half-close so the peer sees our
                // end.
                if ws.close(Some(frame)).is_ok() {
                    let _ = ws.get_ref().tcp().shutdown(std::net::Shutdown::Write);
                }
            }
            OnFail::Flush => {
                let _ = ws.flush();
            }
            OnFail::End => return self.finish(ctx, Ending::abnormal()),
        }
        // Drain the peer's bytes until it hangs up or the close timeout
        // passes.
        let at = ctx.now() + self.socket.options.close_timeout;
        self.deadlines.close_by(at, true);
        self.read_all(ctx);
    }

    /// Ends the connection and the socket with it.
    fn finish(&mut self, ctx: &mut Ctx<'_>, ending: Ending) {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Connecting { attempts, .. } => {
                for (mut stream, _) in attempts {
                    let _ = ctx.registry.deregister(&mut stream);
                }
            }
            Phase::Tunneling { mut link, .. } => {
                let _ = ctx.registry.deregister(link.tcp_mut());
            }
            Phase::Handshaking(mut mid) => {
                fold_stream(&mut self.stats, mid.get_ref().get_ref());
                let _ = ctx.registry.deregister(mid.get_mut().get_mut().tcp_mut());
            }
            Phase::Open { mut ws, .. } => {
                fold_stream(&mut self.stats, ws.get_ref());
                let _ = ctx.registry.deregister(ws.get_mut().tcp_mut());
            }
            Phase::Resolving | Phase::Waiting => {}
            Phase::Done => return,
        }
        self.attempt_started = None;
        self.ping_out = None;
        self.publish_stats();
        self.deadlines = Deadlines::default();
        match self.after_loss(ctx, &ending) {
            Some(Decision::Retry { attempt, delay }) => self.wait(ctx, ending, attempt, delay),
            Some(Decision::GiveUp { attempts }) => self.give_up(ctx, &ending, attempts),
            None => end_socket(&self.socket, ctx.delivery, ending),
        }
    }

    // ----- timers ------------------------------------------------------

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let options = &self.socket.options;
        match self.deadlines.due(now) {
            Some(Due::Connect) => {
                let ms = options.connect_timeout.as_millis();
                let refused = crate::sync::lock(&self.answer)
                    .as_ref()
                    .filter(|a| a.status != 101)
                    .map(|a| (a.status, a.reason.clone()));
                let failure = match refused {
                    // The refusal came, its body did not: the answer as far
                    // as it came is still the best explanation.
                    Some((status, reason)) => {
                        self.keep_answer();
                        let message = format!(
                            "server answered HTTP {status} {reason} instead of 101 Switching \
                             Protocols, and its body did not come within the connect timeout \
                             ({ms} ms)"
                        );
                        Failure::new(AsyncErrorKind::Timeout, message).with_http_status(status)
                    }
                    None => Failure::new(
                        AsyncErrorKind::Timeout,
                        format!("connection not established within {ms} ms"),
                    ),
                };
                self.fail(ctx, failure);
            }
            Some(Due::Close) => {
                let ending = match &mut self.phase {
                    Phase::Open { closing, .. } => closing.on_close_timeout(),
                    _ => Ending::abnormal(),
                };
                self.finish(ctx, ending);
            }
            Some(Due::Pong) => {
                let ms = options
                    .effective_pong_timeout()
                    .unwrap_or_default()
                    .as_millis();
                let message = format!("no pong within {ms} ms of a ping");
                self.fail(ctx, Failure::new(AsyncErrorKind::Timeout, message));
            }
            Some(Due::Ping) => self.send_ping(ctx),
            Some(Due::Retry) => self.retry(ctx),
            Some(Due::Attempt) => {
                self.deadlines.attempt = None;
                self.start_attempts(ctx);
            }
            None => {}
        }
    }

    fn send_ping(&mut self, ctx: &mut Ctx<'_>) {
        let Phase::Open { ws, .. } = &mut self.phase else {
            return;
        };
        let options = &self.socket.options;
        let now = ctx.now();
        self.deadlines.ping_sent(
            now + options.ping_interval.unwrap_or_default(),
            now + options.effective_pong_timeout().unwrap_or_default(),
        );
        let sent = ws.write(Message::Ping(Default::default()));
        self.stats.frames_sent += 1;
        self.stats.pings_sent += 1;
        self.ping_out = Some((Vec::new(), now));
        self.publish_stats();
        match sent {
            Ok(()) => self.pump(ctx),
            Err(e) if failure::would_block(&e) => {}
            Err(e) => self.on_stream_error(ctx, e),
        }
    }

    /// `ws_ping`: the caller's ping goes out now, ahead of queued messages.
    pub fn on_ping_request(&mut self, ctx: &mut Ctx<'_>) {
        let Some(payload) = self.socket.outbox().take_ping() else {
            return;
        };
        let Phase::Open { ws, closing } = &mut self.phase else {
            return;
        };
        if !closing.is_open() {
            return;
        }
        let sent = ws.write(Message::Ping(payload.clone().into()));
        self.stats.frames_sent += 1;
        self.stats.pings_sent += 1;
        self.ping_out = Some((payload, ctx.now()));
        self.publish_stats();
        match sent {
            Ok(()) => self.pump(ctx),
            Err(e) if failure::would_block(&e) => {}
            Err(e) => self.on_stream_error(ctx, e),
        }
    }

    /// A pong came: the round trip of the ping it answers, if it answers
    /// the latest one (a pong may also come unasked, or for an older ping).
    fn on_pong(&mut self, payload: &[u8]) {
        self.stats.pongs_received += 1;
        if self.ping_out.as_ref().is_some_and(|(p, _)| p == payload) {
            let (_, sent) = self.ping_out.take().expect("checked above");
            let us = sent.elapsed().as_micros();
            self.stats.last_rtt_us = u32::try_from(us).unwrap_or(u32::MAX);
            self.stats.pings_answered += 1;
        }
    }

    /// Makes the socket's totals readable by any thread (the message
    /// path stores the few it moves itself).
    fn publish_stats(&self) {
        let mut stats = self.stats;
        let stream = match &self.phase {
            Phase::Handshaking(mid) => Some(mid.get_ref().get_ref()),
            Phase::Open { ws, .. } => Some(ws.get_ref()),
            _ => None,
        };
        if let Some(stream) = stream {
            fold_stream(&mut stats, stream);
        }
        self.socket.stats.publish(&stats);
    }
}

/// Adds a stream's frames received to `stats`.
fn fold_stream(stats: &mut Stats, stream: &Stream) {
    stats.frames_received += stream.frames_received();
}

/// Moves the proxy exchange's bytes, writing whenever it has something to
/// say and reading otherwise, until the socket would block (Ok None) or the
/// tunnel is up (Ok with the bytes read past the proxy's last answer).
fn exchange(
    stream: &mut Link,
    tunnel: &mut Exchange,
    proxy: &crate::proxy::Proxy,
) -> Result<Option<Vec<u8>>, Failure> {
    let broken = |e: io::Error| {
        let at = format!("{}:{}", proxy.host, proxy.port);
        #[cfg(feature = "tls")]
        if let Some(tls) = crate::tls::describe_failure(&e, &proxy.host) {
            let tls = tls.replace("the server's certificate", "the proxy's certificate");
            let failure = Failure::new(AsyncErrorKind::Tls, format!("proxy {at}: {tls}"));
            return match crate::tls::is_certificate_failure(&e) {
                true => failure,
                false => failure.transient(),
            };
        }
        Failure::new(AsyncErrorKind::Connect, format!("proxy {at}: {e}")).transient()
    };
    loop {
        while !tunnel.to_write().is_empty() {
            match stream.write(tunnel.to_write()) {
                Ok(n) => tunnel.wrote(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(broken(e)),
            }
        }
        let n = match stream.read(tunnel.read_buf()) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(broken(e)),
        };
        let progress = tunnel
            .filled(n)
            .map_err(|message| Failure::new(AsyncErrorKind::Proxy, message))?;
        if let Progress::Established { leftover } = progress {
            return Ok(Some(leftover));
        }
    }
}

/// The target a redirect's `Location` names, read against the current URL.
fn redirect_target(current: &Target, location: &str) -> Result<Target, String> {
    let mut url = current
        .url
        .join(location)
        .map_err(|e| format!("the redirect's Location {location:?} is not a URL: {e}"))?;
    let scheme = match url.scheme() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        other => {
            return Err(format!(
            "the redirect's Location {location:?} has scheme {other:?}, not ws, wss, http or https"
        ))
        }
    };
    // Special schemes convert into each other (URL standard).
    let _ = url.set_scheme(scheme);
    url.set_fragment(None);
    Target::parse(url.as_str()).map_err(|e| format!("cannot follow the redirect: {}", e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        Target::parse(url).unwrap()
    }

    #[test]
    fn redirects_resolve_against_the_current_url() {
        let here = target("ws://example.org:9000/a/b?x=1");
        let cases = [
            ("/c", "ws://example.org:9000/c"),
            ("c?y=2", "ws://example.org:9000/a/c?y=2"),
            ("//other.net/d", "ws://other.net/d"),
            ("http://other.net:8080/e#frag", "ws://other.net:8080/e"),
            ("https://secure.net/f", "wss://secure.net/f"),
            ("wss://secure.net:444/g", "wss://secure.net:444/g"),
        ];
        for (location, expected) in cases {
            let next = redirect_target(&here, location).unwrap();
            assert_eq!(next.url.as_str(), expected, "{location}");
        }
        let secure = target("wss://example.org/");
        assert_eq!(
            redirect_target(&secure, "/next").unwrap().url.as_str(),
            "wss://example.org/next"
        );
        for bad in [
            "ftp://example.org/",
            "mailto:someone@example.org",
            "http://",
        ] {
            assert!(redirect_target(&here, bad).is_err(), "{bad}");
        }
    }
}
