"""What the blocking and asyncio connections keep of a socket's events:
the messages not yet received and how the connection ended. Subclasses
decide how the IO thread hands events over (a condition variable, or the
event loop)."""

from __future__ import annotations

import collections

from . import _ffi
from ._events import payload, text
from .errors import ConnectionClosed, InvalidStatus

# For the type checker only: annotations are not evaluated at run time
# (the __future__ import), so `import wsembed` does not load typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Deque, Optional, Tuple, Union

    from ._ffi import ws_event
    from ._native import NativeSocket


def _nothing() -> None:
    pass


class CloseState:
    """``close_code`` and ``close_reason`` for the clients that keep their
    events in ``self._inbox``."""

    _inbox: Inbox

    @property
    def close_code(self) -> Optional[int]:
        """The close code once closed, else None."""
        closed = self._inbox.closed
        return closed[0] if closed else None

    @property
    def close_reason(self) -> Optional[str]:
        """The close reason once closed, else None."""
        closed = self._inbox.closed
        return closed[1] if closed else None


class Lost:
    """Put among the messages where a connection was lost and another
    comes (automatic reconnection): ``recv`` raises its exception there,
    after the lost connection's messages, and goes on with the next
    connection's."""

    __slots__ = ("closed", "error")

    def __init__(self, closed: Tuple[int, str, bool], error: Tuple[int, str]) -> None:
        self.closed = closed
        self.error = error

    def exception(self) -> ConnectionClosed:
        code, reason, was_clean = self.closed
        error_code, message = self.error
        return ConnectionClosed(code, reason, was_clean, error_code, message)


class Inbox:
    def __init__(self) -> None:
        # str and bytes, with a `Lost` mark where a connection ended.
        self.messages: Deque[Union[str, bytes, Lost]] = collections.deque()
        self.opened = False
        # How many times the socket opened, and how many `Lost` marks the
        # consumer took (connections it read to their end).
        self.opens = 0
        self.lost_taken = 0
        # The current connection showed itself (open or a message).
        self.seen = False
        # (error_code, message, HTTP status) of the `error` event, if any.
        self.error: Optional[Tuple[int, str, int]] = None
        # (code, reason, was_clean) of the `close` event, once it came.
        self.closed: Optional[Tuple[int, str, bool]] = None

    def bind_to(self, native: NativeSocket) -> None:
        """Binds the four event kinds of ``native`` to this inbox."""
        native.bind(_ffi.WS_EVENT_OPEN, self._on_open)
        native.bind(_ffi.WS_EVENT_MESSAGE, self._on_message)
        native.bind(_ffi.WS_EVENT_ERROR, self._on_error)
        native.bind(_ffi.WS_EVENT_CLOSE, self._on_close)
        native.bind(_ffi.WS_EVENT_RECONNECTING, self._on_reconnecting)

    # Called on the IO thread with the C event; they copy what they need
    # (the event is valid only during the call) and pass it to `deliver`.

    def _on_open(self, event: ws_event) -> None:
        self.deliver(self.record_open)

    def _on_message(self, event: ws_event) -> None:
        self.deliver(self.record_message, payload(event))

    def _on_error(self, event: ws_event) -> None:
        self.deliver(self.record_error, event.error_code, text(event.reason), event.http_status)

    def _on_close(self, event: ws_event) -> None:
        self.deliver(self.record_close, event.code, text(event.reason), bool(event.was_clean))

    def _on_reconnecting(self, event: ws_event) -> None:
        self.deliver(
            self.record_reconnecting,
            (event.code, text(event.reason), bool(event.was_clean)),
            (event.error_code, text(event.reason) if event.error_code else ""),
        )

    def _on_low(self, event: ws_event) -> None:
        # Bound by the senders' Room (_drain), once a send found the queue
        # full. Nothing to record: each waiting sender reads bufferedAmount
        # itself; this only wakes them, where and as the other events do.
        self.deliver(_nothing)

    def deliver(self, record: Callable[..., None], *args: Any) -> None:
        """Runs ``record(*args)`` where the consumer can see it."""
        raise NotImplementedError

    # Run where `deliver` puts them.

    def record_open(self) -> None:
        self.opened = True
        self.opens += 1
        self.seen = True

    def record_reconnecting(
        self, closed: Tuple[int, str, bool], error: Tuple[int, str]
    ) -> None:
        # Only a connection the consumer saw something of (its open, or
        # messages: an open missed by binding late is not replayed once
        # the connection is gone) has an end to mark; attempts that failed
        # before opening leave none.
        if self.seen:
            self.messages.append(Lost(closed, error))
        self.opened = False
        self.seen = False

    def take_message(self) -> Union[str, bytes]:
        """The next message; raises ``ConnectionClosed`` where a
        connection was lost."""
        message = self.messages.popleft()
        if message.__class__ is Lost:
            self.lost_taken += 1
            # mypy does not narrow on __class__ (kept for speed over isinstance).
            raise message.exception()  # type: ignore[union-attr]
        return message  # type: ignore[return-value]

    def skip_connection(self) -> None:
        """Drops what is left of the oldest connection not read to its
        end, its `Lost` mark included."""
        messages = self.messages
        while messages.popleft().__class__ is not Lost:
            pass
        self.lost_taken += 1

    def record_message(self, data: Union[str, bytes]) -> None:
        self.messages.append(data)
        self.seen = True

    def record_error(self, error_code: int, message: str, http_status: int = 0) -> None:
        self.error = (error_code, message, http_status)

    def record_close(self, code: int, reason: str, was_clean: bool) -> None:
        self.closed = (code, reason, was_clean)

    @property
    def settled(self) -> bool:
        """The connection opened or ended: ``connect`` may return."""
        return self.opened or self.closed is not None

    def closed_exception(self, native: Optional[NativeSocket] = None) -> ConnectionClosed:
        """``ConnectionClosed`` describing how the connection ended;
        ``InvalidStatus`` for a refused handshake when given its socket
        (not yet freed: the answer is read from it, and the exception keeps
        it for the headers)."""
        code, reason, was_clean = self.closed or (1006, "", False)
        error_code, message, http_status = self.error or (0, "", 0)
        if http_status and native is not None:
            return InvalidStatus(
                http_status,
                native.response_headers,
                native.response_body,
                code,
                reason,
                was_clean,
                error_code,
                message,
            )
        return ConnectionClosed(code, reason, was_clean, error_code, message)

    @property
    def ended_cleanly(self) -> bool:
        """Closed by a completed closing handshake, with no error: the end
        of iteration rather than an exception."""
        return self.closed is not None and self.closed[2] and self.error is None
