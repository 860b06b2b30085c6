"""Turning the keyword options of ``WebSocket(...)`` into a C ``ws_options``.

Times are given in seconds (as the ``websockets`` package does) and passed
to C in milliseconds; sizes in bytes. Python checks what ctypes would
silently wrap (negative numbers, out-of-range values, embedded NULs); the
library checks the rest and its answer becomes the exception:
``NotImplementedError`` for an option this build lacks, ``ValueError`` for
a bad value.

Options that only shape another one (``pong_timeout`` without
``ping_interval``, the ``deflate_*`` parameters without ``deflate=True``)
are passed on all the same, and the library ignores them, as it does in C.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os

from . import errors
from ._ffi import lib

# For the type checker only: annotations are not evaluated at run time
# (the __future__ import), so `import wsembed` does not load typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

    # What every constructor's `protocols=` and `headers=` take.
    Protocols = Optional[Union[str, Iterable[str]]]
    Headers = Optional[Union[Mapping[str, str], Iterable[Tuple[str, str]]]]
    # A path option (`ca_file`, `client_cert`'s): what os.fspath makes a str.
    StrPath = Union[str, "os.PathLike[str]"]

_UINT32_MAX = 2**32 - 1
_SIZE_MAX = 2 ** (8 * ctypes.sizeof(ctypes.c_size_t)) - 1
_UINT8_MAX = 2**8 - 1
_INT_MAX = 2 ** (8 * ctypes.sizeof(ctypes.c_int) - 1) - 1

# The option names every constructor accepts, with their defaults in C.
OPTION_NAMES = (
    "connect_timeout",  # seconds, default 30
    "happy_eyeballs_delay",  # seconds before the next address joins, default 0.25; 0: in turn
    "close_timeout",  # seconds, default 5
    "ping_interval",  # seconds, default 0 (no pings)
    "pong_timeout",  # seconds, default: one ping interval
    "max_message_size",  # bytes, default 64 MiB
    "max_send_queue",  # bytes, default 64 MiB
    "ca_file",  # path of a PEM file of extra trust roots
    "ca_pem",  # extra trust roots as PEM text
    "client_cert",  # (cert_pem_path, key_pem_path) for mutual TLS
    "insecure_skip_verify",  # DANGEROUS: accept any certificate (tests only)
    "proxy",  # http://, https://, socks5:// or socks5h://[user:pass@]host:port; "" for none
    "proxy_env",  # take the proxy from ws_proxy, http_proxy... (default True)
    "no_proxy",  # hosts to reach directly, replacing no_proxy and the loopback exemption
    "max_redirects",  # HTTP redirects of the handshake to follow, default 0
    "deflate",  # offer permessage-deflate (RFC 7692), default False
    "deflate_client_max_window_bits",  # 9..15 caps our window; default: the server picks
    "deflate_server_max_window_bits",  # 8..15 asks the server to cap its window
    "deflate_client_no_context_takeover",  # each of our messages starts an empty window
    "deflate_server_no_context_takeover",  # ask the server to do the same
    "deflate_threshold",  # bytes, default 1024 (see ws_options_set_deflate_threshold)
    "deflate_level",  # zlib level 0..9, default 6
    "reconnect",  # reconnect automatically, default False
    "reconnect_delay",  # seconds before the first retry, default 1
    "reconnect_max_delay",  # seconds the delays grow to, default 30
    "reconnect_backoff",  # each failed attempt multiplies the delay, default 2.0
    "reconnect_jitter",  # each delay moves at random by this fraction, default 0.2
    "reconnect_max_attempts",  # consecutive failed attempts before giving up, 0 (never)
    "reconnect_stable",  # seconds open that reset the count, default 5
)

DEFAULT_CLOSE_TIMEOUT = 5.0
# The library's (include/wsembed.h), which it cannot be asked for: the
# blocking and asyncio sends need it to know when a message will fit.
DEFAULT_MAX_SEND_QUEUE = 64 << 20


def cstring(value: str, what: str) -> bytes:
    """UTF-8 bytes for a C string; ValueError for a NUL, which C would
    silently take for the end of the string."""
    if not isinstance(value, str):
        raise TypeError("{} must be a str, not {}".format(what, type(value).__name__))
    if "\0" in value:
        raise ValueError("{} contains a NUL character".format(what))
    return value.encode("utf-8")


def _path(value: StrPath, what: str) -> bytes:
    return cstring(os.fspath(value), what)


def _number(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("{} must be a number, not {}".format(what, type(value).__name__))
    if not math.isfinite(value) or value < 0:
        raise ValueError("{} must be a finite number >= 0, got {!r}".format(what, value))
    return value


def milliseconds(seconds: float, what: str) -> int:
    """Seconds as whole milliseconds for C; a positive time never rounds
    down to 0, which C reads as "off" or refuses."""
    ms = math.ceil(_number(seconds, what) * 1000)
    if ms > _UINT32_MAX:
        raise ValueError("{} of {!r} s is too long".format(what, seconds))
    return ms


def size(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("{} must be an int, not {}".format(what, type(value).__name__))
    if not 0 <= value <= _SIZE_MAX:
        raise ValueError("{} must be between 0 and {}, got {}".format(what, _SIZE_MAX, value))
    return value


def _integer(value: int, what: str, low: int, high: int) -> int:
    """An int that the C parameter's type holds without wrapping; which
    values the library accepts is for it to say."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("{} must be an int, not {}".format(what, type(value).__name__))
    if not low <= value <= high:
        raise ValueError("{} must be between {} and {}, got {}".format(what, low, high, value))
    return value


