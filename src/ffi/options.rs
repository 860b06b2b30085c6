//! `ws_options`: connection options built by functions, so the ABI can grow.

use std::os::raw::{c_char, c_int};

use super::args::str_arg;
use super::dispatcher::ws_dispatcher;
use super::error::status;
use super::panic::boundary;
use crate::client::HAS_TLS;
use crate::options::Options;
use crate::proxy::Proxy;
use crate::status::{Error, ErrorKind, Result};

/// Options for `ws_open_ex`. Opaque: create with `ws_options_new`, release
/// with `ws_options_free`. Not thread-safe: use one options object from one
/// thread at a time.
pub struct ws_options {
    pub(crate) inner: Options,
}

/// Runs `f` on the options behind `options`, or fails for NULL.
fn with_options(options: *mut ws_options, f: impl FnOnce(&mut Options) -> Result<()>) -> c_int {
    boundary(|| {
        // SAFETY: non-NULL pointers come from ws_options_new and are not yet
        // freed (the documented contract); one thread uses them at a time.
        let Some(options) = (unsafe { options.as_mut() }) else {
            return status(Err(Error::new(
                ErrorKind::InvalidArgument,
                "options is NULL",
            )));
        };
        status(f(&mut options.inner))
    })
}

fn string(ptr: *const c_char, what: &str) -> Result<String> {
    // SAFETY: the caller passes NULL or a NUL-terminated string that is
    // valid during this call (the documented contract).
    unsafe { str_arg(ptr, what, ErrorKind::InvalidArgument) }.map(str::to_owned)
}

fn needs_tls() -> Result<()> {
    if HAS_TLS {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Unsupported,
            "this build of wsembed has no TLS (ws_has_tls() is false)",
        ))
    }
}

/// Creates options with every default: connect timeout 30000 ms, close
/// timeout 5000 ms, no pings, max message size and send queue 64 MiB, no
/// subprotocols, no extra headers.
///
/// Ownership: the caller owns the result and frees it with
/// `ws_options_free`. NULL only if memory ran out. Any thread.
#[no_mangle]
pub extern "C" fn ws_options_new() -> *mut ws_options {
    boundary(|| {
        Box::into_raw(Box::new(ws_options {
            inner: Options::default(),
        }))
    })
}

/// Frees options from `ws_options_new`. NULL is ignored. Sockets opened with
/// them are unaffected: `ws_open_ex` copies what it needs.
#[no_mangle]
pub extern "C" fn ws_options_free(options: *mut ws_options) {
    boundary(|| {
        if !options.is_null() {
            // SAFETY: non-NULL pointers come from ws_options_new
            // (Box::into_raw) and are freed once (the documented contract).
            drop(unsafe { Box::from_raw(options) });
        }
    })
}

/// Adds a subprotocol to offer in `Sec-WebSocket-Protocol`, in order.
/// The server must pick one of them (or none); see `ws_protocol`.
///
/// Returns `WS_ERR_INVALID_ARGUMENT` for NULL, a string that is not an
/// RFC 6455 token, or one already added. The string is copied.
#[no_mangle]
pub extern "C" fn ws_options_add_protocol(
    options: *mut ws_options,
    subprotocol: *const c_char,
) -> c_int {
    with_options(options, |o| {
        o.add_protocol(&string(subprotocol, "subprotocol")?)
    })
}

/// Adds a header to the opening handshake (e.g. `Authorization`). Headers
/// the handshake writes itself (Host, Upgrade, Connection, Sec-WebSocket-*)
/// are refused, as are values with CR, LF or NUL: `WS_ERR_INVALID_ARGUMENT`.
/// Both strings are copied.
#[no_mangle]
pub extern "C" fn ws_options_add_header(
    options: *mut ws_options,
    name: *const c_char,
    value: *const c_char,
) -> c_int {
    with_options(options, |o| {
        o.add_header(
            &string(name, "header name")?,
            &string(value, "header value")?,
        )
    })
}

