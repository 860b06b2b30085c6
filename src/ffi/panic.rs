//! The panic boundary of every `extern "C"` function (after rustls-ffi's
//! `ffi_panic_boundary`): a panic becomes the return type's fallback value
//! and a `ws_last_error` message; nothing unwinds into C.

use std::os::raw::{c_char, c_int};

use super::error::{set_last_error, WS_ERR_INTERNAL};
use crate::panic_guard;

/// What a function returns when its body panicked.
pub trait PanicValue {
    fn panic_value() -> Self;
}

impl PanicValue for c_int {
    fn panic_value() -> Self {
        WS_ERR_INTERNAL
    }
}

impl PanicValue for u64 {
    fn panic_value() -> Self {
        0
    }
}

impl PanicValue for usize {
    fn panic_value() -> Self {
        0
    }
}

impl PanicValue for bool {
    fn panic_value() -> Self {
        false
    }
}

impl PanicValue for () {
    fn panic_value() -> Self {}
}

impl<T> PanicValue for *mut T {
    fn panic_value() -> Self {
        std::ptr::null_mut()
    }
}

impl PanicValue for *const c_char {
    fn panic_value() -> Self {
        c"".as_ptr()
    }
}

/// Runs a function body behind the panic boundary.
pub fn boundary<T: PanicValue>(body: impl FnOnce() -> T) -> T {
    match panic_guard::catch(body) {
        Ok(value) => value,
        Err(message) => {
            set_last_error(
                WS_ERR_INTERNAL,
                &format!("internal error (a bug in wsembed): {message}"),
            );
            T::panic_value()
        }
    }
}
