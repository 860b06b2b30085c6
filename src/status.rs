//! Failure kinds shared by the safe API and the C face.
//!
//! `Error` is what a synchronous call returns; `AsyncErrorKind` is what an
//! `error` event carries. Their numeric values are the contract in API.md.

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
}

/// The fixed description of a status code, as `ws_strerror` gives it.
pub fn describe(status: i32) -> &'static CStr {
    match status {
        0 => c"success",
        -1 => c"invalid handle: 0, unknown or freed",
        -2 => c"invalid argument",
        -3 => c"invalid URL: not a ws:// or wss:// URL, or it has a fragment",
        -4 => c"not supported by this build",
        -5 => c"invalid state: the socket is not open",
        -6 => c"invalid UTF-8 text",
        -7 => c"send queue full",
        -8 => c"message too large",
        -9 => c"internal error",
        -20 => c"name resolution failed",
        -21 => c"connection failed",
        -22 => c"timed out",
        -23 => c"TLS failure",
        -24 => c"opening handshake failed",
        -25 => c"WebSocket protocol violation",
        -26 => c"I/O error",
        _ => c"unknown status code",
    }
}