/// Time allowed for name resolution, TCP connect and the opening handshake
/// together (default 30000 ms). 0 is `WS_ERR_INVALID_ARGUMENT`. When it
/// passes the socket gets an `error` event (`WS_ERR_TIMEOUT`), then `close`.
#[no_mangle]
pub extern "C" fn ws_options_set_connect_timeout_ms(options: *mut ws_options, ms: u32) -> c_int {
    with_options(options, |o| o.set_connect_timeout_ms(ms))
}

/// How long one address of the server (or proxy) gets to connect before
/// the next is tried alongside it (default 250 ms, RFC 8305 "Happy
/// Eyeballs"); 0 tries one address at a time, the next only after a
/// failure. Values from 1 to 9 count as 10.
///
/// A host name with IPv6 and IPv4 addresses has them tried alternately,
/// IPv6 first: an attempt starts when the previous one failed or this
/// delay after it started, whichever comes first. The first connection
/// wins and the others are closed, so an address that never answers (a
/// broken IPv6 route, `localhost` as `::1` behind a firewall) costs this
/// delay rather than the whole connect timeout, which still bounds
/// everything.
#[no_mangle]
pub extern "C" fn ws_options_set_happy_eyeballs_delay_ms(
    options: *mut ws_options,
    ms: u32,
) -> c_int {
    with_options(options, |o| {
        o.happy_eyeballs_delay = std::time::Duration::from_millis(ms.into());
        Ok(())
    })
}

/// Time the peer has to answer a close frame and hang up (default 5000 ms).
/// Past it the connection is cut: `close` event with `was_clean` false when
/// the peer never answered. 0 is `WS_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn ws_options_set_close_timeout_ms(options: *mut ws_options, ms: u32) -> c_int {
    with_options(options, |o| o.set_close_timeout_ms(ms))
}

/// Sends a ping every `ms` while open (0, the default, turns pings off).
/// Pings run on the IO thread, so a slow callback elsewhere cannot starve
/// them for long, but a callback that never returns can.
#[no_mangle]
pub extern "C" fn ws_options_set_ping_interval_ms(options: *mut ws_options, ms: u32) -> c_int {
    with_options(options, |o| o.set_ping_interval_ms(ms))
}

/// How long to wait for a pong after a ping (default: one ping interval).
/// Past it the connection fails: `error` (`WS_ERR_TIMEOUT`), then `close`
/// 1006. Only used when a ping interval is set. 0 is
/// `WS_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn ws_options_set_pong_timeout_ms(options: *mut ws_options, ms: u32) -> c_int {
    with_options(options, |o| o.set_pong_timeout_ms(ms))
}

/// Largest message accepted, both ways (default 64 MiB). A bigger incoming
/// message fails the connection (close code 1009 sent, `error` event
/// `WS_ERR_PROTOCOL`); a bigger outgoing one is refused by `ws_send*` with
/// `WS_ERR_TOO_LARGE`. 0 is `WS_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn ws_options_set_max_message_size(options: *mut ws_options, bytes: usize) -> c_int {
    with_options(options, |o| o.set_max_message_size(bytes))
}

/// Limit of `ws_buffered_amount` (default 64 MiB): a send that would pass it
/// fails with `WS_ERR_QUEUE_FULL` and queues nothing. Incoming messages held
/// while no `message` callback is bound are bounded by the larger of this
/// and the max message size: past it, reading pauses until one is bound.
/// 0 is `WS_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn ws_options_set_max_send_queue(options: *mut ws_options, bytes: usize) -> c_int {
    with_options(options, |o| o.set_max_send_queue(bytes))
}

/// Adds trust roots for `wss://` from a PEM file (read when connecting).
/// `WS_ERR_UNSUPPORTED` in a build without TLS.
#[no_mangle]
pub extern "C" fn ws_options_set_ca_file(
    options: *mut ws_options,
    pem_path: *const c_char,
) -> c_int {
    with_options(options, |o| {
        let path = string(pem_path, "pem_path")?;
        needs_tls()?;
        o.tls.ca_files.push(path);
        Ok(())
    })
}

