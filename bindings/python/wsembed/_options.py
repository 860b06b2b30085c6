"""Turning the keyword options of ``WebSocket(...)`` into a C ``ws_options``.

Times are given in seconds (as the ``websockets`` package does) and passed
to C in milliseconds; sizes in bytes. Python checks what ctypes would
silently wrap (negative numbers, out-of-range values, embedded NULs); the
library checks the rest and its answer becomes the exception:
``NotImplementedError`` for an option this build lacks, ``ValueError`` for
a bad value.
"""

import contextlib
import ctypes
import math
import os

from . import errors
from ._ffi import lib

_UINT32_MAX = 2**32 - 1
_SIZE_MAX = 2 ** (8 * ctypes.sizeof(ctypes.c_size_t)) - 1

# The option names every constructor accepts, with their defaults in C.
OPTION_NAMES = (
    "connect_timeout",  # seconds, default 30
    "close_timeout",  # seconds, default 5
    "ping_interval",  # seconds, default 0 (no pings)
    "pong_timeout",  # seconds, default: one ping interval
    "max_message_size",  # bytes, default 64 MiB
    "max_send_queue",  # bytes, default 64 MiB
    "ca_file",  # path of a PEM file of extra trust roots
    "ca_pem",  # extra trust roots as PEM text
    "client_cert",  # (cert_pem_path, key_pem_path) for mutual TLS
    "insecure_skip_verify",  # DANGEROUS: accept any certificate (tests only)
    "proxy",  # http://[user:pass@]host:port, an HTTP CONNECT proxy
)

DEFAULT_CLOSE_TIMEOUT = 5.0


def cstring(value, what):
    """UTF-8 bytes for a C string; ValueError for a NUL, which C would
    silently take for the end of the string."""
    if not isinstance(value, str):
        raise TypeError("{} must be a str, not {}".format(what, type(value).__name__))
    if "\0" in value:
        raise ValueError("{} contains a NUL character".format(what))
    return value.encode("utf-8")


def _path(value, what):
    return cstring(os.fspath(value), what)


def _number(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("{} must be a number, not {}".format(what, type(value).__name__))
    if not math.isfinite(value) or value < 0:
        raise ValueError("{} must be a finite number >= 0, got {!r}".format(what, value))
    return value


def milliseconds(seconds, what):
    """Seconds as whole milliseconds for C; a positive time never rounds
    down to 0, which C reads as "off" or refuses."""
    ms = math.ceil(_number(seconds, what) * 1000)
    if ms > _UINT32_MAX:
        raise ValueError("{} of {!r} s is too long".format(what, seconds))
    return ms


def size(value, what):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("{} must be an int, not {}".format(what, type(value).__name__))
    if not 0 <= value <= _SIZE_MAX:
        raise ValueError("{} must be between 0 and {}, got {}".format(what, _SIZE_MAX, value))
    return value


def _protocol_list(protocols):
    if protocols is None:
        return []
    if isinstance(protocols, str):
        return [protocols]
    return list(protocols)


def _header_items(headers):
    if headers is None:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    return [(name, value) for name, value in items]


def _client_cert(value):
    try:
        cert, key = value
    except (TypeError, ValueError):
        raise TypeError("client_cert must be a (cert_pem_path, key_pem_path) pair") from None
    return _path(cert, "client_cert certificate"), _path(key, "client_cert key")


def _apply(options, protocols, headers, settings):
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

    def given(name):
        return settings.get(name) is not None

    for name in ("connect_timeout", "close_timeout", "ping_interval", "pong_timeout"):
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


@contextlib.contextmanager
def native_options(protocols=None, headers=None, dispatcher=0, **settings):
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


def close_timeout(settings):
    """The close timeout in seconds that these options give a socket."""
    value = settings.get("close_timeout")
    return DEFAULT_CLOSE_TIMEOUT if value is None else float(value)
