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

The IO thread hands each event to the event loop the connection was
opened on, with ``loop.call_soon_threadsafe``; everything else happens on
that loop. Use ``asyncio.wait_for`` to bound a ``recv``. Messages are kept
in Python until received.
"""

import asyncio

from . import _options, _room
from ._inbox import CloseState, Inbox
from ._native import NativeSocket, NativeState
from .errors import ConnectionClosed, QueueFullError

__all__ = ["connect", "Connection"]

# How long to wait past the library's own timeouts for an event it always
# delivers within them: only a guard against a hang.
_GRACE = 5.0
_DEFAULT_CONNECT_TIMEOUT = 30.0


class _LoopInbox(Inbox):
    """An inbox filled on the IO thread through the event loop."""

    def __init__(self, loop):
        super().__init__()
        self._loop = loop
        self._waiters = []

    def deliver(self, record, *args):
        try:
            self._loop.call_soon_threadsafe(self._apply, record, args)
        except RuntimeError:
            # The loop is closed: nobody is left to receive the event.
            pass

    def _apply(self, record, args):
        record(*args)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, predicate):
        """Returns once ``predicate()`` holds, checked after each event."""
        while not predicate():
            # One future per waiter, so cancelling one waiter leaves the
            # others waiting.
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            await waiter


class Connection(NativeState, CloseState):
    """A WebSocket connection for asyncio; made by :func:`connect`. Use it
    from the event loop it was opened on."""

    def __init__(self, native, inbox, options):
        self._native = native
        self._inbox = inbox
        self._close_timeout = _options.close_timeout(options)

    async def recv(self):
        """The next message: ``str`` for text, ``bytes`` for binary. Once
        the connection is closed and the messages that came before are
        received, raises ``ConnectionClosed``."""
        inbox = self._inbox
        await inbox.wait(lambda: inbox.messages or inbox.closed is not None)
        if inbox.messages:
            return inbox.messages.popleft()
        raise inbox.closed_exception()

    def __aiter__(self):
        return self

    async def __anext__(self):
        """Messages until the connection closes: iteration ends after a
        clean close, and raises ``ConnectionClosed`` after a failure."""
        try:
            return await self.recv()
        except ConnectionClosed:
            if self._inbox.ended_cleanly:
                raise StopAsyncIteration from None
            raise

    async def send(self, data):
        """Sends ``str`` as text, a bytes-like object as binary; copies and
        queues. When the send queue is full (``max_send_queue``), waits
        until the peer has read enough for the message to fit, as
        ``websockets`` waits for its buffer to drain; it raises
        ``InvalidStateError`` if the connection closes meanwhile (see
        ``WebSocket.send`` for the other errors). Bound it with
        ``asyncio.wait_for``."""
        pauses = None  # made only once the queue is found full
        while True:
            try:
                return self._native.send(data)
            except QueueFullError:
                pauses = pauses or _room.pauses()
                await asyncio.sleep(next(pauses))

    async def close(self, code=None, reason=None):
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

    async def wait_closed(self):
        """Returns once the connection is closed."""
        inbox = self._inbox
        await inbox.wait(lambda: inbox.closed is not None)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.close()

    def __repr__(self):
        return "<wsembed.aio.Connection {!r} readyState={}>".format(self.url, self.readyState)


async def _open(url, protocols, headers, options):
    loop = asyncio.get_running_loop()
    native = NativeSocket(url, protocols, headers, **options)
    try:
        inbox = _LoopInbox(loop)
        inbox.bind_to(native)
        timeout = (options.get("connect_timeout") or _DEFAULT_CONNECT_TIMEOUT) + _GRACE
        await asyncio.wait_for(inbox.wait(lambda: inbox.settled), timeout)
        if not inbox.opened:
            raise inbox.closed_exception()
    except BaseException:
        native.free()
        raise
    return Connection(native, inbox, options)


class connect:
    """Opens a WebSocket; ``await connect(url)`` returns a
    :class:`Connection` once it is open, and ``async with connect(url) as
    ws`` also closes it at the end. Takes the arguments and keyword options
    of ``websocket.WebSocket``. Raises ``ConnectionClosed`` when the
    connection fails, ``ValueError`` for a bad URL or option,
    ``NotImplementedError`` for what this build lacks."""

    def __init__(self, url, protocols=None, headers=None, **options):
        self._args = (url, protocols, headers, options)
        self._connection = None

    def __await__(self):
        return _open(*self._args).__await__()

    async def __aenter__(self):
        self._connection = await _open(*self._args)
        return self._connection

    async def __aexit__(self, *exc_info):
        await self._connection.close()
