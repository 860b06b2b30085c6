//! Failure kinds shared by the safe API and the C face.
//!
//! `Error` is what a synchronous call returns; `AsyncErrorKind` is what an
//! `error` event carries. Their discriminants are the C status codes of
//! include/wsembed.h (`WS_ERR_*`), and the one place those numbers are kept
//! on the Rust side: [`describe`] reads them from here.

use std::ffi::CStr;
use std::fmt;

/// Why a synchronous call failed. The discriminants are the C status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ErrorKind {
    InvalidHandle = -1,
    InvalidArgument = -2,
    InvalidUrl = -3,
    Unsupported = -4,
    InvalidState = -5,
    InvalidUtf8 = -6,
    QueueFull = -7,
    TooLarge = -8,
    Internal = -9,
}

impl ErrorKind {
    /// Every kind, in code order.
    pub const fn all() -> [ErrorKind; 9] {
        [
            ErrorKind::InvalidHandle,
            ErrorKind::InvalidArgument,
            ErrorKind::InvalidUrl,
            ErrorKind::Unsupported,
            ErrorKind::InvalidState,
            ErrorKind::InvalidUtf8,
            ErrorKind::QueueFull,
            ErrorKind::TooLarge,
            ErrorKind::Internal,
        ]
    }

    /// The C status code.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The kind whose C status code is `code`, if any.
    pub fn from_code(code: i32) -> Option<ErrorKind> {
        ErrorKind::all().into_iter().find(|k| k.code() == code)
    }

    /// The fixed description, as `ws_strerror` gives it.
    pub fn describe(self) -> &'static CStr {
        match self {
            ErrorKind::InvalidHandle => c"invalid handle: 0, unknown or freed",
            ErrorKind::InvalidArgument => c"invalid argument",
            ErrorKind::InvalidUrl => {
                c"invalid URL: not a ws:// or wss:// URL, or it has a fragment"
            }
            ErrorKind::Unsupported => c"not supported by this build",
            ErrorKind::InvalidState => c"invalid state: the socket is not open",
            ErrorKind::InvalidUtf8 => c"invalid UTF-8 text",
            ErrorKind::QueueFull => c"send queue full",
            ErrorKind::TooLarge => c"message too large",
            ErrorKind::Internal => c"internal error",
        }
    }
}

/// A synchronous failure: its kind plus a message for `ws_last_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid_handle() -> Self {
        Error::new(
            ErrorKind::InvalidHandle,
            "invalid handle: 0, unknown or freed",
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Why a connection failed asynchronously. The discriminants are the
/// `error_code` values of an `error` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum AsyncErrorKind {
    Dns = -20,
    Connect = -21,
    Timeout = -22,
    Tls = -23,
    Handshake = -24,
    Protocol = -25,
    Io = -26,
    Proxy = -27,
}

impl AsyncErrorKind {
    /// Every kind, in code order.
    pub const fn all() -> [AsyncErrorKind; 8] {
        [
            AsyncErrorKind::Dns,
            AsyncErrorKind::Connect,
            AsyncErrorKind::Timeout,
            AsyncErrorKind::Tls,
            AsyncErrorKind::Handshake,
            AsyncErrorKind::Protocol,
            AsyncErrorKind::Io,
            AsyncErrorKind::Proxy,
        ]
    }

    /// The C status code (the event's `error_code`).
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The kind whose C status code is `code`, if any.
    pub fn from_code(code: i32) -> Option<AsyncErrorKind> {
        AsyncErrorKind::all().into_iter().find(|k| k.code() == code)
    }

    /// The fixed description, as `ws_strerror` gives it.
    pub fn describe(self) -> &'static CStr {
        match self {
            AsyncErrorKind::Dns => c"name resolution failed",
            AsyncErrorKind::Connect => c"connection failed",
            AsyncErrorKind::Timeout => c"timed out",
            AsyncErrorKind::Tls => c"TLS failure",
            AsyncErrorKind::Handshake => c"opening handshake failed",
            AsyncErrorKind::Protocol => c"WebSocket protocol violation",
            AsyncErrorKind::Io => c"I/O error",
            AsyncErrorKind::Proxy => c"the proxy refused",
        }
    }
}

/// The status code of success (`WS_OK`), which no kind carries.
const OK: i32 = 0;

/// The description of a code that is neither success nor a kind.
const UNKNOWN: &CStr = c"unknown status code";

