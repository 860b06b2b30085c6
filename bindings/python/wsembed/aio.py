"""An asyncio client, on the same C ABI as the callback API::

    import asyncio
    import wsembed.aio

    async def main():
        async with wsembed.aio.connect("ws://127.0.0.1:9001/") as ws:
            await ws.send("Hello")
            print(await ws.recv())
            async for message in ws:    # until the server closes
                print(message)

    asyncio.run(main())

Each event loop gets one wsembed dispatcher, made with its first
connection and freed with its last: the loop watches the dispatcher's
descriptor (``loop.add_reader``) and runs the connections' events in that
reader, on the loop's thread, so no event crosses threads in Python. A
loop without ``add_reader`` (the Windows proactor) gets its events from
wsembed's IO thread through ``loop.call_soon_threadsafe`` instead. Use a
connection from the loop it was opened on; use ``asyncio.wait_for`` to
bound a ``recv``. Messages are kept in Python until received.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref

from . import _drain, _ffi, _options, _repr, _stats, errors
from ._dispatcher import Dispatcher
from ._ffi import lib
from ._events import payload
from ._inbox import CloseState, Inbox, Lost
from ._native import NativeSocket, NativeState
from .errors import ConnectionClosed, InvalidStatus, QueueFullError

# For the type checker only: annotations are not evaluated at run time
# (the __future__ import), so `import wsembed` does not load typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Generator, List, Optional, Tuple, Union

    from ._ffi import ws_event
    from ._native import Data
    from ._options import Headers, Protocols

__all__ = ["connect", "Connection"]

# How long to wait past the library's own timeouts for an event it always
# delivers within them: only a guard against a hang.
_GRACE = 5.0
_DEFAULT_CONNECT_TIMEOUT = 30.0

# loop -> its _LoopDispatcher. Weak: a loop that is gone takes its entry.
_loop_dispatchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopDispatcher] = (
    weakref.WeakKeyDictionary()
)
_loop_dispatchers_lock = threading.RLock()


class _LoopDispatcher:
    """The dispatcher of one event loop, whose descriptor the loop watches.

    Made on the loop's thread by the loop's first connection. Freed, its
    reader removed first, once its last socket is freed (``ws_dispatcher_free``
    refuses before): on the loop's thread while the loop runs, at once when
    the loop is closed (a socket that outlives its loop) or stopped (and at
    interpreter exit, when ``weakref.finalize`` frees the sockets left).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)
        self.dispatcher = Dispatcher()
        self._handle = self.dispatcher.handle
        self._fd = self.dispatcher.fileno()
        # On the loop's thread: inside ws_dispatch, or opening a socket
        # (between finding this dispatcher and the socket holding it). A
        # free due then waits for the loop's next turn.
        self._dispatching = False
        self.opening = 0
        self.freed = False
        try:
            loop.add_reader(self._fd, self._on_readable)
        except BaseException:
            self.dispatcher.close()
            raise
        self.dispatcher._idle = self._on_idle

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> Optional[_LoopDispatcher]:
        """The loop's dispatcher, made if need be; None for a loop that
        cannot watch a descriptor (or be weakly referenced)."""
        with _loop_dispatchers_lock:
            try:
                found = _loop_dispatchers.get(loop)
            except TypeError:
                return None
            if found is None or found.freed:
                try:
                    found = cls(loop)
                except NotImplementedError:
                    return None
                _loop_dispatchers[loop] = found
            return found

    def _on_readable(self) -> None:
        # The loop's reader. The callbacks run in here, on the loop's
        # thread: each hands its event to its inbox, which wakes the tasks
        # waiting (no user code runs inside, and none can dispatch again).
        self._dispatching = True
        try:
            ran = lib.ws_dispatch(self._handle, 0, 0)
        finally:
            self._dispatching = False
        if ran == _ffi.WS_ERR_INVALID_HANDLE:
            # Freed by its finalizer at interpreter exit: stop watching.
            self._remove_reader()

    def _remove_reader(self) -> None:
        loop = self._loop()
        if loop is not None and not loop.is_closed():
            try:
                loop.remove_reader(self._fd)
            except Exception:
                pass

    def _on_idle(self) -> None:
        """The last socket was freed, on any thread (a finalizer may run
        anywhere, also on the IO thread or inside ws_dispatch)."""
        loop = self._loop()
        if loop is None or loop.is_closed():
            self.free_if_idle()
        elif asyncio.events._get_running_loop() is loop:
            if self._dispatching or self.opening:
                loop.call_soon(self.free_if_idle)
            else:
                self.free_if_idle()
        elif loop.is_running():
            try:
                loop.call_soon_threadsafe(self.free_if_idle)
            except RuntimeError:
                # Closed meanwhile: nobody watches the descriptor any more.
                self.free_if_idle()
        else:
            # A stopped loop: nothing is selecting, so the reader can go.
            self.free_if_idle()

    def free_if_idle(self) -> None:
        """Frees the dispatcher unless a socket uses it again."""
        with _loop_dispatchers_lock:
            if self.freed or self.dispatcher._sockets:
                return
            self.freed = True
            loop = self._loop()
            if loop is not None and _loop_dispatchers.get(loop) is self:
                del _loop_dispatchers[loop]
        self._remove_reader()
        try:
            self.dispatcher.close()
        except errors.WebSocketError:
            # Not expected (no socket left, no dispatch running): its
            # finalizer frees it later.
            pass