def _protocol_list(protocols: Protocols) -> List[str]:
    if protocols is None:
        return []
    if isinstance(protocols, str):
        return [protocols]
    return list(protocols)


def _header_items(headers: Headers) -> List[Tuple[str, str]]:
    if headers is None:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    return [(name, value) for name, value in items]


def _client_cert(value: Tuple[StrPath, StrPath]) -> Tuple[bytes, bytes]:
    try:
        cert, key = value
    except (TypeError, ValueError):
        raise TypeError("client_cert must be a (cert_pem_path, key_pem_path) pair") from None
    return _path(cert, "client_cert certificate"), _path(key, "client_cert key")


def _apply(
    options: int, protocols: Protocols, headers: Headers, settings: Dict[str, Any]
) -> None:
    for protocol in _protocol_list(protocols):
        errors.check(lib.ws_options_add_protocol(options, cstring(protocol, "protocol")))
    for name, value in _header_items(headers):
        errors.check(
            lib.ws_options_add_header(
                options, cstring(name, "header name"), cstring(value, "header value")
            )
        )
    unknown = set(settings) - set(OPTION_NAMES)
    if unknown:
        raise TypeError("unknown WebSocket option(s): {}".format(", ".join(sorted(unknown))))

    def given(name: str) -> bool:
        return settings.get(name) is not None

    for name in (
        "connect_timeout",
        "happy_eyeballs_delay",
        "close_timeout",
        "ping_interval",
        "pong_timeout",
    ):
        if given(name):
            setter = getattr(lib, "ws_options_set_{}_ms".format(name))
            errors.check(setter(options, milliseconds(settings[name], name)))
    for name in ("max_message_size", "max_send_queue"):
        if given(name):
            setter = getattr(lib, "ws_options_set_{}".format(name))
            errors.check(setter(options, size(settings[name], name)))
    if given("ca_file"):
        errors.check(lib.ws_options_set_ca_file(options, _path(settings["ca_file"], "ca_file")))
    if given("ca_pem"):
        pem = settings["ca_pem"]
        if isinstance(pem, bytes):
            pem = pem.decode("ascii")
        errors.check(lib.ws_options_set_ca_pem(options, cstring(pem, "ca_pem")))
    if given("client_cert"):
        errors.check(lib.ws_options_set_client_cert(options, *_client_cert(settings["client_cert"])))
    # Only a request to skip verification is passed on: False is the
    # default, and saying so must not fail in a build without TLS.
    if settings.get("insecure_skip_verify"):
        errors.check(lib.ws_options_set_insecure_skip_verify(options, True))
    if given("proxy"):
        errors.check(lib.ws_options_set_proxy(options, cstring(settings["proxy"], "proxy")))
    # Only a request to ignore the environment is passed on: True is the
    # default.
    if settings.get("proxy_env") is False:
        errors.check(lib.ws_options_set_proxy_env(options, False))
    if given("no_proxy"):
        errors.check(
            lib.ws_options_set_no_proxy(options, cstring(settings["no_proxy"], "no_proxy"))
        )
    if given("max_redirects"):
        errors.check(
            lib.ws_options_set_max_redirects(
                options, _integer(settings["max_redirects"], "max_redirects", 0, _UINT32_MAX)
            )
        )
    _apply_deflate(options, settings)
    _apply_reconnect(options, settings)


