"""Exceptions raised by wsembed.

Every exception the library raises for a failed call is a
:class:`WebSocketError` carrying the C status code in ``status``; the
subclasses also derive from the built-in exception a Python programmer
would catch for that kind of failure:

==============================  ======================  =============================
status                          exception               also a
==============================  ======================  =============================
WS_ERR_UNSUPPORTED              UnsupportedError        NotImplementedError
WS_ERR_INVALID_URL,             InvalidArgumentError    ValueError
WS_ERR_INVALID_ARGUMENT,
WS_ERR_INVALID_UTF8,
WS_ERR_TOO_LARGE
WS_ERR_INVALID_STATE,           InvalidStateError
WS_ERR_INVALID_HANDLE
WS_ERR_QUEUE_FULL               QueueFullError
WS_ERR_DNS .. WS_ERR_PROXY      ConnectionClosed        ConnectionError
WS_ERR_HANDSHAKE (an HTTP       InvalidStatus           ConnectionClosed
answer other than 101)
WS_ERR_INTERNAL                 WebSocketError
==============================  ======================  =============================

:class:`InvalidStatus` is the one exception whose ``status`` is not a C
code: it is the HTTP status of the server's refusal (401, 503...), as in
``http.client`` and ``aiohttp``; its C code is in ``error_code``.

The status codes are here by their C names (``errors.WS_ERR_CONNECT``).
"""

from __future__ import annotations

from . import _ffi
from ._ffi import (
    WS_ERR_CONNECT,
    WS_ERR_DNS,
    WS_ERR_HANDSHAKE,
    WS_ERR_INTERNAL,
    WS_ERR_INVALID_ARGUMENT,
    WS_ERR_INVALID_HANDLE,
    WS_ERR_INVALID_STATE,
    WS_ERR_INVALID_URL,
    WS_ERR_INVALID_UTF8,
    WS_ERR_IO,
    WS_ERR_PROTOCOL,
    WS_ERR_PROXY,
    WS_ERR_QUEUE_FULL,
    WS_ERR_TIMEOUT,
    WS_ERR_TLS,
    WS_ERR_TOO_LARGE,
    WS_ERR_UNSUPPORTED,
    WS_OK,
    lib,
)

# For the type checker only: annotations are not evaluated at run time
# (the __future__ import), so `import wsembed` does not load typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    from ._native import ResponseHeaders

__all__ = [
    "WebSocketError",
    "UnsupportedError",
    "InvalidArgumentError",
    "InvalidStateError",
    "QueueFullError",
    "ConnectionClosed",
    "InvalidStatus",
    "strerror",
    # The status codes.
    "WS_OK",
    "WS_ERR_INVALID_HANDLE",
    "WS_ERR_INVALID_ARGUMENT",
    "WS_ERR_INVALID_URL",
    "WS_ERR_UNSUPPORTED",
    "WS_ERR_INVALID_STATE",
    "WS_ERR_INVALID_UTF8",
    "WS_ERR_QUEUE_FULL",
    "WS_ERR_TOO_LARGE",
    "WS_ERR_INTERNAL",
    "WS_ERR_DNS",
    "WS_ERR_CONNECT",
    "WS_ERR_TIMEOUT",
    "WS_ERR_TLS",
    "WS_ERR_HANDSHAKE",
    "WS_ERR_PROTOCOL",
    "WS_ERR_IO",
    "WS_ERR_PROXY",
]