/// The fixed description of a status code, as `ws_strerror` gives it.
pub fn describe(status: i32) -> &'static CStr {
    if status == OK {
        return c"success";
    }
    ErrorKind::from_code(status)
        .map(ErrorKind::describe)
        .or_else(|| AsyncErrorKind::from_code(status).map(AsyncErrorKind::describe))
        .unwrap_or(UNKNOWN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi;

    /// Every code with its description, as they were written out before
    /// the enums were the one source: the texts are part of the ABI.
    const TABLE: [(i32, &str); 18] = [
        (0, "success"),
        (-1, "invalid handle: 0, unknown or freed"),
        (-2, "invalid argument"),
        (
            -3,
            "invalid URL: not a ws:// or wss:// URL, or it has a fragment",
        ),
        (-4, "not supported by this build"),
        (-5, "invalid state: the socket is not open"),
        (-6, "invalid UTF-8 text"),
        (-7, "send queue full"),
        (-8, "message too large"),
        (-9, "internal error"),
        (-20, "name resolution failed"),
        (-21, "connection failed"),
        (-22, "timed out"),
        (-23, "TLS failure"),
        (-24, "opening handshake failed"),
        (-25, "WebSocket protocol violation"),
        (-26, "I/O error"),
        (-27, "the proxy refused"),
    ];

    #[test]
    fn every_kind_is_described_and_round_trips() {
        for kind in ErrorKind::all() {
            assert_ne!(kind.describe(), UNKNOWN, "{kind:?}");
            assert!(!kind.describe().is_empty(), "{kind:?}");
            assert_eq!(describe(kind.code()), kind.describe(), "{kind:?}");
            assert_eq!(ErrorKind::from_code(kind.code()), Some(kind));
            assert_eq!(AsyncErrorKind::from_code(kind.code()), None, "{kind:?}");
            assert!(kind.code() < 0, "{kind:?}");
        }
        for kind in AsyncErrorKind::all() {
            assert_ne!(kind.describe(), UNKNOWN, "{kind:?}");
            assert!(!kind.describe().is_empty(), "{kind:?}");
            assert_eq!(describe(kind.code()), kind.describe(), "{kind:?}");
            assert_eq!(AsyncErrorKind::from_code(kind.code()), Some(kind));
            assert_eq!(ErrorKind::from_code(kind.code()), None, "{kind:?}");
            assert!(kind.code() < 0, "{kind:?}");
        }
    }

    #[test]
    fn descriptions_are_unchanged() {
        for (code, text) in TABLE {
            assert_eq!(describe(code).to_str(), Ok(text), "{code}");
        }
        // Every kind is in the table, and every code of the table but 0 is
        // a kind.
        assert_eq!(
            ErrorKind::all().len() + AsyncErrorKind::all().len() + 1,
            TABLE.len()
        );
        for (code, _) in &TABLE[1..] {
            let known =
                ErrorKind::from_code(*code).is_some() || AsyncErrorKind::from_code(*code).is_some();
            assert!(known, "{code}");
        }
    }

    #[test]
    fn unknown_codes() {
        for code in [1, 42, -10, -19, -28, i32::MIN, i32::MAX] {
            assert_eq!(describe(code), UNKNOWN, "{code}");
            assert_eq!(ErrorKind::from_code(code), None, "{code}");
            assert_eq!(AsyncErrorKind::from_code(code), None, "{code}");
        }
    }

    /// The C constants of the header, kept as literals for cbindgen, agree
    /// with the enums.
    #[test]
    fn c_constants_match_the_enums() {
        assert_eq!(ffi::WS_OK, OK);
        let pairs = [
            (ffi::WS_ERR_INVALID_HANDLE, ErrorKind::InvalidHandle.code()),
            (
                ffi::WS_ERR_INVALID_ARGUMENT,
                ErrorKind::InvalidArgument.code(),
            ),
            (ffi::WS_ERR_INVALID_URL, ErrorKind::InvalidUrl.code()),
            (ffi::WS_ERR_UNSUPPORTED, ErrorKind::Unsupported.code()),
            (ffi::WS_ERR_INVALID_STATE, ErrorKind::InvalidState.code()),
            (ffi::WS_ERR_INVALID_UTF8, ErrorKind::InvalidUtf8.code()),
            (ffi::WS_ERR_QUEUE_FULL, ErrorKind::QueueFull.code()),
            (ffi::WS_ERR_TOO_LARGE, ErrorKind::TooLarge.code()),
            (ffi::WS_ERR_INTERNAL, ErrorKind::Internal.code()),
            (ffi::WS_ERR_DNS, AsyncErrorKind::Dns.code()),
            (ffi::WS_ERR_CONNECT, AsyncErrorKind::Connect.code()),
            (ffi::WS_ERR_TIMEOUT, AsyncErrorKind::Timeout.code()),
            (ffi::WS_ERR_TLS, AsyncErrorKind::Tls.code()),
            (ffi::WS_ERR_HANDSHAKE, AsyncErrorKind::Handshake.code()),
            (ffi::WS_ERR_PROTOCOL, AsyncErrorKind::Protocol.code()),
            (ffi::WS_ERR_IO, AsyncErrorKind::Io.code()),
            (ffi::WS_ERR_PROXY, AsyncErrorKind::Proxy.code()),
        ];
        assert_eq!(
            pairs.len(),
            ErrorKind::all().len() + AsyncErrorKind::all().len()
        );
        for (constant, code) in pairs {
            assert_eq!(constant, code);
        }
    }
}