/// Adds trust roots for `wss://` given as PEM text (copied).
/// `WS_ERR_UNSUPPORTED` in a build without TLS.
#[no_mangle]
pub extern "C" fn ws_options_set_ca_pem(options: *mut ws_options, pem: *const c_char) -> c_int {
    with_options(options, |o| {
        let pem = string(pem, "pem")?;
        needs_tls()?;
        o.tls.ca_pems.push(pem);
        Ok(())
    })
}

/// Sets a client certificate chain and private key (PEM files) for mutual
/// TLS. `WS_ERR_UNSUPPORTED` in a build without TLS.
#[no_mangle]
pub extern "C" fn ws_options_set_client_cert(
    options: *mut ws_options,
    cert_pem_path: *const c_char,
    key_pem_path: *const c_char,
) -> c_int {
    with_options(options, |o| {
        let cert = string(cert_pem_path, "cert_pem_path")?;
        let key = string(key_pem_path, "key_pem_path")?;
        needs_tls()?;
        o.tls.client_cert = Some((cert, key));
        Ok(())
    })
}

/// DANGEROUS: with `true`, `wss://` accepts any certificate for any name,
/// so anyone on the path can read and change the traffic. For tests only.
/// Off by default. `WS_ERR_UNSUPPORTED` in a build without TLS.
#[no_mangle]
pub extern "C" fn ws_options_set_insecure_skip_verify(
    options: *mut ws_options,
    skip: bool,
) -> c_int {
    with_options(options, |o| {
        needs_tls()?;
        o.tls.insecure_skip_verify = skip;
        Ok(())
    })
}

/// The proxy for `ws://` and `wss://` alike, as a URL:
///
/// - `http://[user:pass@]host[:port]` (port 80 by default): HTTP CONNECT,
///   also for `ws://`; the credentials go as Basic auth. The proxy
///   resolves the server's name.
/// - `https://[user:pass@]host[:port]` (port 443 by default): the same
///   CONNECT exchange inside TLS to the proxy, so the credentials and the
///   server's name are not seen on the network. The proxy's certificate
///   is checked against the socket's trust settings
///   (`ws_options_set_ca_file`, `ws_options_set_insecure_skip_verify` apply to both
///   hops) and must be valid for the proxy's host. For a `wss://` server
///   that is TLS inside TLS: the server's certificate is checked for the
///   server's name.
/// - `socks5://[user:pass@]host[:port]` (port 1080 by default): SOCKS5,
///   with the server's name resolved here and its address sent to the
///   proxy.
/// - `socks5h://...`: SOCKS5 with the name sent to the proxy, which
///   resolves it (needed for names only the proxy can resolve, and it
///   keeps lookups off the local network). SOCKS5 credentials (RFC 1929,
///   1 to 255 bytes each) travel in clear: use them only to a proxy on a
///   trusted network.
/// - `""`: no proxy, even if the environment names one.
/// - NULL: back to the default, the environment's proxy (see
///   `ws_options_set_proxy_env`).
///
/// Credentials are percent-decoded and never appear in any message. A
/// proxy that refuses gives an `error` event `WS_ERR_PROXY` naming what it
/// said; one that cannot be reached, `WS_ERR_DNS` or `WS_ERR_CONNECT`
/// naming the proxy; a TLS failure with an `https://` proxy, `WS_ERR_TLS`
/// naming the proxy. TLS to a `wss://` server runs inside the tunnel and
/// checks the server's name, not the proxy's. `WS_ERR_INVALID_ARGUMENT`
/// for another scheme or a bad URL; `WS_ERR_UNSUPPORTED` for `https://`
/// in a build without TLS. The string is copied.
#[no_mangle]
pub extern "C" fn ws_options_set_proxy(
    options: *mut ws_options,
    proxy_url: *const c_char,
) -> c_int {
    with_options(options, |o| {
        if proxy_url.is_null() {
            o.proxy = None;
            return Ok(());
        }
        let url = string(proxy_url, "proxy_url")?;
        if !url.is_empty() {
            Proxy::parse(&url)?;
        }
        o.proxy = Some(url);
        Ok(())
    })
}

