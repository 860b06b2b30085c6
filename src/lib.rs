//! wsembed: a WebSocket client (RFC 6455) with a C ABI, shaped like the
//! browser WebSocket object. `include/wsembed.h` is the C manual; README.md
//! the overview.
//!
//! # The Rust surface
//!
//! What this crate offers Rust users is its C ABI, in [`ffi`]: every
//! `ws_*` function, callable from Rust exactly as from C (the integration
//! tests use it so), with the same guarantees. [`target`] is public too,
//! for its URL validation (the fuzzer drives it). Everything else is
//! private: the layers below may change shape from one release to the next.
//!
//! # Layers
//!
//! Imports go one way, from each layer to those above it in this list:
//!
//! 1. Leaves: `status`, `options`, `target`, `answer` (the handshake's
//!    answer, read whole), `route` (with `proxy` and
//!    `tls`), `framing` (our side of the wire format both ways, and
//!    extension negotiation), `event`, `log` (the process-wide log sink and
//!    the `log_at!` macro every layer writes its lines with), and the
//!    helpers `sync`, `panic_guard`, `handle_map`.
//! 2. Shared socket state: `socket` (the outbox and ready state, the
//!    listeners and their record, the free gate), which reaches its loop
//!    only through the `socket::Loop` trait and its dispatcher through
//!    `socket::Host`.
//! 3. The IO engine: `io` (the reactor, one connection per socket, the
//!    closing state machine, deadlines, the stream), `deliver` (running
//!    callbacks) and `dispatcher` (queues of events that a host runs on its
//!    own thread).
//! 4. The safe API: `client`, with `registry` (handle → socket).
//! 5. The C face: `ffi`.

mod answer;
mod client;
mod deliver;
mod dispatcher;
mod event;
pub mod ffi;
mod framing;
mod handle_map;
mod io;
mod log;
mod options;
mod panic_guard;
mod proxy;
mod reconnect;
mod registry;
mod route;
mod socket;
mod status;
mod sync;
pub mod target;
/// Hooks for wsembed's own tests; not part of any supported interface.
#[doc(hidden)]
pub mod testing {
    /// Makes `name` resolve to `ips`, in that order, for every socket of the
    /// process from now on (empty: the system's resolver again).
    pub fn resolve_name_as(name: &str, ips: Vec<std::net::IpAddr>) {
        crate::io::set_resolver_answer(name, ips)
    }
}
#[cfg(feature = "tls")]
mod tls;
