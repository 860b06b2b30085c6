//! wsembed: a WebSocket client (RFC 6455) with a C ABI, shaped like the
//! browser WebSocket object. See `include/wsembed.h` for the C manual and
//! README.md for an overview.
//!
//! The C face lives in `ffi`; everything else is safe Rust that knows
//! nothing of C: `client` is the safe API, `socket` the state callers
//! share, `io` the IO thread, `dispatch` the running of callbacks.

pub mod client;
mod dispatch;
pub mod event;
pub mod ffi;
mod handle_map;
mod io;
pub mod options;
mod panic_guard;
mod proxy;
mod registry;
pub mod socket;
pub mod status;
pub mod target;
#[cfg(feature = "tls")]
mod tls;
mod wire;