/// Whether sockets without an explicit proxy take one from the
/// environment (default true, as curl, Python `websockets` and Go do), at
/// `ws_open_ex` and again at each reconnection attempt:
///
/// - `ws://`: `ws_proxy`, `WS_PROXY`, then `http_proxy` (lowercase only:
///   `HTTP_PROXY` can be set by a web server's client through a `Proxy:`
///   header), then `all_proxy`, `ALL_PROXY`.
/// - `wss://`: `wss_proxy`, `WSS_PROXY`, `https_proxy`, `HTTPS_PROXY`,
///   `all_proxy`, `ALL_PROXY`.
///
/// An empty variable counts as unset; a value without a scheme is
/// `http://`. In a CGI program (`REQUEST_METHOD` set) no proxy variable is
/// read. `no_proxy`/`NO_PROXY` then exempt hosts (see
/// `ws_options_set_no_proxy`), and `localhost`, 127.0.0.0/8 and ::1 are
/// never sent through a proxy from the environment.
#[no_mangle]
pub extern "C" fn ws_options_set_proxy_env(options: *mut ws_options, use_env: bool) -> c_int {
    with_options(options, |o| {
        o.proxy_env = use_env;
        Ok(())
    })
}

/// The hosts to reach without a proxy, replacing the environment's
/// `no_proxy` and the loopback exemption (so `""` sends every host through
/// the proxy, loopback included; NULL goes back to the default). It
/// applies to an explicit proxy too.
///
/// Entries are separated by commas (or blanks). `*` alone matches every
/// host. A name matches itself and its subdomains on a label boundary,
/// without case, leading and trailing dots ignored (`example.com` and
/// `.example.com` both match `example.com` and `www.example.com`, not
/// `badexample.com`). An IP address, optionally with `/bits`, matches
/// servers given as IP addresses in that range (never a name). The string
/// is copied.
#[no_mangle]
pub extern "C" fn ws_options_set_no_proxy(options: *mut ws_options, list: *const c_char) -> c_int {
    with_options(options, |o| {
        o.no_proxy = match list.is_null() {
            true => None,
            false => Some(string(list, "list")?),
        };
        Ok(())
    })
}

/// Makes sockets opened with these options run their callbacks inside
/// `ws_dispatch(dispatcher, ...)` instead of on the IO thread (see
/// `ws_dispatcher_new`). 0 goes back to the default (the IO thread).
/// Returns `WS_ERR_INVALID_HANDLE` for a stale dispatcher. The dispatcher
/// must still exist when `ws_open_ex` runs (else that fails with
/// `WS_ERR_INVALID_HANDLE`); each socket opened with it keeps it in use
/// until the socket is freed.
#[no_mangle]
pub extern "C" fn ws_options_set_dispatcher(
    options: *mut ws_options,
    dispatcher: ws_dispatcher,
) -> c_int {
    with_options(options, |o| {
        if dispatcher != 0 {
            crate::client::dispatcher(dispatcher)?;
        }
        o.dispatcher = (dispatcher != 0).then_some(dispatcher);
        Ok(())
    })
}

/// Offers permessage-deflate (RFC 7692) compression when `offer` is true
/// (default false). It is a request: if the server declines, the socket
/// works uncompressed, and `ws_extensions` says what was agreed. When it is
/// agreed:
/// - messages are compressed on the thread that calls `ws_send*` (not on
///   the IO thread, not under a lock the IO thread takes), and inflated on
///   the IO thread as they arrive;
/// - `ws_buffered_amount`, the send-queue limit and the max message size
///   all count uncompressed bytes; an incoming message that inflates past
///   the max message size fails the connection (close 1009, `error` event
///   `WS_ERR_PROTOCOL`) without ever being held whole;
/// - memory: a compression context (about 256 KiB with a 15-bit window)
///   and an inflater (about 40 KiB) per socket, allocated with the first
///   compressed message; with `client_no_context_takeover` the compressor
///   is shared per sending thread instead, and with
///   `server_no_context_takeover` the inflater is freed after each message.
///
/// A server that names an extension that was not offered, or answers the
/// offer with parameters it may not use, fails the handshake
/// (`WS_ERR_HANDSHAKE`, message naming the problem), offering or not.
/// `WS_ERR_UNSUPPORTED` in a build without deflate (`ws_has_deflate()`).
#[no_mangle]
pub extern "C" fn ws_options_set_deflate(options: *mut ws_options, offer: bool) -> c_int {
    with_options(options, |o| o.set_deflate(offer))
}