class WebSocketError(Exception):
    """A failed wsembed call. ``status`` is the C status code (negative),
    ``status_name`` its name, e.g. ``"WS_ERR_QUEUE_FULL"``; ``str()`` is
    the library's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    @property
    def status_name(self) -> str:
        return _ffi.STATUS_NAMES.get(self.status, "unknown status {}".format(self.status))


class UnsupportedError(WebSocketError, NotImplementedError):
    """A feature this build of the library lacks, such as ``wss://`` in a
    build without TLS: a ``NotImplementedError``, the counterpart of a
    browser without WebSocket (where Brython's ``websocket.supported`` is
    false)."""


class InvalidArgumentError(WebSocketError, ValueError):
    """A bad URL, option, close code or reason, text that is not UTF-8, or
    a message over the maximum size."""


class InvalidStateError(WebSocketError):
    """A send while the socket is not OPEN, or a call on a socket already
    freed (as the browser's InvalidStateError)."""


class QueueFullError(WebSocketError):
    """The send queue is over its limit (``max_send_queue``); nothing was
    queued. Retry when ``bufferedAmount`` has dropped."""


class ConnectionClosed(WebSocketError, ConnectionError):
    """The connection is closed, or could not be opened.

    ``code``, ``reason`` and ``was_clean`` describe the close (1006 when no
    close frame was exchanged). When the connection failed, ``error_code``
    (also ``status``) is one of ``WS_ERR_DNS`` .. ``WS_ERR_PROXY`` and
    ``error`` the library's message; otherwise ``error_code`` is 0 and
    ``status`` is ``WS_ERR_INVALID_STATE``.
    """

    def __init__(
        self, code: int, reason: str, was_clean: bool, error_code: int = 0, error: str = ""
    ) -> None:
        if error_code:
            message = "{} (close code {})".format(error, code)
        else:
            message = "connection closed (code {}{}{})".format(
                code, ", clean" if was_clean else ", not clean", ": " + reason if reason else ""
            )
        super().__init__(error_code or WS_ERR_INVALID_STATE, message)
        self.code = code
        self.reason = reason
        self.was_clean = was_clean
        self.error_code = error_code
        self.error = error


class InvalidStatus(ConnectionClosed):
    """The server refused the opening handshake: it answered with an HTTP
    status other than 101 (as ``websockets.exceptions.InvalidStatus``).
    Raised by ``wsembed.connect`` and ``wsembed.aio.connect``.

    - ``status``: the HTTP status (401, 403, 429, 503, 302...). Unlike
      other ``WebSocketError``s, not a C code: that is ``error_code``,
      ``WS_ERR_HANDSHAKE`` (or ``WS_ERR_TIMEOUT`` when the answer's body
      did not come within the connect timeout); ``status_name`` names it;
    - ``headers``: the answer's headers, a read-only case-insensitive
      mapping looked up by name (``e.headers.get("Retry-After")``; not
      iterable, see ``wsembed._native.ResponseHeaders``). It reads them
      from the refused socket, which the exception keeps (closed, holding
      no connection) until it is collected;
    - ``body``: the answer's body, ``bytes`` (at most its first 64 KiB);
    - ``code``, ``reason``, ``was_clean``, ``error``: as for
      ``ConnectionClosed`` (close code 1006).
    """

    def __init__(
        self,
        status: int,
        headers: ResponseHeaders,
        body: bytes,
        code: int,
        reason: str,
        was_clean: bool,
        error_code: int,
        error: str,
    ) -> None:
        super().__init__(code, reason, was_clean, error_code, error)
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def status_name(self) -> str:
        return _ffi.STATUS_NAMES.get(self.error_code, "unknown status {}".format(self.error_code))


_CLASS_FOR_STATUS = {
    WS_ERR_UNSUPPORTED: UnsupportedError,
    WS_ERR_INVALID_URL: InvalidArgumentError,
    WS_ERR_INVALID_ARGUMENT: InvalidArgumentError,
    WS_ERR_INVALID_UTF8: InvalidArgumentError,
    WS_ERR_TOO_LARGE: InvalidArgumentError,
    WS_ERR_INVALID_STATE: InvalidStateError,
    WS_ERR_INVALID_HANDLE: InvalidStateError,
    WS_ERR_QUEUE_FULL: QueueFullError,
}


def strerror(status: int) -> str:
    """The library's fixed description of a status code."""
    text: str = lib.ws_strerror(status).decode("utf-8", "replace")
    return text


def last_error() -> str:
    """This thread's message for its last failed call. Read it right after
    the call: the next wsembed call on this thread replaces it."""
    text: str = lib.ws_last_error().decode("utf-8", "replace")
    return text


def from_status(status: int, message: Optional[str] = None) -> WebSocketError:
    """The exception for a failed call's status, with this thread's last
    error message unless ``message`` is given."""
    if message is None:
        message = last_error() or strerror(status)
    return _CLASS_FOR_STATUS.get(status, WebSocketError)(status, message)


def check(status: int) -> None:
    """Raises the exception for ``status`` unless it is WS_OK."""
    if status != WS_OK:
        raise from_status(status)
