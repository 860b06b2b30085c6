"""Events as Python sees them, copied out of the C ``ws_event`` (which is
valid only during the callback)."""

from __future__ import annotations

import ctypes

from . import _ffi

# For the type checker only: annotations are not evaluated at run time
# (the __future__ import), so `import wsembed` does not load typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Union

    from .websocket import WebSocket

# The payload copied straight into a Python object: one foreign call, where
# ``string_at`` then ``decode`` take two and more Python frames (ctypes'
# pythonapi keeps the GIL and raises the exception a NULL result sets).
_bytes_at = ctypes.pythonapi.PyBytes_FromStringAndSize
_bytes_at.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
_bytes_at.restype = ctypes.py_object
_text_at = ctypes.pythonapi.PyUnicode_DecodeUTF8
_text_at.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_char_p]
_text_at.restype = ctypes.py_object

KIND_NAMES = {
    _ffi.WS_EVENT_OPEN: "open",
    _ffi.WS_EVENT_MESSAGE: "message",
    _ffi.WS_EVENT_ERROR: "error",
    _ffi.WS_EVENT_CLOSE: "close",
    _ffi.WS_EVENT_RECONNECTING: "reconnecting",
    _ffi.WS_EVENT_BUFFERED_AMOUNT_LOW: "bufferedamountlow",
}
KINDS = {name: kind for kind, name in KIND_NAMES.items()}


def kind_of(name: str) -> int:
    """The C event kind for ``'open'``, ``'message'``, ``'error'``,
    ``'close'``, ``'reconnecting'`` or ``'bufferedamountlow'``; ValueError
    for anything else."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise ValueError(
            "unknown WebSocket event {!r}: expected one of 'open', 'message', "
            "'error', 'close', 'reconnecting', 'bufferedamountlow'".format(name)
        ) from None


def payload(event: _ffi.ws_event) -> Union[str, bytes]:
    """A message's data: ``str`` for text, ``bytes`` for binary."""
    length = event.len
    if event.is_binary:
        return _bytes_at(event.data, length) if length else b""
    return _text_at(event.data, length, None) if length else ""


def text(raw: Optional[bytes]) -> str:
    return raw.decode("utf-8", "replace") if raw else ""


class Event:
    """What a callback bound with ``WebSocket.bind`` receives, as the
    browser's event objects:

    - ``type``: ``'open'``, ``'message'``, ``'error'``, ``'close'``,
      ``'reconnecting'`` or ``'bufferedamountlow'``;
    - ``data`` (message): ``str`` for a text message, ``bytes`` for binary;
    - ``code``, ``reason``, ``wasClean`` (close): the close code (1005 when
      the peer sent none, 1006 when no close frame was exchanged), the
      peer's reason, and whether the closing handshake completed;
    - ``error_code`` and ``reason`` (error): one of ``WS_ERR_DNS`` ..
      ``WS_ERR_PROXY`` (see ``wsembed.errors``) and the library's message;
    - ``status`` (error): the HTTP status the server answered instead of
      101 when it refused the opening handshake (401, 503...; the socket's
      ``response_headers`` and ``response_body`` give the rest of the
      answer), else 0;
    - ``attempt`` (open): how many times the socket opened before (0 for
      the first open); (reconnecting) the number of the coming attempt,
      from 1;
    - ``delay`` (reconnecting): seconds before that attempt; and ``code``,
      ``reason``, ``wasClean`` of the lost connection, ``error_code`` of
      what failed (0 for a close by the server), ``status`` of a refused
      handshake;
    - ``bufferedAmount`` (bufferedamountlow): the socket's
      ``bufferedAmount`` when it fell to its threshold; read with the
      event rather than from the socket, which may have moved on since;
    - ``target``: the WebSocket the event belongs to.
    """

    __slots__ = (
        "type",
        "data",
        "code",
        "reason",
        "wasClean",
        "error_code",
        "status",
        "attempt",
        "delay",
        "bufferedAmount",
        "target",
    )

    def __init__(
        self,
        type: str,
        data: Union[str, bytes, None] = None,
        code: int = 0,
        reason: str = "",
        wasClean: bool = False,
        error_code: int = 0,
        target: Optional[WebSocket] = None,
        status: int = 0,
        attempt: int = 0,
        delay: float = 0.0,
        bufferedAmount: int = 0,
    ) -> None:
        self.type = type
        self.data = data
        self.code = code
        self.reason = reason
        self.wasClean = wasClean
        self.error_code = error_code
        self.status = status
        self.attempt = attempt
        self.delay = delay
        self.bufferedAmount = bufferedAmount
        self.target = target

    @classmethod
    def from_c(cls, event: _ffi.ws_event, target: Optional[WebSocket] = None) -> Event:
        kind = event.kind
        if kind == _ffi.WS_EVENT_MESSAGE:
            return cls("message", data=payload(event), target=target)
        if kind == _ffi.WS_EVENT_CLOSE:
            return cls(
                "close",
                code=event.code,
                reason=text(event.reason),
                wasClean=bool(event.was_clean),
                target=target,
            )
        if kind == _ffi.WS_EVENT_ERROR:
            return cls(
                "error",
                reason=text(event.reason),
                error_code=event.error_code,
                target=target,
                status=event.http_status,
            )
        if kind == _ffi.WS_EVENT_RECONNECTING:
            return cls(
                "reconnecting",
                code=event.code,
                reason=text(event.reason),
                wasClean=bool(event.was_clean),
                error_code=event.error_code,
                target=target,
                status=event.http_status,
                attempt=event.attempt,
                delay=event.delay_ms / 1000.0,
            )
        if kind == _ffi.WS_EVENT_OPEN:
            return cls("open", target=target, attempt=event.attempt)
        if kind == _ffi.WS_EVENT_BUFFERED_AMOUNT_LOW:
            return cls("bufferedamountlow", target=target, bufferedAmount=event.len)
        return cls(KIND_NAMES.get(kind, "unknown"), target=target)

    def __repr__(self) -> str:
        # Never raises: an Event made by hand (in a test, say) may hold
        # anything, and repr() runs while other errors are reported.
        try:
            detail = self._detail()
        except Exception:
            detail = ""
        return "<Event {}{}>".format(getattr(self, "type", "?"), detail)

    def _detail(self) -> str:
        if self.type == "message":
            detail = " data={!r}".format(_shorten(self.data))
        elif self.type == "close":
            detail = " code={} reason={!r} wasClean={}".format(self.code, self.reason, self.wasClean)
        elif self.type == "error":
            detail = " error_code={} reason={!r}".format(self.error_code, self.reason)
            if self.status:
                detail += " status={}".format(self.status)
        elif self.type == "reconnecting":
            detail = " attempt={} delay={:.3f} code={} error_code={}".format(
                self.attempt, self.delay, self.code, self.error_code
            )
        elif self.type == "bufferedamountlow":
            detail = " bufferedAmount={}".format(self.bufferedAmount)
        elif self.type == "open" and self.attempt:
            detail = " attempt={}".format(self.attempt)
        else:
            detail = ""
        return detail


def _shorten(data: Any, limit: int = 60) -> object:
    return data if len(data) <= limit else data[:limit] + (b"..." if isinstance(data, bytes) else "...")