/// The parameters of the deflate offer (used when `ws_options_set_deflate`
/// is on):
/// - `client_max_window_bits`: 0 (default) offers the parameter without a
///   value, letting the server choose our window; 9..15 caps it (less
///   memory, less compression). 8 is `WS_ERR_INVALID_ARGUMENT`: raw
///   deflate cannot produce it. If the server limits us to 8 bits, messages
///   are sent uncompressed, which the extension allows.
/// - `server_max_window_bits`: 0 (default) asks nothing; 8..15 asks the
///   server to compress with at most that window (saves its memory).
/// - `client_no_context_takeover`: we start every message with an empty
///   window (worse ratio, no compression state kept per socket).
/// - `server_no_context_takeover`: ask the server to do the same (lets us
///   drop the inflater between messages).
///
/// Other values are `WS_ERR_INVALID_ARGUMENT`. `WS_ERR_UNSUPPORTED` in a
/// build without deflate.
#[no_mangle]
pub extern "C" fn ws_options_set_deflate_params(
    options: *mut ws_options,
    client_max_window_bits: u8,
    server_max_window_bits: u8,
    client_no_context_takeover: bool,
    server_no_context_takeover: bool,
) -> c_int {
    with_options(options, |o| {
        o.set_deflate_params(
            client_max_window_bits,
            server_max_window_bits,
            client_no_context_takeover,
            server_no_context_takeover,
        )
    })
}

/// Messages shorter than `bytes` (default 1024) are sent uncompressed when
/// our side has no context takeover (compressing them alone costs more
/// than it saves); with context takeover every message is compressed, as
/// even small ones shrink against the shared window.
/// `WS_ERR_UNSUPPORTED` in a build without deflate.
#[no_mangle]
pub extern "C" fn ws_options_set_deflate_threshold(
    options: *mut ws_options,
    bytes: usize,
) -> c_int {
    with_options(options, |o| o.set_deflate_threshold(bytes))
}

/// zlib compression level, 0 (store only) to 9 (smallest, slowest);
/// default 6. Compression runs in `ws_send*` on the caller's thread. As a
/// guide, measured on JSON-like text on one core of a 2-vCPU cloud VM
/// (README, figure 6): level 1 compresses about 365 MB/s to 28% of the
/// size, level 6 about 80 MB/s to 17%, level 9 about 51 MB/s to 17%;
/// inflating runs at 700-750 MB/s whatever the level. Other values are
/// `WS_ERR_INVALID_ARGUMENT`. `WS_ERR_UNSUPPORTED` in a build without
/// deflate.
#[no_mangle]
pub extern "C" fn ws_options_set_deflate_level(options: *mut ws_options, level: c_int) -> c_int {
    with_options(options, |o| o.set_deflate_level(level))
}

/// Follows up to `n` HTTP redirects (301, 302, 303, 307, 308) of the
/// opening handshake; 0, the default, refuses them as browsers do (an
/// `error` event `WS_ERR_HANDSHAKE` whose `http_status` is the 3xx, with
/// `Location` readable through `ws_response_header`).
///
/// A redirect's `Location` may be relative or absolute; `http://` and
/// `https://` are read as `ws://` and `wss://`. A redirect from `wss://` to
/// `ws://` is refused. When a redirect changes the host, the
/// `Authorization` and `Cookie` headers added with `ws_options_add_header`
/// are not sent to it (nor to any later hop). The connect timeout covers
/// every hop together. One redirect more than `n` fails with
/// `WS_ERR_HANDSHAKE` ("too many redirects"). `ws_url` gives where the
/// redirects led. With `n` > 0 the TLS trust settings are loaded by
/// `ws_open_ex` even for a `ws://` URL, so that a redirect to `wss://`
/// needs no file read later.
#[no_mangle]
pub extern "C" fn ws_options_set_max_redirects(options: *mut ws_options, n: u32) -> c_int {
    with_options(options, |o| {
        o.max_redirects = n;
        Ok(())
    })
}

