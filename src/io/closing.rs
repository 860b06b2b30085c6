//! The closing handshake of an open connection, as a state machine with no
//! IO: which close frames went by, and how the connection ends for each
//! thing that can happen while closing. The connection does the IO each
//! answer asks for.

use tungstenite::protocol::frame::coding::CloseCode;

/// The `close` code for a peer's close frame that carried none.
pub(super) fn no_status() -> u16 {
    CloseCode::Status.into()
}

/// The `close` code for a connection that ended without a closing
/// handshake.
fn abnormal() -> u16 {
    CloseCode::Abnormal.into()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Closing {
    /// Neither side has sent a close frame: data flows.
    No,
    /// Our close frame is queued or sent; the peer's is awaited.
    Sent,
    /// The peer's close frame came, and ours went too (before it, or as
    /// tungstenite's echo); the peer should now close TCP.
    Received { code: u16, reason: String },
    /// A failure was reported and our close frame is out: only drain until
    /// the peer hangs up or the close timeout passes.
    Failed,
}

/// How a connection ends: the `close` event's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ending {
    pub code: u16,
    pub reason: String,
    pub clean: bool,
}

impl Ending {
    pub fn abnormal() -> Ending {
        Ending {
            code: abnormal(),
            reason: String::new(),
            clean: false,
        }
    }
}

/// What receiving the peer's close frame asks for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PeerClose {
    /// Both sides are closing: refuse sends, wait for TCP to close.
    Closing,
    /// The code on the wire may not be sent (RFC 6455 7.4): fail the
    /// connection as the browser does (tungstenite already queued 1002).
    InvalidCode,
    /// Nothing: the connection already failed.
    Ignored,
}

/// What a stream error while open asks for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum OnError {
    /// The connection ends with this `close`, without an `error` event.
    End(Ending),
    /// Report the error and fail the connection.
    Fail,
}

/// What failing the connection asks for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum OnFail {
    /// Send this close code, then drain.
    SendClose(CloseCode),
    /// Our close frame is already queued: send it, then drain.
    Flush,
    /// Nothing to say to the peer: end now.
    End,
}

/// Whether a close code may appear in a close frame (RFC 6455 7.4.1-2).
pub(super) fn code_is_sendable(code: u16) -> bool {
    CloseCode::from(code).is_allowed()
}

impl Closing {
    /// Data frames may still be sent, and a close started.
    pub fn is_open(&self) -> bool {
        matches!(self, Closing::No)
    }

    pub fn is_failed(&self) -> bool {
        matches!(self, Closing::Failed)
    }

    /// We start the closing handshake. False when a close frame of ours is
    /// already out (or the connection failed): nothing more to send.
    pub fn begin(&mut self) -> bool {
        if !self.is_open() {
            return false;
        }
        *self = Closing::Sent;
        true
    }

    /// The peer's close frame, as tungstenite reports it (`code`, `reason`),
    /// and the code that was on the wire, if the frame carried one:
    /// tungstenite puts 1002 in place of a code that may not be sent.
    pub fn on_peer_close(
        &mut self,
        code: u16,
        reason: String,
        wire_code: Option<u16>,
    ) -> PeerClose {
        match self {
            Closing::Failed => PeerClose::Ignored,
            Closing::No if wire_code.is_some_and(|c| !code_is_sendable(c)) => {
                // tungstenite's 1002 reply is queued: it is our close frame.
                *self = Closing::Sent;
                PeerClose::InvalidCode
            }
            Closing::No | Closing::Sent | Closing::Received { .. } => {
                *self = Closing::Received { code, reason };
                PeerClose::Closing
            }
        }
    }

    /// tungstenite says the closing handshake is over and TCP closed.
    pub fn on_hang_up(&mut self) -> Ending {
        match std::mem::replace(self, Closing::Failed) {
            Closing::Received { code, reason } => Ending {
                clean: code != abnormal(),
                code,
                reason,
            },
            Closing::No | Closing::Sent | Closing::Failed => Ending::abnormal(),
        }
    }

    /// A stream error while open; `size_or_utf8` for the peer's errors that
    /// deserve an `error` event even while closing.
    pub fn on_stream_error(&mut self, size_or_utf8: bool) -> OnError {
        match self {
            Closing::Failed => OnError::End(Ending::abnormal()),
            Closing::Sent if !size_or_utf8 => OnError::End(Ending::abnormal()),
            // Both close frames went by; the peer hung up without waiting
            // for us to read: still a clean close.
            Closing::Received { code, reason } if !size_or_utf8 => OnError::End(Ending {
                code: *code,
                reason: std::mem::take(reason),
                clean: true,
            }),
            Closing::No | Closing::Sent | Closing::Received { .. } => OnError::Fail,
        }
    }

    /// The close timeout passed.
    pub fn on_close_timeout(&mut self) -> Ending {
        match std::mem::replace(self, Closing::Failed) {
            // Both close frames went by; only the TCP close is late.
            Closing::Received { code, reason } => Ending {
                code,
                reason,
                clean: true,
            },
            // The peer never answered our close frame, or we failed.
            Closing::No | Closing::Sent | Closing::Failed => Ending::abnormal(),
        }
    }