class _LoopInbox(Inbox):
    """An inbox filled on the loop's thread, inside the loop's dispatcher."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self._waiters: List[asyncio.Future[None]] = []

    def deliver(self, record: Callable[..., None], *args: Any) -> None:
        self._apply(record, args)

    def _on_message(self, event: ws_event) -> None:
        # The common event, without the generic path's indirections.
        self.record_message(payload(event))
        if self._waiters:
            self._wake()

    def _apply(self, record: Callable[..., None], args: Tuple[Any, ...]) -> None:
        record(*args)
        if self._waiters:
            self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, predicate: Callable[[], bool]) -> None:
        """Returns once ``predicate()`` holds, checked after each event."""
        while not predicate():
            # One future per waiter, so cancelling one waiter leaves the
            # others waiting.
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            await waiter

    async def wait_message(self) -> None:
        """Returns once a message or the close is in: ``wait`` for
        ``recv``, the hot path, without its predicate calls."""
        messages = self.messages
        while not messages and self.closed is None:
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            await waiter


class _ThreadsafeLoopInbox(_LoopInbox):
    """An inbox filled on the IO thread through the event loop, for a loop
    that cannot watch the dispatcher's descriptor."""

    # Every event goes through `deliver`, to the loop's thread.
    _on_message = Inbox._on_message

    def deliver(self, record: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._apply, record, args)
        except RuntimeError:
            # The loop is closed: nobody is left to receive the event.
            pass


