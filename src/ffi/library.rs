//! Library-wide calls: version, build features, shutdown.

use std::os::raw::c_char;

use super::panic::boundary;
use crate::client;

/// The library version, "MAJOR.MINOR.PATCH". Static; never NULL. Any thread.
#[no_mangle]
pub extern "C" fn ws_version() -> *const c_char {
    const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}

/// True when this build supports `wss://`; false means `wss://` URLs and
/// TLS options give `WS_ERR_UNSUPPORTED`. Any thread.
#[no_mangle]
pub extern "C" fn ws_has_tls() -> bool {
    client::HAS_TLS
}

/// True when this build supports permessage-deflate; false means the
/// `ws_options_set_deflate*` functions give `WS_ERR_UNSUPPORTED`. Any
/// thread.
#[no_mangle]
pub extern "C" fn ws_has_deflate() -> bool {
    crate::options::HAS_DEFLATE
}

/// Closes every socket (code 1001; each still gets its `close` event),
/// waits for their closing handshakes (at most their close timeouts) and
/// joins the IO thread, for a clean exit. Handles stay valid until
/// `ws_free`. A later `ws_open` starts a new IO thread.
///
/// Called from inside a callback it cannot join the thread it runs on: it
/// starts the shutdown and returns at once. Any thread.
#[no_mangle]
pub extern "C" fn ws_shutdown() {
    boundary(client::shutdown)
}
