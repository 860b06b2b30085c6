"""A blocking client for scripts, on the same C ABI as the callback API::

    import wsembed

    with wsembed.connect("ws://127.0.0.1:9001/") as ws:
        ws.send("Hello")
        print(ws.recv(timeout=5))
        for message in ws:          # until the server closes
            print(message)

The IO thread puts each event in the connection's inbox; ``recv`` waits on
it. Messages are kept in Python until received.
"""

from __future__ import annotations

import threading
import time

from . import _callbacks, _drain, _options, _repr, _stats
from ._inbox import CloseState, Inbox
from ._native import NativeSocket, NativeState
from .errors import ConnectionClosed, InvalidStatus, QueueFullError

# For the type checker only: annotations are not evaluated at run time
# (the __future__ import), so `import wsembed` does not load typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional, Union

    from ._native import Data
    from ._options import Headers, Protocols

__all__ = ["connect", "Connection"]

# How long to wait past the library's own timeouts for an event it always
# delivers within them: only a guard against a hang.
_GRACE = 5.0
_DEFAULT_CONNECT_TIMEOUT = 30.0


def _refuse_on_io_thread(what: str) -> None:
    if _callbacks.on_io_thread():
        raise RuntimeError(
            "{} would wait forever inside a wsembed callback: no event is "
            "delivered while a callback runs".format(what)
        )


