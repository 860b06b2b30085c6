//! What a tungstenite error means for the user: the `error` event's kind
//! and message, and the close code RFC 6455 7.4.1 asks us to send.

use std::io;

use tungstenite::error::ProtocolError;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::framing::FramingError;
use crate::status::AsyncErrorKind;

/// A failure to report: the error event's kind and text, and the close
/// code to send the peer if the connection still speaks WebSocket.
#[derive(Debug)]
pub(super) struct Failure {
    pub kind: AsyncErrorKind,
    pub message: String,
    pub close_code: Option<CloseCode>,
    /// The status of a refused handshake's answer.
    pub http_status: Option<u16>,
    /// Worth another attempt (automatic reconnection): the network, a
    /// timeout, a server busy for now; not a fault that would recur.
    pub transient: bool,
}

impl Failure {
    pub fn new(kind: AsyncErrorKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
            close_code: None,
            http_status: None,
            transient: is_transient(kind),
        }
    }

    /// A refused handshake: only a status that says "later" is transient.
    pub fn with_http_status(mut self, status: u16) -> Failure {
        self.http_status = Some(status);
        self.transient = crate::reconnect::is_retryable_status(status);
        self
    }

    pub fn transient(mut self) -> Failure {
        self.transient = true;
        self
    }
}

/// Kinds that come from the network rather than from what either side
/// said: DNS, connect, timeouts, I/O. TLS and handshake failures are
/// judged one by one.
fn is_transient(kind: AsyncErrorKind) -> bool {
    matches!(
        kind,
        AsyncErrorKind::Dns
            | AsyncErrorKind::Connect
            | AsyncErrorKind::Timeout
            | AsyncErrorKind::Io
    )
}

pub(super) fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock)
}

/// Errors the peer caused while we were closing that still deserve their
/// own error event: a message over the limit, invalid UTF-8.
pub(super) fn is_size_or_utf8(e: &tungstenite::Error) -> bool {
    match e {
        tungstenite::Error::Capacity(_) | tungstenite::Error::Utf8(_) => true,
        // A compressed message the extension layer refused.
        tungstenite::Error::Io(io) => io.get_ref().is_some_and(|e| e.is::<FramingError>()),
        _ => false,
    }
}

/// Names what went wrong in the opening handshake, as precisely as
/// tungstenite lets us.
pub(super) fn handshake_failure(e: tungstenite::Error, host: &str) -> Failure {
    use tungstenite::Error as E;
    #[cfg(feature = "tls")]
    if let E::Io(io) = &e {
        if let Some(message) = crate::tls::describe_failure(io, host) {
            let failure = Failure::new(AsyncErrorKind::Tls, message);
            // A rejected certificate will be rejected again.
            return match crate::tls::is_certificate_failure(io) {
                true => failure,
                false => failure.transient(),
            };
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
            .with_http_status(status.as_u16())
        }
        E::Io(io) => Failure::new(
            AsyncErrorKind::Io,
            format!("connection lost during the opening handshake: {io}"),
        ),
        // A server going down or restarting: worth another try.
        E::ConnectionClosed
        | E::AlreadyClosed
        | E::Protocol(ProtocolError::HandshakeIncomplete) => Failure::new(
            AsyncErrorKind::Handshake,
            "connection closed during the opening handshake",
        )
        .transient(),
        other => Failure::new(
            AsyncErrorKind::Handshake,
            format!("opening handshake failed: {other}"),
        ),
    }
}

/// Maps a failure while open to the error event and the close code.
pub(super) fn open_failure(e: tungstenite::Error) -> Failure {
    use tungstenite::Error as E;
    let (kind, message, close_code) = match e {
        E::Capacity(c) => (
            AsyncErrorKind::Protocol,
            format!("message too big: {c}"),
            Some(CloseCode::Size),
        ),
        E::Utf8(_) => (
            AsyncErrorKind::Protocol,
            "invalid UTF-8 in a text message or close reason".to_owned(),
            Some(CloseCode::Invalid),
        ),
        E::Protocol(ProtocolError::ResetWithoutClosingHandshake) => (
            AsyncErrorKind::Io,
            "the peer closed the connection without a closing handshake".to_owned(),
            None,
        ),
        E::Protocol(p) => (
            AsyncErrorKind::Protocol,
            format!("protocol violation by the peer: {p}"),
            Some(CloseCode::Protocol),
        ),
        E::Io(io) => {
            if let Some(refused) = io.get_ref().and_then(|e| e.downcast_ref::<FramingError>()) {
                return Failure {
                    kind: AsyncErrorKind::Protocol,
                    message: refused.message.clone(),
                    close_code: Some(CloseCode::from(refused.close_code)),
                    http_status: None,
                    transient: false,
                };
            }
            #[cfg(feature = "tls")]
            if let Some(message) = crate::tls::describe_failure(&io, "") {
                // Open already: a TLS error now is the transport's.
                return Failure::new(AsyncErrorKind::Tls, message).transient();
            }
            (AsyncErrorKind::Io, format!("I/O error: {io}"), None)
        }
        other => (
            AsyncErrorKind::Protocol,
            other.to_string(),
            Some(CloseCode::Protocol),
        ),
    };
    Failure {
        kind,
        message,
        close_code,
        http_status: None,
        transient: is_transient(kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::error::CapacityError;

    #[test]
    fn each_error_gets_its_kind_and_close_code() {
        let size = open_failure(tungstenite::Error::Capacity(
            CapacityError::MessageTooLong {
                size: 10,
                max_size: 5,
            },
        ));
        assert_eq!(
            (size.kind, size.close_code),
            (AsyncErrorKind::Protocol, Some(CloseCode::Size))
        );
        let violation = open_failure(tungstenite::Error::Protocol(
            ProtocolError::NonZeroReservedBits,
        ));
        assert_eq!(violation.close_code, Some(CloseCode::Protocol));
        assert!(violation
            .message
            .starts_with("protocol violation by the peer"));
        let reset = open_failure(tungstenite::Error::Protocol(
            ProtocolError::ResetWithoutClosingHandshake,
        ));
        assert_eq!((reset.kind, reset.close_code), (AsyncErrorKind::Io, None));
        let io = open_failure(tungstenite::Error::Io(
            io::ErrorKind::ConnectionReset.into(),
        ));
        assert_eq!((io.kind, io.close_code), (AsyncErrorKind::Io, None));
    }

    #[test]
    fn a_closed_handshake_is_a_handshake_failure() {
        let f = handshake_failure(tungstenite::Error::ConnectionClosed, "example.org");
        assert_eq!(f.kind, AsyncErrorKind::Handshake);
        assert!(f.transient, "a server going away may come back");
        let eof = tungstenite::Error::Protocol(ProtocolError::HandshakeIncomplete);
        let f = handshake_failure(eof, "example.org");
        assert_eq!(f.message, "connection closed during the opening handshake");
        assert!(f.transient);
        let f = handshake_failure(
            tungstenite::Error::Io(io::ErrorKind::ConnectionReset.into()),
            "example.org",
        );
        assert_eq!(f.kind, AsyncErrorKind::Io);
    }
}
