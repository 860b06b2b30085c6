//! Connection options, validated as they are set.

use std::time::Duration;

use crate::framing::{ClientWindow, DeflateOffer};
use crate::reconnect::ReconnectPolicy;
use crate::status::{Error, ErrorKind, Result};

/// Everything `ws_open_ex` can be told. Cloned into each connection, so the
/// caller's copy may be dropped right after opening.
#[derive(Debug, Clone)]
pub struct Options {
    pub protocols: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub connect_timeout: Duration,
    /// How long an address gets before the next is tried alongside it
    /// (RFC 8305's Connection Attempt Delay); zero: one at a time.
    pub happy_eyeballs_delay: Duration,
    pub close_timeout: Duration,
    /// `None`: no keepalive pings.
    pub ping_interval: Option<Duration>,
    /// `None`: a pong is awaited for one ping interval.
    pub pong_timeout: Option<Duration>,
    pub max_message_size: usize,
    pub max_send_queue: usize,
    pub tls: TlsOptions,
    /// The proxy URL as given; `Some("")`: none, whatever the environment
    /// says; `None`: the environment's, if `proxy_env`.
    pub proxy: Option<String>,
    /// Read `ws_proxy`, `http_proxy`, `all_proxy`... (default true).
    pub proxy_env: bool,
    /// Hosts not to proxy, replacing `no_proxy` and the loopback exemption.
    pub no_proxy: Option<String>,
    /// The handle of the dispatcher that runs the socket's callbacks;
    /// `None`: the IO thread runs them.
    pub dispatcher: Option<u64>,
    pub deflate: DeflateOptions,
    /// HTTP redirects of the opening handshake to follow (0: refuse them).
    pub max_redirects: u32,
    pub reconnect: ReconnectPolicy,
}

/// permessage-deflate (RFC 7692): whether to offer it and how to use it.
#[derive(Debug, Clone)]
pub struct DeflateOptions {
    pub offer: bool,
    pub params: DeflateOffer,
    /// Messages shorter than this go uncompressed when our side has no
    /// context takeover.
    pub threshold: usize,
    /// zlib level, 0..=9.
    pub level: u32,
}

pub(crate) const DEFAULT_DEFLATE_THRESHOLD: usize = 1024;
pub(crate) const DEFAULT_DEFLATE_LEVEL: u32 = 6;

impl Default for DeflateOptions {
    fn default() -> Self {
        DeflateOptions {
            offer: false,
            params: DeflateOffer::default(),
            threshold: DEFAULT_DEFLATE_THRESHOLD,
            level: DEFAULT_DEFLATE_LEVEL,
        }
    }
}

/// Whether this build can compress (the `deflate` feature).
pub(crate) const HAS_DEFLATE: bool = cfg!(feature = "deflate");

fn needs_deflate() -> Result<()> {
    if HAS_DEFLATE {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Unsupported,
            "this build of wsembed has no permessage-deflate (ws_has_deflate() is false)",
        ))
    }
}

/// Trust and identity settings for `wss://`.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    pub ca_files: Vec<String>,
    pub ca_pems: Vec<String>,
    pub client_cert: Option<(String, String)>,
    pub insecure_skip_verify: bool,
}

impl TlsOptions {
    #[cfg(feature = "tls")]
    pub fn is_default(&self) -> bool {
        self.ca_files.is_empty()
            && self.ca_pems.is_empty()
            && self.client_cert.is_none()
            && !self.insecure_skip_verify
    }
}

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(30_000);
/// RFC 8305's recommended Connection Attempt Delay.
pub const DEFAULT_HAPPY_EYEBALLS_DELAY: Duration = Duration::from_millis(250);
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_millis(5_000);
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;
pub const DEFAULT_MAX_SEND_QUEUE: usize = 64 << 20;

impl Default for Options {
    fn default() -> Self {
        Options {
            protocols: Vec::new(),
            headers: Vec::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            happy_eyeballs_delay: DEFAULT_HAPPY_EYEBALLS_DELAY,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            ping_interval: None,
            pong_timeout: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_send_queue: DEFAULT_MAX_SEND_QUEUE,
            tls: TlsOptions::default(),
            proxy: None,
            proxy_env: true,
            no_proxy: None,
            dispatcher: None,
            deflate: DeflateOptions::default(),
            max_redirects: 0,
            reconnect: ReconnectPolicy::default(),
        }
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, message)
}

/// RFC 6455 4.1: a subprotocol is a non-empty token (RFC 2616 2.2).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'(' | b')'
                        | b'<'
                        | b'>'
                        | b'@'
                        | b','
                        | b';'
                        | b':'
                        | b'\\'
                        | b'"'
                        | b'/'
                        | b'['
                        | b']'
                        | b'?'
                        | b'='
                        | b'{'
                        | b'}'
                )
        })
}

