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

import threading
import time

from . import _callbacks, _options, _room, _stats
from ._inbox import CloseState, Inbox
from ._native import NativeSocket, NativeState
from .errors import ConnectionClosed, InvalidStatus, QueueFullError

__all__ = ["connect", "Connection"]

# How long to wait past the library's own timeouts for an event it always
# delivers within them: only a guard against a hang.
_GRACE = 5.0
_DEFAULT_CONNECT_TIMEOUT = 30.0


def _refuse_on_io_thread(what):
    if _callbacks.on_io_thread():
        raise RuntimeError(
            "{} would wait forever inside a wsembed callback: no event is "
            "delivered while a callback runs".format(what)
        )


class _ThreadInbox(Inbox):
    """An inbox filled on the IO thread and read by any thread."""

    def __init__(self):
        super().__init__()
        self.changed = threading.Condition()

    def deliver(self, record, *args):
        with self.changed:
            record(*args)
            self.changed.notify_all()

    def wait(self, predicate, timeout):
        with self.changed:
            return self.changed.wait_for(predicate, timeout)


class Connection(NativeState, CloseState):
    """A WebSocket connection used by blocking calls; made by :func:`connect`.

    Thread-safe: one thread may ``recv`` while others ``send``. Do not call
    its waiting methods (``recv``, ``ping``, ``close``) from a wsembed
    callback.
    """

    def __init__(self, url, protocols=None, headers=None, **options):
        if "dispatcher" in options:
            # Its events would wait for a dispatch() that recv() never makes.
            raise TypeError(
                "wsembed.connect() takes no dispatcher: the blocking client waits for "
                "its events itself (use websocket.WebSocket for a dispatcher)"
            )
        self._native = NativeSocket(url, protocols, headers, **options)
        self._inbox = _ThreadInbox()
        self._inbox.bind_to(self._native)
        self._close_timeout = _options.close_timeout(options)
        self._connect_timeout = options.get("connect_timeout") or _DEFAULT_CONNECT_TIMEOUT
        self._reconnect = bool(options.get("reconnect"))

    def _wait_open(self):
        _refuse_on_io_thread("connect()")
        inbox = self._inbox
        # With reconnection the library keeps trying, and ends it if it
        # gives up.
        timeout = None if self._reconnect else self._connect_timeout + _GRACE
        if not inbox.wait(lambda: inbox.settled, timeout):
            raise TimeoutError("no answer from {} in {} s".format(self.url, self._connect_timeout))
        if not inbox.opened:
            raise inbox.closed_exception(self._native)

    def recv(self, timeout=None):
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

    def __iter__(self):
        return self

    def __next__(self):
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

    def send(self, data):
        """Sends ``str`` as text, a bytes-like object as binary; copies and
        queues. When the send queue is full (``max_send_queue``), waits
        until the peer has read enough for the message to fit, as a
        blocking socket's send would; it raises ``InvalidStateError`` if
        the connection closes meanwhile. From a callback on the IO thread,
        which is the thread that empties the queue, it never waits and
        raises ``QueueFullError`` instead (see ``WebSocket.send`` for the
        other errors)."""
        pauses = None  # made only once the queue is found full
        while True:
            try:
                return self._native.send(data)
            except QueueFullError:
                if _callbacks.on_io_thread():
                    raise
                pauses = pauses or _room.pauses()
                time.sleep(next(pauses))

    def ping(self, data=b"", timeout=_stats.DEFAULT_PING_TIMEOUT):
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
                # answer with the round trip of the one before.
                return native.stats.last_rtt
            if inbox.closed is not None:
                raise inbox.closed_exception()
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("no answer to the ping in {} s".format(timeout))
            time.sleep(_stats.PING_POLL_INTERVAL)

    def close(self, code=None, reason=None):
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

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return "<wsembed.blocking.Connection {!r} readyState={}>".format(self.url, self.readyState)


def connect(url, protocols=None, headers=None, **options):
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
