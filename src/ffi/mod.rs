//! The C face. Every function has the same shape: panic boundary, argument
//! checks (setting `ws_last_error`), a call into the safe API, a status.
//! Nothing here knows about sockets beyond converting types.

#![allow(non_camel_case_types)]
// These are C entry points: the pointer contract is stated in the header's
// doc comments, NULL is checked, and Rust callers use them as C does.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod args;
mod dispatcher;
mod error;
mod event;
mod library;
mod log;
mod options;
mod panic;
mod socket;
mod stats;

pub use dispatcher::*;
pub use error::*;
pub use event::*;
pub use library::*;
pub use log::*;
pub use options::*;
pub use socket::*;
pub use stats::*;

/// An opaque socket handle issued by `ws_open`. 0 is never a valid handle,
/// and a handle is never reused within a process, so a stale handle is an
/// error (`WS_ERR_INVALID_HANDLE`), never another socket.
pub type ws_handle = u64;