/// Turns automatic reconnection on or off (default off). With it on, a
/// connection that is lost or cannot be made is tried again after a delay,
/// on the same handle: bindings, userdata and the handle stay, and each
/// loss is a `WS_EVENT_RECONNECTING` event instead of `close`. The socket
/// reads `WS_CONNECTING` while it waits and while it connects again.
///
/// What is retried: a network, DNS, connect or TLS transport failure, a
/// timeout (connect or pong), a connection lost without a close frame
/// (1006), a server close with 1001, 1005, 1011-1014 or 3000-4999, and a
/// refused handshake with HTTP 408, 425, 429 or 5xx (honouring a
/// `Retry-After` in seconds as the least delay). What is not: your own
/// `ws_close` or `ws_free`, a server close with 1000 or 1002/1003/1007-1010,
/// other refusals (3xx, 4xx), a rejected certificate, a protocol error by
/// the peer. Those end the socket as without reconnection.
///
/// The delay before attempt n (counted from 1 since the last stable
/// connection) is `min(max, initial × multiplier^(n-1))`, spread by the
/// jitter; see `ws_options_set_reconnect_delay` and `_backoff`. Every
/// attempt resolves the host name again and sends a fresh key. Messages
/// queued and not yet written when a connection is lost are dropped
/// (`ws_buffered_amount` reads 0 after a loss); nothing is replayed.
#[no_mangle]
pub extern "C" fn ws_options_set_reconnect(options: *mut ws_options, on: bool) -> c_int {
    with_options(options, |o| o.set_reconnect(on))
}

/// The reconnect delays: `initial_ms` before the first retry (default
/// 1000), growing up to `max_ms` (default 30000). `max_ms` must be > 0 and
/// at least `initial_ms`, else `WS_ERR_INVALID_ARGUMENT`. An `initial_ms` of
/// 0 retries the first time at once.
#[no_mangle]
pub extern "C" fn ws_options_set_reconnect_delay(
    options: *mut ws_options,
    initial_ms: u32,
    max_ms: u32,
) -> c_int {
    with_options(options, |o| o.set_reconnect_delay(initial_ms, max_ms))
}

/// How the reconnect delay grows and spreads: each failed attempt
/// multiplies it by `multiplier` (1 to 100, default 2.0), and each delay is
/// moved at random by up to `jitter` of itself either way (0 to 1, default
/// 0.2: ±20 %), so that sockets dropped together do not all come back at
/// the same moment. Other values are `WS_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn ws_options_set_reconnect_backoff(
    options: *mut ws_options,
    multiplier: f64,
    jitter: f64,
) -> c_int {
    with_options(options, |o| o.set_reconnect_backoff(multiplier, jitter))
}

/// Gives up after `n` consecutive failed attempts, counting the one that
/// failed first (default 0: never give up). Giving up delivers one
/// `WS_EVENT_ERROR` (the last failure's `error_code`, its reason starting
/// "gave up after n attempts") and then `close` (1006, not clean). A
/// connection that stays open for the stable time
/// (`ws_options_set_reconnect_stable_ms`) starts the count over.
#[no_mangle]
pub extern "C" fn ws_options_set_reconnect_max_attempts(options: *mut ws_options, n: u32) -> c_int {
    with_options(options, |o| o.set_reconnect_max_attempts(n))
}

/// How long a connection must stay open before its loss counts as a first
/// failure again (default 5000 ms): a server that accepts and drops at once
/// keeps the delays growing instead of being hammered.
#[no_mangle]
pub extern "C" fn ws_options_set_reconnect_stable_ms(options: *mut ws_options, ms: u32) -> c_int {
    with_options(options, |o| o.set_reconnect_stable_ms(ms))
}
