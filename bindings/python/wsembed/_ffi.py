"""The C ABI of libwsembed, declared for ctypes: types, constants, and the
signature of every function, in one table (include/wsembed.h is the manual).

Importing this module loads the library; ``lib`` is the loaded CDLL with
``argtypes`` and ``restype`` set on every symbol, so ctypes converts and
checks each argument instead of guessing.
"""

from ctypes import (
    CDLL,
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_double,
    c_int,
    c_int32,
    c_size_t,
    c_uint16,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)

from . import _library

# Status codes (ws_status).
WS_OK = 0
WS_ERR_INVALID_HANDLE = -1
WS_ERR_INVALID_ARGUMENT = -2
WS_ERR_INVALID_URL = -3
WS_ERR_UNSUPPORTED = -4
WS_ERR_INVALID_STATE = -5
WS_ERR_INVALID_UTF8 = -6
WS_ERR_QUEUE_FULL = -7
WS_ERR_TOO_LARGE = -8
WS_ERR_INTERNAL = -9
# The error_code of an `error` event.
WS_ERR_DNS = -20
WS_ERR_CONNECT = -21
WS_ERR_TIMEOUT = -22
WS_ERR_TLS = -23
WS_ERR_HANDSHAKE = -24
WS_ERR_PROTOCOL = -25
WS_ERR_IO = -26
WS_ERR_PROXY = -27

STATUS_NAMES = {
    value: name for name, value in list(globals().items()) if name.startswith("WS_ERR_")
}
STATUS_NAMES[WS_OK] = "WS_OK"

# Ready states.
WS_CONNECTING = 0
WS_OPEN = 1
WS_CLOSING = 2
WS_CLOSED = 3

# Log levels (ws_set_log_callback); a larger number is more detail.
WS_LOG_ERROR = 1
WS_LOG_WARN = 2
WS_LOG_INFO = 3
WS_LOG_DEBUG = 4

# Event kinds.
WS_EVENT_OPEN = 1
WS_EVENT_MESSAGE = 2
WS_EVENT_ERROR = 3
WS_EVENT_CLOSE = 4
WS_EVENT_RECONNECTING = 5
WS_EVENT_BUFFERED_AMOUNT_LOW = 6

ws_handle = c_uint64
ws_dispatcher = c_uint64
ws_event_kind = c_uint32


class ws_event(Structure):
    """One event, read only through the pointer a callback is given (the
    struct may grow at its end in later versions)."""

    _fields_ = [
        ("kind", ws_event_kind),
        # c_void_p, not c_char_p: the payload is binary and sized by len.
        ("data", c_void_p),
        ("len", c_size_t),
        ("is_binary", c_bool),
        ("code", c_uint16),
        ("reason", c_char_p),
        ("was_clean", c_bool),
        ("error_code", c_int),
        ("attempt", c_uint32),
        ("delay_ms", c_uint32),
        ("http_status", c_int32),
    ]


class ws_stats(Structure):
    """What ``ws_get_stats`` fills. ``size`` goes in as ``sizeof(ws_stats)``
    and comes back as the bytes filled: the struct only grows at its end,
    so an older library leaves the fields it does not know at 0."""

    _fields_ = [
        ("size", c_uint32),
        # Names the padding before the first u64, as the header does.
        ("reserved", c_uint32),
        ("bytes_sent", c_uint64),
        ("bytes_received", c_uint64),
        ("messages_sent", c_uint64),
        ("messages_received", c_uint64),
        ("frames_sent", c_uint64),
        ("frames_received", c_uint64),
        ("handshake_ms", c_uint32),
        ("last_rtt_us", c_uint32),
        ("payload_bytes_sent", c_uint64),
        ("payload_bytes_received", c_uint64),
        ("connections", c_uint32),
        ("pongs_received", c_uint32),
        ("pings_sent", c_uint32),
        ("pings_answered", c_uint32),
    ]


# The userdata is an integer key into a Python table (see _callbacks), so
# it is declared as void* and never dereferenced.
ws_callback = CFUNCTYPE(None, ws_handle, POINTER(ws_event), c_void_p)
ws_userdata_free = CFUNCTYPE(None, c_void_p)
# ws_log_fn(level, h, message, userdata): message is NUL-terminated UTF-8,
# valid during the call (c_char_p hands it over as a bytes copy).
LOG_FN = CFUNCTYPE(None, c_int, c_uint64, c_char_p, c_void_p)

# ws_options* is opaque: an address held as an int.
_options = c_void_p