def _apply_reconnect(options: int, settings: Dict[str, Any]) -> None:
    if settings.get("reconnect"):
        errors.check(lib.ws_options_set_reconnect(options, True))
    delay = settings.get("reconnect_delay")
    max_delay = settings.get("reconnect_max_delay")
    if delay is not None or max_delay is not None:
        initial_ms = 1000 if delay is None else milliseconds(delay, "reconnect_delay")
        max_ms = 30000 if max_delay is None else milliseconds(max_delay, "reconnect_max_delay")
        if max_delay is None:
            max_ms = max(max_ms, initial_ms)
        errors.check(lib.ws_options_set_reconnect_delay(options, initial_ms, max_ms))
    backoff = settings.get("reconnect_backoff")
    jitter = settings.get("reconnect_jitter")
    if backoff is not None or jitter is not None:
        errors.check(
            lib.ws_options_set_reconnect_backoff(
                options,
                2.0 if backoff is None else float(_number(backoff, "reconnect_backoff")),
                0.2 if jitter is None else float(_number(jitter, "reconnect_jitter")),
            )
        )
    if settings.get("reconnect_max_attempts") is not None:
        n = _integer(settings["reconnect_max_attempts"], "reconnect_max_attempts", 0, _UINT32_MAX)
        errors.check(lib.ws_options_set_reconnect_max_attempts(options, n))
    if settings.get("reconnect_stable") is not None:
        errors.check(
            lib.ws_options_set_reconnect_stable_ms(
                options, milliseconds(settings["reconnect_stable"], "reconnect_stable")
            )
        )


def _window_bits(settings: Dict[str, Any], name: str) -> int:
    # 0 is the C API's "not given" (and its default).
    value = settings.get(name)
    return 0 if value is None else _integer(value, name, 0, _UINT8_MAX)


def _apply_deflate(options: int, settings: Dict[str, Any]) -> None:
    # As with insecure_skip_verify, only what differs from the default is
    # passed on, so that deflate=False (or a False no_context_takeover)
    # never fails in a build without deflate.
    if settings.get("deflate"):
        errors.check(lib.ws_options_set_deflate(options, True))
    client_bits = _window_bits(settings, "deflate_client_max_window_bits")
    server_bits = _window_bits(settings, "deflate_server_max_window_bits")
    client_reset = bool(settings.get("deflate_client_no_context_takeover"))
    server_reset = bool(settings.get("deflate_server_no_context_takeover"))
    # One C call sets all four: those not given go with their defaults.
    if client_bits or server_bits or client_reset or server_reset:
        errors.check(
            lib.ws_options_set_deflate_params(
                options, client_bits, server_bits, client_reset, server_reset
            )
        )
    if settings.get("deflate_threshold") is not None:
        errors.check(
            lib.ws_options_set_deflate_threshold(
                options, size(settings["deflate_threshold"], "deflate_threshold")
            )
        )
    if settings.get("deflate_level") is not None:
        level = _integer(settings["deflate_level"], "deflate_level", -_INT_MAX - 1, _INT_MAX)
        errors.check(lib.ws_options_set_deflate_level(options, level))


@contextlib.contextmanager
def native_options(
    protocols: Protocols = None, headers: Headers = None, dispatcher: int = 0, **settings: Any
) -> Iterator[int]:
    """A ``ws_options *`` holding the given options, freed on exit
    (``ws_open_ex`` copies what it needs). ``dispatcher`` is a
    ``ws_dispatcher`` handle, or 0 for none."""
    options = lib.ws_options_new()
    if not options:
        raise MemoryError("ws_options_new returned NULL")
    try:
        _apply(options, protocols, headers, settings)
        if dispatcher:
            errors.check(lib.ws_options_set_dispatcher(options, dispatcher))
        yield options
    finally:
        lib.ws_options_free(options)


def close_timeout(settings: Mapping[str, Any]) -> float:
    """The close timeout in seconds that these options give a socket."""
    value = settings.get("close_timeout")
    return DEFAULT_CLOSE_TIMEOUT if value is None else float(value)


def max_send_queue(settings: Mapping[str, Any]) -> int:
    """The send queue limit in bytes that these options give a socket."""
    value = settings.get("max_send_queue")
    return DEFAULT_MAX_SEND_QUEUE if value is None else value
