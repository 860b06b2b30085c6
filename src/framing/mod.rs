//! wsembed's side of WebSocket framing, both ways, beside tungstenite's:
//!
//! - out: `encode` writes data frames on the sending thread (masked in
//!   place, one copy), and with the `deflate` feature `compress` makes
//!   their compressed payloads;
//! - in: `scan` is the one parser of incoming bytes; `tally` reads what it
//!   finds on every connection (messages complete, the peer's close code),
//!   and with `deflate`, `inflate` rewrites compressed messages into plain
//!   frames under tungstenite;
//! - `negotiate` reads the extensions the server chose, strictly, for
//!   every connection.
//!
//! tungstenite still writes every control frame and parses every frame it
//! is handed.

#[cfg(feature = "deflate")]
mod compress;
mod encode;
#[cfg(feature = "deflate")]
mod inflate;
mod negotiate;
mod scan;
mod tally;

use std::fmt;

#[cfg(feature = "deflate")]
pub use compress::Compressor;
#[cfg(feature = "deflate")]
pub(crate) use encode::RSV1;
pub use encode::{append_frame, new_mask, DataOpcode};
#[cfg(feature = "deflate")]
pub use inflate::Inflate;
pub use negotiate::{agree, Agreement, ClientWindow, DeflateOffer};
pub use tally::FrameTally;

/// A peer's frames that the extension layer refuses: carried to the
/// connection inside an `io::Error` (kind `InvalidData`) through
/// tungstenite, which leaves the connection usable so the close frame with
/// this code can still be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramingError {
    /// 1002 (protocol error), 1007 (invalid data) or 1009 (too big).
    pub close_code: u16,
    pub message: String,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FramingError {}

/// A server frame (unmasked) with the given first byte and payload, for
/// the unit tests of the incoming side.
#[cfg(test)]
pub(crate) fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    encode::push_header(&mut f, first, 0, payload.len());
    f.extend_from_slice(payload);
    f
}