class Connection(NativeState, CloseState):
    """A WebSocket connection for asyncio; made by :func:`connect`. Use it
    from the event loop it was opened on."""

    def __init__(self, native: NativeSocket, inbox: _LoopInbox, options: Dict[str, Any]) -> None:
        self._native = native
        self._inbox: _LoopInbox = inbox
        self._close_timeout = _options.close_timeout(options)
        self._max_send_queue = _options.max_send_queue(options)
        # Made by the first send that finds the queue full (see _drain).
        self._room: Optional[_drain.Room] = None

    async def recv(self) -> Union[str, bytes]:
        """The next message: ``str`` for text, ``bytes`` for binary. Once
        the connection is closed and the messages that came before are
        received, raises ``ConnectionClosed``; with ``reconnect=True``, also
        where a connection was lost (the next call goes on with the next
        connection's messages)."""
        inbox = self._inbox
        messages = inbox.messages
        if not messages and inbox.closed is None:
            await inbox.wait_message()
        if messages:
            message = messages.popleft()
            if message.__class__ is Lost:
                # A connection lost (reconnect=True): its end, here.
                inbox.lost_taken += 1
                # mypy does not narrow on __class__ (kept for speed over isinstance).
                raise message.exception()  # type: ignore[union-attr]
            return message  # type: ignore[return-value]
        raise inbox.closed_exception()

    def __aiter__(self) -> Connection:
        return self

    async def __anext__(self) -> Union[str, bytes]:
        """Messages until the connection closes: iteration ends after a
        clean close, and raises ``ConnectionClosed`` after a failure."""
        try:
            return await self.recv()
        except ConnectionClosed as closed:
            # A clean end, of the socket or of a connection that a
            # reconnection follows.
            if closed.was_clean and not closed.error_code:
                raise StopAsyncIteration from None
            raise

    async def send(self, data: Data) -> None:
        """Sends ``str`` as text, a bytes-like object as binary; copies and
        queues. When the send queue is full (``max_send_queue``), waits
        until the peer has read enough for the message to fit, as
        ``websockets`` waits for its buffer to drain: the library's drain
        signal (the ``bufferedamountlow`` event) wakes it, delivered as
        the connection's other events are, with no polling. It raises
        ``InvalidStateError`` if the connection closes meanwhile (see
        ``WebSocket.send`` for the other errors). Bound it with
        ``asyncio.wait_for``."""
        try:
            return self._native.send(data)
        except QueueFullError:
            pass
        await self._send_when_room(data)

    async def _send_when_room(self, data: Data) -> None:
        room = self._room
        if room is None:
            room = self._room = _drain.Room(
                self._native, self._max_send_queue, self._inbox._on_low
            )
        inbox = self._inbox
        need = room.enter(_drain.size_of(data))
        try:
            while True:
                # The events, the drain signal among them, run on this
                # thread: none can come between this look and the wait.
                if not room.fits(need):
                    room.waits += 1
                    await inbox.wait(lambda: room.fits(need))
                try:
                    return self._native.send(data)
                except QueueFullError:
                    # Another task took the room first.
                    pass
        finally:
            if room.leave(need):
                inbox._wake()

    async def ping(
        self, data: Data = b"", timeout: Optional[float] = _stats.DEFAULT_PING_TIMEOUT
    ) -> float:
        """Sends a ping with ``data`` (``str`` as UTF-8, or bytes-like; at
        most 125 bytes) and returns the round trip in seconds (``float``)
        once its pong came, as the IO thread timed it: the latency that
        ``await (await ws.ping())`` gives in ``websockets``.

        The C ABI has no pong event, so this polls ``stats`` every
        millisecond (``asyncio.sleep``, the loop runs meanwhile) until
        ``pings_answered`` grows; that step only delays the return, not the
        measure. Waits at most ``timeout`` seconds (``None``: as long as it
        takes), then raises ``TimeoutError`` (the built-in one, which
        ``asyncio.TimeoutError`` is from Python 3.11 on). Raises
        ``ConnectionClosed`` if the connection closes first,
        ``InvalidStateError`` unless it is open, ``ValueError`` past 125
        bytes. With ``ping_interval`` set, a keepalive ping's answer that
        comes meanwhile may be the one measured.
        """
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
            await asyncio.sleep(_stats.PING_POLL_INTERVAL)

    async def close(self, code: Optional[int] = None, reason: Optional[str] = None) -> None:
        """Closes (code 1000 or 3000-4999, reason at most 123 bytes), waits
        for the closing handshake (at most the close timeout), and releases
        the native socket. Idempotent."""
        if not self._native.alive:
            return
        try:
            self._native.close(code, reason)
            await asyncio.wait_for(self.wait_closed(), self._close_timeout + _GRACE)
        except asyncio.TimeoutError:
            pass
        finally:
            self._native.free()

    async def wait_closed(self) -> None:
        """Returns once the connection is closed."""
        inbox = self._inbox
        await inbox.wait(lambda: inbox.closed is not None)

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return _repr.describe(self, "{}.{}".format(type(self).__module__, type(self).__qualname__))


def _native_socket(
    loop: asyncio.AbstractEventLoop,
    url: str,
    protocols: Protocols,
    headers: Headers,
    options: Dict[str, Any],
) -> Tuple[NativeSocket, _LoopInbox]:
    """The socket and its inbox: on the loop's dispatcher when it has one."""
    if "dispatcher" in options:
        raise TypeError(
            "wsembed.aio.connect() takes no dispatcher: each event loop has its own"
        )
    hub = _LoopDispatcher.of(loop)
    if hub is None:
        return NativeSocket(url, protocols, headers, **options), _ThreadsafeLoopInbox(loop)
    hub.opening += 1
    try:
        native = NativeSocket(url, protocols, headers, dispatcher=hub.dispatcher, **options)
    finally:
        hub.opening -= 1
        if not hub.dispatcher._sockets:
            # The socket did not open (a bad URL or option): the loop's
            # dispatcher may be left without any.
            hub.free_if_idle()
    return native, _LoopInbox(loop)


