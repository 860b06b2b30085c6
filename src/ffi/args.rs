//! Reading C arguments into Rust values, with a clear error for each way
//! they can be wrong.

use std::ffi::CStr;
use std::os::raw::{c_char, c_void};

use crate::status::{Error, ErrorKind, Result};

fn null(what: &str) -> Error {
    Error::new(ErrorKind::InvalidArgument, format!("{what} is NULL"))
}

/// A NUL-terminated UTF-8 string argument; `bad_utf8` is the kind of error
/// for text that is not UTF-8.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and
/// unchanged for `'a`.
pub unsafe fn str_arg<'a>(ptr: *const c_char, what: &str, bad_utf8: ErrorKind) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL, and the caller guarantees a NUL-terminated string
    // valid for 'a.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes)
        .map_err(|e| Error::new(bad_utf8, format!("{what} is not valid UTF-8: {e}")))
}

/// Like `str_arg`, but NULL reads as "".
///
/// # Safety
/// As `str_arg`.
pub unsafe fn optional_str_arg<'a>(
    ptr: *const c_char,
    what: &str,
    bad_utf8: ErrorKind,
) -> Result<&'a str> {
    if ptr.is_null() {
        return Ok("");
    }
    // SAFETY: forwarded from this function's contract.
    unsafe { str_arg(ptr, what, bad_utf8) }
}

/// A (pointer, length) byte argument; NULL is allowed only with length 0.
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes valid for `'a`.
pub unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    if ptr.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(null(what)) };
    }
    if len > isize::MAX as usize {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("{what}: length {len} is impossible"),
        ));
    }
    // SAFETY: non-NULL, length checked against isize::MAX, and the caller
    // guarantees `len` readable bytes valid for 'a.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Copies `text` into a caller's buffer as snprintf does: NUL-terminated
/// when `cap > 0`, truncated to fit; returns the full length.
///
/// # Safety
/// `buf` is NULL (only with `cap == 0`) or points to `cap` writable bytes.
pub unsafe fn copy_out(text: &str, buf: *mut c_char, cap: usize) -> Result<usize> {
    // SAFETY: as this function's own contract.
    unsafe { copy_bytes_out(text.as_bytes(), buf, cap) }
}

/// `copy_out` for bytes that may not be UTF-8 (a header value).
///
/// # Safety
/// `buf` is NULL (only with `cap == 0`) or points to `cap` writable bytes.
pub unsafe fn copy_bytes_out(bytes: &[u8], buf: *mut c_char, cap: usize) -> Result<usize> {
    if cap == 0 {
        return Ok(bytes.len());
    }
    if buf.is_null() {
        return Err(null("buf (with cap > 0)"));
    }
    let n = bytes.len().min(cap - 1);
    // SAFETY: buf has cap writable bytes and n + 1 <= cap; the source is a
    // distinct Rust buffer, so the regions do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = 0;
    }
    Ok(bytes.len())
}

/// Copies as many of `bytes` as fit in `cap` (no terminator: binary data);
/// returns the full length.
///
/// # Safety
/// `buf` is NULL (only with `cap == 0`) or points to `cap` writable bytes.
pub unsafe fn copy_binary_out(bytes: &[u8], buf: *mut c_void, cap: usize) -> Result<usize> {
    if cap == 0 {
        return Ok(bytes.len());
    }
    if buf.is_null() {
        return Err(null("buf (with cap > 0)"));
    }
    let n = bytes.len().min(cap);
    // SAFETY: buf has cap >= n writable bytes; the source is a distinct
    // Rust buffer, so the regions do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n) };
    Ok(bytes.len())
}
