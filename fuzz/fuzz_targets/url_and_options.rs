//! URL and option parsing, through the C functions a caller would use:
//! no input may panic, crash or be accepted half-way. `ws_open` itself is
//! not called: a fuzzed URL could name a host that is not this machine.
#![no_main]

use std::ffi::CString;

use libfuzzer_sys::fuzz_target;
use wsembed::ffi::*;
use wsembed::target::Target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let (a, b, c) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    if let Ok(t) = Target::parse(a) {
        assert!(t.url.scheme() == "ws" || t.url.scheme() == "wss");
        assert!(t.url.fragment().is_none());
        assert!(!t.host.starts_with('['));
    }
    let o = ws_options_new();
    let cs = |s: &str| CString::new(s.replace('\0', "")).unwrap();
    let (ca, cb, cc) = (cs(a), cs(b), cs(c));
    for s in [
        ws_options_add_protocol(o, ca.as_ptr()),
        ws_options_add_header(o, cb.as_ptr(), cc.as_ptr()),
        ws_options_set_max_message_size(o, data.len()),
        ws_options_set_connect_timeout_ms(o, data.len() as u32),
    ] {
        assert!(s == WS_OK || s == WS_ERR_INVALID_ARGUMENT, "{s}");
    }
    let s = ws_options_set_proxy(o, cc.as_ptr());
    // An https:// proxy needs TLS, which this build (no default features) lacks.
    let no_tls = s == WS_ERR_UNSUPPORTED && !ws_has_tls();
    assert!(s == WS_OK || s == WS_ERR_INVALID_ARGUMENT || no_tls, "{s}");
    // Raw bytes, possibly not UTF-8, as the C caller could pass them.
    let mut raw = data.to_vec();
    raw.retain(|&b| b != 0);
    let raw = CString::new(raw).unwrap();
    let s = ws_options_add_protocol(o, raw.as_ptr());
    assert!(s == WS_OK || s == WS_ERR_INVALID_ARGUMENT, "{s}");
    ws_options_free(o);
});