    /// The connection fails; `close_code` is what the failure asks to send.
    pub fn fail(&mut self, close_code: Option<CloseCode>) -> OnFail {
        let action = match (&*self, close_code) {
            (Closing::No, Some(code)) => OnFail::SendClose(code),
            (Closing::No, None) => OnFail::End,
            (Closing::Sent | Closing::Received { .. } | Closing::Failed, _) => OnFail::Flush,
        };
        *self = Closing::Failed;
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(code: u16, reason: &str) -> Closing {
        Closing::Received {
            code,
            reason: reason.into(),
        }
    }

    #[test]
    fn the_peer_closes_first_then_hangs_up() {
        let mut c = Closing::No;
        assert_eq!(
            c.on_peer_close(1002, "Protocol violation".into(), Some(1002)),
            PeerClose::Closing,
            "a valid 1002 is the peer's own close, whatever its reason"
        );
        assert!(!c.is_open());
        assert!(!c.begin(), "the echo was our close frame");
        assert_eq!(
            c.on_hang_up(),
            Ending {
                code: 1002,
                reason: "Protocol violation".into(),
                clean: true
            }
        );
    }

    #[test]
    fn every_sendable_code_is_delivered_as_sent() {
        for code in [1000, 1001, 1002, 1003, 1007, 1008, 1011, 1012, 3000, 4999] {
            let mut c = Closing::No;
            assert_eq!(
                c.on_peer_close(code, "why".into(), Some(code)),
                PeerClose::Closing
            );
            assert_eq!(c.on_hang_up().code, code);
        }
    }

    #[test]
    fn codes_that_may_not_be_sent_fail_the_connection() {
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            let mut c = Closing::No;
            // tungstenite reports such a frame as 1002 "Protocol violation".
            assert_eq!(
                c.on_peer_close(1002, "Protocol violation".into(), Some(code)),
                PeerClose::InvalidCode,
                "{code}"
            );
            assert_eq!(c.fail(None), OnFail::Flush, "the 1002 reply is queued");
            assert!(c.is_failed());
            assert_eq!(c.on_hang_up(), Ending::abnormal());
        }
    }

    #[test]
    fn a_close_frame_without_code_is_1005() {
        let mut c = Closing::No;
        assert_eq!(
            c.on_peer_close(no_status(), String::new(), None),
            PeerClose::Closing
        );
        assert_eq!(c.on_hang_up().code, 1005);
    }

    #[test]
    fn we_close_first_and_the_peer_answers() {
        let mut c = Closing::No;
        assert!(c.begin());
        assert_eq!(c, Closing::Sent);
        assert!(!c.begin(), "closing twice sends one frame");
        assert_eq!(
            c.on_peer_close(1000, "ok".into(), Some(1000)),
            PeerClose::Closing
        );
        assert_eq!(c, received(1000, "ok"));
        assert!(c.on_hang_up().clean);
    }

    #[test]
    fn our_close_never_answered() {
        let mut c = Closing::No;
        c.begin();
        assert_eq!(c.on_close_timeout(), Ending::abnormal());
        let mut c = Closing::No;
        c.begin();
        assert_eq!(c.on_stream_error(false), OnError::End(Ending::abnormal()));
    }

    #[test]
    fn only_the_tcp_close_is_late() {
        let mut c = received(4000, "app");
        assert_eq!(
            c.on_close_timeout(),
            Ending {
                code: 4000,
                reason: "app".into(),
                clean: true
            }
        );
        let mut c = received(1000, "");
        assert_eq!(
            c.on_stream_error(false),
            OnError::End(Ending {
                code: 1000,
                reason: String::new(),
                clean: true
            })
        );
    }

    #[test]
    fn errors_while_open_or_oversized_while_closing_fail() {
        assert_eq!(Closing::No.on_stream_error(false), OnError::Fail);
        assert_eq!(Closing::Sent.on_stream_error(true), OnError::Fail);
        assert_eq!(received(1000, "").on_stream_error(true), OnError::Fail);
        assert_eq!(
            Closing::Failed.on_stream_error(true),
            OnError::End(Ending::abnormal())
        );
    }

    #[test]
    fn failing_sends_a_close_frame_once() {
        let mut c = Closing::No;
        assert_eq!(
            c.fail(Some(CloseCode::Size)),
            OnFail::SendClose(CloseCode::Size)
        );
        assert_eq!(c.fail(Some(CloseCode::Protocol)), OnFail::Flush);
        assert_eq!(
            c.on_peer_close(1000, String::new(), Some(1000)),
            PeerClose::Ignored
        );
        assert_eq!(c.on_close_timeout(), Ending::abnormal());
        assert_eq!(Closing::No.fail(None), OnFail::End);
        assert_eq!(Closing::Sent.fail(Some(CloseCode::Size)), OnFail::Flush);
    }
}