class _ThreadInbox(Inbox):
    """An inbox filled on the IO thread and read by any thread."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def deliver(self, record: Callable[..., None], *args: Any) -> None:
        with self.changed:
            record(*args)
            self.changed.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: Optional[float]) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)


class Connection(NativeState, CloseState):
    """A WebSocket connection used by blocking calls; made by :func:`connect`.

    Thread-safe: one thread may ``recv`` while others ``send``. Do not call
    its waiting methods (``recv``, ``ping``, ``close``) from a wsembed
    callback.
    """

    def __init__(
        self, url: str, protocols: Protocols = None, headers: Headers = None, **options: Any
    ) -> None:
        if "dispatcher" in options:
            # Its events would wait for a dispatch() that recv() never makes.
            raise TypeError(
                "wsembed.connect() takes no dispatcher: the blocking client waits for "
                "its events itself (use websocket.WebSocket for a dispatcher)"
            )
        self._native = NativeSocket(url, protocols, headers, **options)
        self._inbox: _ThreadInbox = _ThreadInbox()
        self._inbox.bind_to(self._native)
        self._close_timeout = _options.close_timeout(options)
        self._connect_timeout = options.get("connect_timeout") or _DEFAULT_CONNECT_TIMEOUT
        self._reconnect = bool(options.get("reconnect"))
        self._max_send_queue = _options.max_send_queue(options)
        # Made by the first send that finds the queue full (see _drain).
        self._room: Optional[_drain.Room] = None

    def _wait_open(self) -> None:
        _refuse_on_io_thread("connect()")
        inbox = self._inbox
        # With reconnection the library keeps trying, and ends it if it
        # gives up.
        timeout = None if self._reconnect else self._connect_timeout + _GRACE
        if not inbox.wait(lambda: inbox.settled, timeout):
            raise TimeoutError("no answer from {} in {} s".format(self.url, self._connect_timeout))
        if not inbox.opened:
            raise inbox.closed_exception(self._native)

    def recv(self, timeout: Optional[float] = None) -> Union[str, bytes]:
        """The next message: ``str`` for text, ``bytes`` for binary.

        Waits at most ``timeout`` seconds (``None``: as long as it takes),
        then raises ``TimeoutError``. Once the connection is closed and the
        messages that came before are received, raises ``ConnectionClosed``
        (with ``code``, ``reason``, ``was_clean``, and ``error_code`` when
        it failed). With ``reconnect=True`` it also raises
        ``ConnectionClosed`` where a connection was lost, after that
        connection's messages, and the next call goes on with the next
        connection's.
        """
        _refuse_on_io_thread("recv()")
        inbox = self._inbox
        with inbox.changed:
            if not inbox.changed.wait_for(
                lambda: inbox.messages or inbox.closed is not None, timeout
            ):
                raise TimeoutError("no message in {} s".format(timeout))
            if inbox.messages:
                return inbox.take_message()
        raise inbox.closed_exception()

    def __iter__(self) -> Connection:
        return self

    def __next__(self) -> Union[str, bytes]:
        """Messages until the connection closes: iteration ends after a
        clean close, and raises ``ConnectionClosed`` after a failure."""
        try:
            return self.recv()
        except ConnectionClosed as closed:
            # A clean end, of the socket or of a connection that a
            # reconnection follows.
            if closed.was_clean and not closed.error_code:
                raise StopIteration from None
            raise

    def send(self, data: Data) -> None:
        """Sends ``str`` as text, a bytes-like object as binary; copies and
        queues. When the send queue is full (``max_send_queue``), waits
        until the peer has read enough for the message to fit, as a
        blocking socket's send would: it sleeps until the library's drain
        signal (the ``bufferedamountlow`` event) says there is room, and
        does not poll. It raises ``InvalidStateError`` if the connection
        closes meanwhile. From a callback on the IO thread, which is the
        thread that empties the queue, it never waits and raises
        ``QueueFullError`` instead (see ``WebSocket.send`` for the other
        errors)."""
        try:
            return self._native.send(data)
        except QueueFullError:
            if _callbacks.on_io_thread():
                raise
        self._send_when_room(data)

    def _send_when_room(self, data: Data) -> None:
        changed = self._inbox.changed
        # The inbox's lock and condition: the drain signal, the close and
        # a lost connection all notify it, and under it no notification
        # can slip between a look at bufferedAmount and the wait.
        with changed:
            room = self._room
            if room is None:
                room = self._room = _drain.Room(
                    self._native, self._max_send_queue, self._inbox._on_low
                )
            need = room.enter(_drain.size_of(data))
        try:
            while True:
                with changed:
                    while not room.fits(need):
                        room.waits += 1
                        changed.wait()
                # Outside the lock, which the IO thread needs to deliver.
                try:
                    return self._native.send(data)
                except QueueFullError:
                    # Another sender took the room first.
                    pass
        finally:
            with changed:
                if room.leave(need):
                    changed.notify_all()

    def ping(
        self, data: Data = b"", timeout: Optional[float] = _stats.DEFAULT_PING_TIMEOUT
    ) -> float:
        """Sends a ping with ``data`` (``str`` as UTF-8, or bytes-like; at
        most 125 bytes) and waits for its pong; returns the round trip in
        seconds (``float``), as the IO thread timed it.

        The C ABI has no pong event, so this polls ``stats`` every
        millisecond until ``pings_answered`` grows; that step only delays
        the return, not the measure. Waits at most ``timeout`` seconds
        (``None``: as long as it takes), then raises ``TimeoutError``.
        Raises ``ConnectionClosed`` if the connection closes first,
        ``InvalidStateError`` unless it is open, ``ValueError`` past 125
        bytes. With ``ping_interval`` set, a keepalive ping's answer that
        comes meanwhile may be the one measured.
        """
        _refuse_on_io_thread("ping()")
        native = self._native
        answered = native.stats.pings_answered
        native.ping(data)
        deadline = None if timeout is None else time.monotonic() + timeout
        inbox = self._inbox
        while True:
            if native.stats.pings_answered > answered:
                # Read again: one read loads last_rtt_us before
                # pings_answered, so it can see the count of this ping's
                # answer with the round trip of the one before. Not None:
                # a ping was answered.
                return native.stats.last_rtt  # type: ignore[return-value]
            if inbox.closed is not None:
                raise inbox.closed_exception()
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("no answer to the ping in {} s".format(timeout))
            time.sleep(_stats.PING_POLL_INTERVAL)

    def close(self, code: Optional[int] = None, reason: Optional[str] = None) -> None:
        """Closes (code 1000 or 3000-4999, reason at most 123 bytes), waits
        for the closing handshake (at most the close timeout), and releases
        the native socket. Messages already received stay readable.
        Idempotent."""
        if not self._native.alive:
            return
        try:
            self._native.close(code, reason)
            if not _callbacks.on_io_thread():
                inbox = self._inbox
                inbox.wait(lambda: inbox.closed is not None, self._close_timeout + _GRACE)
        finally:
            self._native.free()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return _repr.describe(self, "{}.{}".format(type(self).__module__, type(self).__qualname__))


def connect(
    url: str, protocols: Protocols = None, headers: Headers = None, **options: Any
) -> Connection:
    """Opens a WebSocket and waits until it is open; returns a
    :class:`Connection`. Takes the arguments and keyword options of
    ``websocket.WebSocket``. Raises ``InvalidStatus`` (a
    ``ConnectionClosed``) when the server refuses the handshake with an
    HTTP status (``status``, ``headers``, ``body``), ``ConnectionClosed``
    when the connection fails otherwise (``status`` is the reason:
    ``WS_ERR_CONNECT``, ``WS_ERR_HANDSHAKE``, ...), ``ValueError`` for a
    bad URL or option, ``NotImplementedError`` for what this build lacks."""
    connection = Connection(url, protocols, headers, **options)
    try:
        connection._wait_open()
    except InvalidStatus:
        # Not freed: its headers are looked up in the socket, which the
        # exception keeps until it is collected.
        raise
    except BaseException:
        connection._native.free()
        raise
    return connection