/// Headers the handshake itself writes; letting a caller set them would
/// break the handshake or smuggle a second value.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "content-length",
    "transfer-encoding",
];

fn positive_ms(ms: u32, what: &str) -> Result<Duration> {
    if ms == 0 {
        return Err(invalid(format!("{what} must be greater than 0 ms")));
    }
    Ok(Duration::from_millis(u64::from(ms)))
}

/// A header a caller may add to the opening handshake: a token name that
/// the handshake does not write itself, a value without CR, LF or NUL.
pub(crate) fn check_header(name: &str, value: &str) -> Result<()> {
    if !is_token(name) {
        return Err(invalid(format!("header name {name:?} is not a token")));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(invalid(format!(
            "header {name:?} is set by the handshake itself (use add_protocol for subprotocols)"
        )));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(invalid(format!(
            "header value for {name:?} contains CR, LF or NUL"
        )));
    }
    Ok(())
}

impl Options {
    pub fn add_protocol(&mut self, protocol: &str) -> Result<()> {
        if !is_token(protocol) {
            return Err(invalid(format!(
                "subprotocol {protocol:?} is not a valid token (RFC 6455 4.1)"
            )));
        }
        if self.protocols.iter().any(|p| p == protocol) {
            return Err(invalid(format!("subprotocol {protocol:?} given twice")));
        }
        self.protocols.push(protocol.to_owned());
        Ok(())
    }

    pub fn add_header(&mut self, name: &str, value: &str) -> Result<()> {
        check_header(name, value)?;
        self.headers.push((name.to_owned(), value.to_owned()));
        Ok(())
    }

    pub fn set_connect_timeout_ms(&mut self, ms: u32) -> Result<()> {
        self.connect_timeout = positive_ms(ms, "connect timeout")?;
        Ok(())
    }

    pub fn set_close_timeout_ms(&mut self, ms: u32) -> Result<()> {
        self.close_timeout = positive_ms(ms, "close timeout")?;
        Ok(())
    }

    pub fn set_ping_interval_ms(&mut self, ms: u32) -> Result<()> {
        self.ping_interval = (ms > 0).then(|| Duration::from_millis(u64::from(ms)));
        Ok(())
    }

    pub fn set_pong_timeout_ms(&mut self, ms: u32) -> Result<()> {
        self.pong_timeout = Some(positive_ms(ms, "pong timeout")?);
        Ok(())
    }

    pub fn set_max_message_size(&mut self, bytes: usize) -> Result<()> {
        if bytes == 0 {
            return Err(invalid("max message size must be greater than 0"));
        }
        self.max_message_size = bytes;
        Ok(())
    }

    pub fn set_max_send_queue(&mut self, bytes: usize) -> Result<()> {
        if bytes == 0 {
            return Err(invalid("max send queue must be greater than 0"));
        }
        self.max_send_queue = bytes;
        Ok(())
    }

    pub fn set_deflate(&mut self, offer: bool) -> Result<()> {
        needs_deflate()?;
        self.deflate.offer = offer;
        Ok(())
    }

    /// `client_bits` 0 offers `client_max_window_bits` without a value,
    /// 9..=15 caps our window; `server_bits` 0 asks nothing, 8..=15 asks
    /// the server to use at most that window.
    pub fn set_deflate_params(
        &mut self,
        client_bits: u8,
        server_bits: u8,
        client_no_context_takeover: bool,
        server_no_context_takeover: bool,
    ) -> Result<()> {
        needs_deflate()?;
        let client_window = match client_bits {
            0 => ClientWindow::Offered,
            9..=15 => ClientWindow::Capped(client_bits),
            8 => return Err(invalid(
                "client_max_window_bits 8 cannot be honoured by raw deflate; use 9 to 15 (or 0)",
            )),
            _ => {
                return Err(invalid(format!(
                    "client_max_window_bits {client_bits} is not 0 or 9 to 15"
                )))
            }
        };
        let server_max_window_bits = match server_bits {
            0 => None,
            8..=15 => Some(server_bits),
            _ => {
                return Err(invalid(format!(
                    "server_max_window_bits {server_bits} is not 0 or 8 to 15"
                )))
            }
        };
        self.deflate.params = DeflateOffer {
            client_window,
            server_max_window_bits,
            client_no_context_takeover,
            server_no_context_takeover,
        };
        Ok(())
    }

    pub fn set_deflate_threshold(&mut self, bytes: usize) -> Result<()> {
        needs_deflate()?;
        self.deflate.threshold = bytes;
        Ok(())
    }

    pub fn set_deflate_level(&mut self, level: i32) -> Result<()> {
        needs_deflate()?;
        match u32::try_from(level) {
            Ok(level @ 0..=9) => {
                self.deflate.level = level;
                Ok(())
            }
            _ => Err(invalid(format!("deflate level {level} is not 0 to 9"))),
        }
    }

    pub fn set_reconnect(&mut self, on: bool) -> Result<()> {
        self.reconnect.enabled = on;
        Ok(())
    }