SIGNATURES = {
    # library
    "ws_strerror": ([c_int], c_char_p),
    "ws_last_status": ([], c_int),
    "ws_last_error": ([], c_char_p),
    "ws_version": ([], c_char_p),
    "ws_has_tls": ([], c_bool),
    "ws_has_deflate": ([], c_bool),
    "ws_shutdown": ([], None),
    "ws_set_log_callback": ([c_int, LOG_FN, c_void_p], c_int),
    # options
    "ws_options_new": ([], _options),
    "ws_options_free": ([_options], None),
    "ws_options_add_protocol": ([_options, c_char_p], c_int),
    "ws_options_add_header": ([_options, c_char_p, c_char_p], c_int),
    "ws_options_set_connect_timeout_ms": ([_options, c_uint32], c_int),
    "ws_options_set_happy_eyeballs_delay_ms": ([_options, c_uint32], c_int),
    "ws_options_set_close_timeout_ms": ([_options, c_uint32], c_int),
    "ws_options_set_ping_interval_ms": ([_options, c_uint32], c_int),
    "ws_options_set_pong_timeout_ms": ([_options, c_uint32], c_int),
    "ws_options_set_max_message_size": ([_options, c_size_t], c_int),
    "ws_options_set_max_send_queue": ([_options, c_size_t], c_int),
    "ws_options_set_ca_file": ([_options, c_char_p], c_int),
    "ws_options_set_ca_pem": ([_options, c_char_p], c_int),
    "ws_options_set_client_cert": ([_options, c_char_p, c_char_p], c_int),
    "ws_options_set_insecure_skip_verify": ([_options, c_bool], c_int),
    "ws_options_set_proxy": ([_options, c_char_p], c_int),
    "ws_options_set_proxy_env": ([_options, c_bool], c_int),
    "ws_options_set_no_proxy": ([_options, c_char_p], c_int),
    "ws_options_set_max_redirects": ([_options, c_uint32], c_int),
    "ws_options_set_reconnect": ([_options, c_bool], c_int),
    "ws_options_set_reconnect_delay": ([_options, c_uint32, c_uint32], c_int),
    "ws_options_set_reconnect_backoff": ([_options, c_double, c_double], c_int),
    "ws_options_set_reconnect_max_attempts": ([_options, c_uint32], c_int),
    "ws_options_set_reconnect_stable_ms": ([_options, c_uint32], c_int),
    "ws_options_set_dispatcher": ([_options, ws_dispatcher], c_int),
    "ws_options_set_deflate": ([_options, c_bool], c_int),
    "ws_options_set_deflate_params": ([_options, c_uint8, c_uint8, c_bool, c_bool], c_int),
    "ws_options_set_deflate_threshold": ([_options, c_size_t], c_int),
    "ws_options_set_deflate_level": ([_options, c_int], c_int),
    # dispatchers
    "ws_dispatcher_new": ([], ws_dispatcher),
    "ws_dispatcher_fd": ([ws_dispatcher], c_int),
    "ws_dispatch": ([ws_dispatcher, c_int, c_size_t], c_int),
    "ws_dispatcher_wakeup": ([ws_dispatcher], c_int),
    "ws_dispatcher_free": ([ws_dispatcher], c_int),
    # sockets
    "ws_open": ([c_char_p], ws_handle),
    "ws_open_ex": ([c_char_p, _options], ws_handle),
    "ws_bind": ([ws_handle, ws_event_kind, ws_callback, c_void_p], c_int),
    "ws_bind_ex": (
        [ws_handle, ws_event_kind, ws_callback, c_void_p, ws_userdata_free],
        c_int,
    ),
    "ws_unbind": ([ws_handle, ws_event_kind, ws_callback, c_void_p], c_int),
    "ws_send": ([ws_handle, c_char_p], c_int),
    "ws_send_text": ([ws_handle, c_void_p, c_size_t], c_int),
    "ws_send_binary": ([ws_handle, c_void_p, c_size_t], c_int),
    "ws_close": ([ws_handle], c_int),
    "ws_close_ex": ([ws_handle, c_uint16, c_char_p], c_int),
    "ws_free": ([ws_handle], c_int),
    "ws_ready_state": ([ws_handle], c_int),
    "ws_buffered_amount": ([ws_handle], c_size_t),
    "ws_set_buffered_amount_low_threshold": ([ws_handle, c_size_t], c_int),
    "ws_protocol": ([ws_handle, c_void_p, c_size_t], c_size_t),
    "ws_extensions": ([ws_handle, c_void_p, c_size_t], c_size_t),
    "ws_url": ([ws_handle, c_void_p, c_size_t], c_size_t),
    "ws_response_status": ([ws_handle], c_int),
    "ws_response_header": ([ws_handle, c_char_p, c_void_p, c_size_t], c_size_t),
    "ws_response_body": ([ws_handle, c_void_p, c_size_t], c_size_t),
    "ws_reconnect": ([ws_handle], c_int),
    "ws_set_header": ([ws_handle, c_char_p, c_char_p], c_int),
    "ws_get_stats": ([ws_handle, POINTER(ws_stats)], c_int),
    "ws_ping": ([ws_handle, c_void_p, c_size_t], c_int),
}


def _declare(cdll: CDLL, path: str) -> CDLL:
    for name, (argtypes, restype) in SIGNATURES.items():
        try:
            function = getattr(cdll, name)
        except AttributeError:
            raise ImportError(
                "wsembed: {path} has no symbol {name}: it is not a libwsembed that "
                "matches this binding; rebuild it from the same checkout, or point "
                "{var} at one that is.".format(path=path, name=name, var=_library.ENV_VAR)
            ) from None
        function.argtypes = argtypes
        function.restype = restype
    return cdll


_cdll, lib_path = _library.load()
lib = _declare(_cdll, lib_path)
del _cdll
