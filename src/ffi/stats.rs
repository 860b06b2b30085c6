//! A socket's statistics and the application's ping.

use std::os::raw::{c_int, c_void};

use super::args::bytes_arg;
use super::error::{report, status, WS_OK};
use super::panic::boundary;
use super::ws_handle;
use crate::client;
use crate::status::{Error, ErrorKind};

/// What a socket has moved, over every connection it made (with automatic
/// reconnection, the totals run on across connections).
///
/// Set `size` to `sizeof(ws_stats)` before calling `ws_get_stats`: later
/// versions of wsembed only ever append fields, so a program built against
/// an older header gets the fields it knows, and one built against a newer
/// header learns from `size` (set by the call to the bytes filled) which
/// fields this library filled.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ws_stats {
    /// In: the size of the caller's struct. Out: the bytes filled.
    pub size: u32,
    /// Always 0 (it names the padding C compilers put here anyway).
    pub reserved: u32,
    /// Bytes on the wire, sent and received: frames, the opening handshake
    /// and TLS records included (proxy exchanges are not counted).
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Text and binary messages. A message counts as sent once wsembed
    /// handed it to the connection (not when `ws_send` queued it), and as
    /// received before its `message` callback runs.
    pub messages_sent: u64,
    pub messages_received: u64,
    /// WebSocket frames of every kind, pings, pongs and close frames
    /// included. wsembed sends each message as one frame.
    pub frames_sent: u64,
    pub frames_received: u64,
    /// The latest connection's time from the start of its attempt (name
    /// resolution) to open, in milliseconds; 0 before the first open.
    pub handshake_ms: u32,
    /// The round trip of the latest ping that was answered (`ws_ping`'s
    /// or a keepalive ping's), in microseconds; 0 before any.
    pub last_rtt_us: u32,
    /// Message payload bytes as the application sent and received them
    /// (before compression, after decompression).
    pub payload_bytes_sent: u64,
    pub payload_bytes_received: u64,
    /// How many times the socket opened (more than 1 after reconnects).
    pub connections: u32,
    /// Pongs received, asked for or not.
    pub pongs_received: u32,
    /// Pings sent (`ws_ping`'s and keepalive's), and those answered by a
    /// pong with the same payload (each answer sets `last_rtt_us`: wait for
    /// this count to grow to know a ping's round trip is in).
    pub pings_sent: u32,
    pub pings_answered: u32,
}

/// Fills `*out` with the socket's statistics, up to `out->size` bytes, and
/// sets `out->size` to the bytes filled (at most `sizeof(ws_stats)`).
///
/// The IO thread stores each counter as it changes: the bytes at each
/// read and write of the socket, the message counts as each message is
/// handed to the connection or received (before its `message` callback),
/// the rest at each ping, pong, open and close. Each field is exact on its
/// own; fields read together may be a moment apart (a message counted
/// whose bytes are not yet), except that `last_rtt_us` is always at least
/// as new as `pings_answered`. They stay readable after the socket closed,
/// until `ws_free`.
///
/// `WS_ERR_INVALID_ARGUMENT` when `out` is NULL or `out->size` is under 4;
/// `WS_ERR_INVALID_HANDLE` for a bad handle. Any thread, including from a
/// callback; never blocks.
#[no_mangle]
pub extern "C" fn ws_get_stats(socket: ws_handle, out: *mut ws_stats) -> c_int {
    boundary(|| {
        if out.is_null() {
            let e = Error::new(ErrorKind::InvalidArgument, "out is NULL");
            return report(&e);
        }
        // SAFETY: non-NULL, and the caller passes a struct of at least
        // `size` bytes whose first field is `size` (the documented
        // contract); reading that u32 is in bounds for any size >= 4.
        let size = unsafe { std::ptr::addr_of!((*out).size).read_unaligned() } as usize;
        if size < std::mem::size_of::<u32>() {
            let e = Error::new(
                ErrorKind::InvalidArgument,
                format!("out->size is {size}: set it to sizeof(ws_stats)"),
            );
            return report(&e);
        }
        let s = match client::socket(socket) {
            Ok(s) => s.stats.read(),
            Err(e) => return report(&e),
        };
        let filled = size.min(std::mem::size_of::<ws_stats>());
        let full = ws_stats {
            size: filled as u32,
            reserved: 0,
            bytes_sent: s.bytes_sent,
            bytes_received: s.bytes_received,
            messages_sent: s.messages_sent,
            messages_received: s.messages_received,
            frames_sent: s.frames_sent,
            frames_received: s.frames_received,
            handshake_ms: s.handshake_ms,
            last_rtt_us: s.last_rtt_us,
            payload_bytes_sent: s.payload_bytes_sent,
            payload_bytes_received: s.payload_bytes_received,
            connections: s.connections,
            pongs_received: s.pongs_received,
            pings_sent: s.pings_sent,
            pings_answered: s.pings_answered,
        };
        // SAFETY: `out` has room for `size` >= `filled` bytes (the
        // contract above), `full` is a local of `size_of::<ws_stats>()` >=
        // `filled` bytes with no padding (every gap is a named field, so
        // every byte is initialized), and the two cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&full as *const ws_stats).cast::<u8>(),
                out.cast::<u8>(),
                filled,
            );
        }
        WS_OK
    })
}

/// Sends a ping now, with `len` bytes at `data` as its payload (at most
/// 125; `data` may be NULL when `len` is 0), ahead of messages still
/// queued. The pong that answers it (same payload) sets `last_rtt_us` in
/// `ws_get_stats`. Pings are also answered by the peer's WebSocket stack,
/// not the application, so this measures the connection, not the server's
/// load. Calling it again before the ping went out replaces it; calling it
/// before the previous pong came measures from the latest ping.
///
/// `WS_ERR_INVALID_STATE` unless the socket is OPEN;
/// `WS_ERR_INVALID_ARGUMENT` for more than 125 bytes or NULL with a
/// length. The bytes are copied. Any thread, including from a callback.
#[no_mangle]
pub extern "C" fn ws_ping(socket: ws_handle, data: *const c_void, len: usize) -> c_int {
    boundary(|| {
        status((|| {
            let sock = client::socket(socket)?;
            // SAFETY: NULL (with len 0) or `len` readable bytes valid during
            // this call (the documented contract).
            let bytes = unsafe { bytes_arg(data.cast(), len, "data") }?;
            sock.ping(bytes)
        })())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_struct_has_no_padding_and_size_comes_first() {
        // Every byte copied out by ws_get_stats must be a field's.
        let fields = 4 + 4 + 6 * 8 + 4 + 4 + 2 * 8 + 4 * 4;
        assert_eq!(std::mem::size_of::<ws_stats>(), fields);
        assert_eq!(std::mem::offset_of!(ws_stats, size), 0);
        assert_eq!(std::mem::offset_of!(ws_stats, bytes_sent), 8);
    }
}