    pub fn set_reconnect_delay(&mut self, initial_ms: u32, max_ms: u32) -> Result<()> {
        if max_ms == 0 || initial_ms > max_ms {
            return Err(invalid(format!(
                "reconnect delays {initial_ms} ms to {max_ms} ms: the maximum must be > 0 and at least the initial delay"
            )));
        }
        self.reconnect.initial = Duration::from_millis(u64::from(initial_ms));
        self.reconnect.max = Duration::from_millis(u64::from(max_ms));
        Ok(())
    }

    pub fn set_reconnect_backoff(&mut self, multiplier: f64, jitter: f64) -> Result<()> {
        if !(1.0..=100.0).contains(&multiplier) {
            return Err(invalid(format!(
                "reconnect backoff multiplier {multiplier} is not between 1 and 100"
            )));
        }
        if !(0.0..=1.0).contains(&jitter) {
            return Err(invalid(format!(
                "reconnect jitter {jitter} is not between 0 and 1"
            )));
        }
        self.reconnect.multiplier = multiplier;
        self.reconnect.jitter = jitter;
        Ok(())
    }

    pub fn set_reconnect_max_attempts(&mut self, n: u32) -> Result<()> {
        self.reconnect.max_attempts = n;
        Ok(())
    }

    pub fn set_reconnect_stable_ms(&mut self, ms: u32) -> Result<()> {
        self.reconnect.stable = Duration::from_millis(u64::from(ms));
        Ok(())
    }

    /// The permessage-deflate offer to send, if any.
    pub fn deflate_offer(&self) -> Option<&DeflateOffer> {
        (HAS_DEFLATE && self.deflate.offer).then_some(&self.deflate.params)
    }

    /// How long to wait for a pong once a ping is sent.
    pub fn effective_pong_timeout(&self) -> Option<Duration> {
        self.ping_interval.map(|i| self.pong_timeout.unwrap_or(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_must_be_a_token() {
        let mut o = Options::default();
        assert!(o.add_protocol("chat.v1").is_ok());
        assert!(o.add_protocol("chat.v1").is_err());
        assert!(o.add_protocol("").is_err());
        assert!(o.add_protocol("a b").is_err());
        assert!(o.add_protocol("a,b").is_err());
    }

    #[test]
    fn reserved_and_injected_headers_are_refused() {
        let mut o = Options::default();
        assert!(o.add_header("Authorization", "Bearer x").is_ok());
        assert!(o.add_header("Sec-WebSocket-Key", "x").is_err());
        assert!(o.add_header("HOST", "x").is_err());
        assert!(o.add_header("X-A", "a\r\nX-B: b").is_err());
        assert!(o.add_header("X A", "a").is_err());
    }

    #[test]
    fn zero_values_are_refused_where_meaningless() {
        let mut o = Options::default();
        assert!(o.set_connect_timeout_ms(0).is_err());
        assert!(o.set_close_timeout_ms(0).is_err());
        assert!(o.set_max_message_size(0).is_err());
        assert!(o.set_ping_interval_ms(0).is_ok());
        assert_eq!(o.effective_pong_timeout(), None);
        o.set_ping_interval_ms(1000).unwrap();
        assert_eq!(o.effective_pong_timeout(), Some(Duration::from_secs(1)));
        o.set_pong_timeout_ms(200).unwrap();
        assert_eq!(o.effective_pong_timeout(), Some(Duration::from_millis(200)));
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn deflate_settings_are_checked() {
        let mut o = Options::default();
        assert_eq!(o.deflate_offer(), None, "off by default");
        o.set_deflate(true).unwrap();
        assert_eq!(o.deflate_offer(), Some(&DeflateOffer::default()));
        assert!(o.set_deflate_params(8, 0, false, false).is_err());
        assert!(o.set_deflate_params(16, 0, false, false).is_err());
        assert!(o.set_deflate_params(0, 7, false, false).is_err());
        o.set_deflate_params(10, 8, true, false).unwrap();
        assert_eq!(o.deflate.params.client_window, ClientWindow::Capped(10));
        assert_eq!(o.deflate.params.server_max_window_bits, Some(8));
        assert!(o.set_deflate_level(-1).is_err());
        assert!(o.set_deflate_level(10).is_err());
        o.set_deflate_level(0).unwrap();
        o.set_deflate_threshold(0).unwrap();
    }

    #[cfg(not(feature = "deflate"))]
    #[test]
    fn without_deflate_its_settings_are_unsupported() {
        let mut o = Options::default();
        assert_eq!(
            o.set_deflate(true).unwrap_err().kind,
            ErrorKind::Unsupported
        );
        assert_eq!(
            o.set_deflate_level(6).unwrap_err().kind,
            ErrorKind::Unsupported
        );
        assert_eq!(o.deflate_offer(), None);
    }
}