async def _open(
    url: str, protocols: Protocols, headers: Headers, options: Dict[str, Any]
) -> Connection:
    loop = asyncio.get_running_loop()
    native, inbox = _native_socket(loop, url, protocols, headers, options)
    try:
        inbox.bind_to(native)
        timeout = (options.get("connect_timeout") or _DEFAULT_CONNECT_TIMEOUT) + _GRACE
        if options.get("reconnect"):
            # The library keeps trying, and ends it if it gives up.
            timeout = None
        await asyncio.wait_for(inbox.wait(lambda: inbox.settled), timeout)
        if not inbox.opened:
            raise inbox.closed_exception(native)
    except InvalidStatus:
        # Not freed: its headers are looked up in the socket, which the
        # exception keeps until it is collected (and the loop's dispatcher
        # with it).
        raise
    except BaseException:
        native.free()
        raise
    return Connection(native, inbox, options)


class connect:
    """Opens a WebSocket; ``await connect(url)`` returns a
    :class:`Connection` once it is open, and ``async with connect(url) as
    ws`` also closes it at the end. Takes the arguments and keyword options
    of ``websocket.WebSocket``. Raises ``InvalidStatus`` (a
    ``ConnectionClosed``) when the server refuses the handshake with an
    HTTP status, ``ConnectionClosed`` when the connection fails otherwise,
    ``ValueError`` for a bad URL or option, ``NotImplementedError`` for
    what this build lacks.

    With ``reconnect=True`` (and the ``reconnect_*`` options of
    ``websocket.WebSocket``) the library keeps reconnecting, and ``async
    for`` yields the connection each time it is open again::

        async for ws in wsembed.aio.connect(url, reconnect=True):
            async for message in ws:    # ends, or raises, when it drops
                ...

    A connection's messages end where it was lost: ``recv`` raises
    ``ConnectionClosed`` there (iteration just ends after a clean close).
    Each turn of the outer loop is the next connection that opened, in
    order: it waits, without a busy loop, for that open, and drops what
    the loop body left unread of the connections before. The outer loop ends when the socket ends for good: after
    a clean close (yours with ``close()``, or a server's 1000), and it
    raises ``ConnectionClosed`` (``InvalidStatus`` for a refusal) when the
    library gives up or a failure is not worth a retry.
    """

    def __init__(
        self, url: str, protocols: Protocols = None, headers: Headers = None, **options: Any
    ) -> None:
        self._args = (url, protocols, headers, options)
        self._connection: Optional[Connection] = None
        # How many opens the `async for` loop has yielded.
        self._yielded = 0

    def __aiter__(self) -> connect:
        return self

    async def __anext__(self) -> Connection:
        connection = self._connection
        if connection is None:
            if not self._args[3].get("reconnect"):
                raise TypeError("async for over connect() needs reconnect=True")
            connection = self._connection = await _open(*self._args)
        inbox = connection._inbox
        yielded = self._yielded
        await inbox.wait(lambda: inbox.opens > yielded or inbox.closed is not None)
        if inbox.opens <= yielded:
            if inbox.ended_cleanly:
                raise StopAsyncIteration
            raise inbox.closed_exception(connection._native)
        # What the loop body left of the connections before this one.
        while inbox.lost_taken < yielded:
            inbox.skip_connection()
        self._yielded = yielded + 1
        return connection

    def __await__(self) -> Generator[Any, None, Connection]:
        return _open(*self._args).__await__()

    async def __aenter__(self) -> Connection:
        self._connection = await _open(*self._args)
        return self._connection

    async def __aexit__(self, *exc_info: object) -> None:
        # Set: __aenter__ ran.
        await self._connection.close()  # type: ignore[union-attr]
