"""WebSocket objects shaped like Brython's ``browser.websocket``.

::

    from wsembed import websocket

    def on_open(evt):
        ws.send("Hello")

    def on_message(evt):
        print("Message received:", evt.data)

    def on_close(evt):
        print("Connection closed", evt.code)

    ws = websocket.websocket("ws://127.0.0.1:9001/")   # or websocket.WebSocket(url)
    ws.bind("open", on_open)
    ws.bind("message", on_message)
    ws.bind("close", on_close)
    ...
    ws.close()

Callbacks run on wsembed's IO thread, one at a time, holding the GIL; each
must return promptly, since no other socket is served meanwhile. They may
call anything, on any socket (send, close, bind, open another). An
exception raised by a callback goes to ``sys.unraisablehook`` and the IO
thread goes on.

To run them on a thread of your own instead (a GUI's), open the socket
with a :class:`Dispatcher`: ``WebSocket(url, dispatcher=d)``. Its
callbacks then run only inside ``d.dispatch()``, on the thread that calls
it, when that thread's event loop sees ``d.fileno()`` readable::

    d = websocket.Dispatcher()
    ws = websocket.WebSocket(url, dispatcher=d)
    ws.bind("message", on_message)
    root.tk.createfilehandler(d, tkinter.READABLE, lambda *_: d.dispatch())

No event is lost to a bind race: a callback bound after its ``open``,
``error`` or ``close`` already happened is called once with it, and the
messages that arrive while no ``message`` callback is bound are held and
given, in order, to the first one bound.

Lifetime: keep a reference to the WebSocket for as long as you want its
events. Like a file, a WebSocket that nothing refers to is freed when
Python collects it (closed with 1001, going away, without further events);
the callbacks bound to it do not keep it alive. ``free()`` or a ``with``
block releases it at a known time.
"""

import inspect
import threading
import weakref

from . import _callbacks, _ffi, _options, _unraisable
from ._dispatcher import Dispatcher
from ._events import Event, kind_of
from ._native import NativeSocket, NativeState

__all__ = [
    "WebSocket",
    "websocket",
    "Event",
    "Dispatcher",
    "CONNECTING",
    "OPEN",
    "CLOSING",
    "CLOSED",
]

CONNECTING = _ffi.WS_CONNECTING
OPEN = _ffi.WS_OPEN
CLOSING = _ffi.WS_CLOSING
CLOSED = _ffi.WS_CLOSED

# How long a `with` block waits past the close timeout for the close event,
# which the library always delivers within it: only a guard against a hang.
_EXIT_GRACE = 5.0


def _takes_event(fn):
    """Whether ``fn`` is called with the event, or with no argument: a
    callback may take the event or nothing, as a browser event handler may
    ignore its event."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        # No signature to read (some builtins): give it the event.
        return True
    try:
        signature.bind(None)
        return True
    except TypeError:
        pass
    try:
        signature.bind()
        return False
    except TypeError:
        raise TypeError(
            "a WebSocket callback takes the event or no argument; {!r} takes neither".format(fn)
        ) from None


class _Handler:
    """Calls one user callback with an Event; reports what it raises."""

    __slots__ = ("fn", "takes_event", "target")

    def __init__(self, fn, target):
        self.fn = fn
        self.takes_event = _takes_event(fn)
        # Weak: the handler must not keep its WebSocket alive.
        self.target = weakref.ref(target)

    def __call__(self, c_event):
        event = Event.from_c(c_event, self.target())
        try:
            if self.takes_event:
                self.fn(event)
            else:
                self.fn()
        except BaseException:
            _unraisable.report(
                "Exception ignored in wsembed {!r} callback".format(event.type), self.fn
            )


class WebSocket(NativeState):
    """A WebSocket client connection, as the browser's ``WebSocket``.

    ``WebSocket(url, protocols=None, headers=None, **options)`` starts
    connecting at once and returns in state CONNECTING; it never blocks on
    the network. ``url`` is a ``ws://`` or ``wss://`` URL (``ValueError``
    otherwise; ``NotImplementedError`` for ``wss://`` in a build without
    TLS). ``protocols`` is a subprotocol or a list of them to offer;
    ``headers`` a mapping or list of pairs added to the opening handshake.

    Keyword options (``None`` keeps the library's default; times in
    seconds, sizes in bytes): ``connect_timeout`` (30),
    ``happy_eyeballs_delay`` (0.25: how long one of the server's addresses
    gets before the next is tried alongside it, so a dead IPv6 route costs
    that rather than the connect timeout; 0 tries them one at a time),
    ``close_timeout`` (5), ``ping_interval`` (0: no pings), ``pong_timeout``
    (one ping interval), ``max_message_size`` (64 MiB), ``max_send_queue``
    (64 MiB), ``ca_file`` and ``ca_pem`` (extra trust roots), ``client_cert``
    (a ``(cert_path, key_path)`` pair), ``insecure_skip_verify`` (DANGEROUS,
    tests only), ``proxy`` (``http://``, ``https://``, ``socks5://`` or
    ``socks5h://[user:pass@]host:port``; an ``https://`` proxy is reached
    over TLS, checked with ``ca_file``, ``ca_pem`` and
    ``insecure_skip_verify`` as the server is;
    ``""`` for none; by default the environment's ``ws_proxy``,
    ``http_proxy``..., which ``proxy_env=False`` ignores), ``no_proxy``
    (hosts to reach directly, replacing the environment's list and the
    loopback exemption), ``max_redirects``
    (HTTP redirects of the handshake to follow; 0, the default, refuses
    them). An option this build
    lacks raises ``NotImplementedError``; a bad value ``ValueError``.

    Compression (permessage-deflate, RFC 7692): ``deflate=True`` offers
    it; the server may decline, and ``extensions`` then stays "". The
    offer's parameters: ``deflate_client_max_window_bits`` (9-15: caps our
    window; by default the server picks it), ``deflate_server_max_window_bits``
    (8-15: asks the server to cap its window),
    ``deflate_client_no_context_takeover`` (each message we send starts
    with an empty window) and ``deflate_server_no_context_takeover`` (asks
    the server to do the same). ``deflate_threshold`` (1024): shorter
    messages go uncompressed when our side has no context takeover;
    ``deflate_level`` (6): zlib's 0 (store) to 9 (smallest). These shape
    the offer and do nothing without ``deflate=True`` (as ``pong_timeout``
    without ``ping_interval``). Compression runs in ``send``, on the
    calling thread.

    ``dispatcher``: a :class:`Dispatcher` whose ``dispatch()`` runs this
    socket's callbacks, on the thread that calls it, instead of the IO
    thread. The dispatcher stays in use until the socket is freed.

    Reconnection: ``reconnect=True`` keeps the WebSocket across lost
    connections: a connection that drops, or cannot be made, is tried
    again after a delay, and each loss is a ``'reconnecting'`` event
    (``evt.attempt``, ``evt.delay`` in seconds, and the lost connection's
    ``code``, ``reason``, ``wasClean``, ``error_code``) instead of
    ``close``; ``open`` fires again after each reconnection
    (``evt.attempt`` counts the opens before). Sends while it is down raise
    ``InvalidStateError``; messages queued when a connection drops are
    lost. Retried: network failures, timeouts, 1006, server closes with
    1001, 1011-1014 and 3000-4999, refusals with 408, 425, 429 or 5xx
    (honouring ``Retry-After``); not retried: your ``close()``, a server's
    1000, protocol errors, other refusals, rejected certificates. Calling
    ``close()`` in a ``reconnecting`` callback stops it. Tuning:
    ``reconnect_delay`` (1 s before the first retry), ``reconnect_max_delay``
    (30 s), ``reconnect_backoff`` (2.0, the growth per failed attempt),
    ``reconnect_jitter`` (0.2: ±20 %), ``reconnect_max_attempts`` (0: never
    give up; else ``error`` then ``close`` after that many consecutive
    failures), ``reconnect_stable`` (5 s open resets the count).

    The server's answer to the opening handshake is readable from the
    ``open`` or ``error`` callback on: ``response_status`` (101 once open;
    a refusal's status, also the ``error`` event's ``status``),
    ``response_headers`` (case-insensitive, looked up by name) and
    ``response_body`` (a refusal's body). The headers can be read until
    the socket is freed; the status and body also after.

    ``stats`` (a :class:`~wsembed.Stats`) counts what the socket moved;
    ``ping()`` measures the connection's round trip into it.
    """

    CONNECTING = CONNECTING
    OPEN = OPEN
    CLOSING = CLOSING
    CLOSED = CLOSED

    def __init__(self, url, protocols=None, headers=None, dispatcher=None, **options):
        self._native = NativeSocket(url, protocols, headers, dispatcher=dispatcher, **options)
        self._close_timeout = _options.close_timeout(options)
        # (kind, fn, key) for each bound callback, for unbind; the lock
        # makes "bind once" hold when threads (or callbacks) bind at once.
        self._bound = []
        self._bound_lock = threading.Lock()

    # ----- events -------------------------------------------------------

    def bind(self, evt, fn):
        """Calls ``fn(event)`` (or ``fn()``) on each ``evt``: ``'open'``,
        ``'message'``, ``'error'``, ``'close'`` or ``'reconnecting'``.
        Several callbacks may be bound to one event; they run in the order
        bound. Binding the same callback twice to an event binds it once."""
        kind = kind_of(evt)
        if not callable(fn):
            raise TypeError("bind() needs a callable, not {}".format(type(fn).__name__))
        handler = _Handler(fn, self)
        with self._bound_lock:
            if any(k == kind and f == fn for k, f, _ in self._bound):
                return
            # ws_bind_ex never waits for the IO thread: safe under the lock.
            key = self._native.bind(kind, handler)
            self._bound.append((kind, fn, key))

    def unbind(self, evt, fn=None):
        """Removes ``fn`` from ``evt`` (every callback of ``evt`` when
        ``fn`` is omitted). Removing one that is not bound does nothing."""
        kind = kind_of(evt)
        with self._bound_lock:
            removed = [e for e in self._bound if e[0] == kind and (fn is None or e[1] == fn)]
            self._bound = [e for e in self._bound if e not in removed]
        for _, _, key in removed:
            self._native.unbind(key)

    # ----- sending and closing --------------------------------------------

    def send(self, data):
        """Sends ``data``: a ``str`` as a text message; ``bytes``,
        ``bytearray`` or ``memoryview`` as a binary one. The data is copied
        and queued; this never blocks. Raises ``InvalidStateError`` unless
        the socket is OPEN, ``QueueFullError`` when ``bufferedAmount`` would
        pass ``max_send_queue``, ``ValueError`` for a message over
        ``max_message_size``."""
        self._native.send(data)

    def ping(self, data=b""):
        """Sends a ping now, ahead of queued messages, with ``data``
        (``str`` as UTF-8, or bytes-like; at most 125 bytes, ``ValueError``
        past that) as its payload; never blocks. Raises
        ``InvalidStateError`` unless the socket is OPEN.

        There is no pong event: when the peer's answer comes,
        ``stats.pings_answered`` grows by one and ``stats.last_rtt`` is the
        round trip (the blocking and asyncio clients' ``ping`` wait for
        that). Pinging again before the answer measures from the latest
        ping."""
        self._native.ping(data)

    def close(self, code=None, reason=None):
        """Closes the connection: the closing handshake when OPEN (the
        ``close`` event follows), an abort when CONNECTING (``close`` event,
        code 1006). ``code`` is 1000 or 3000-4999, ``reason`` at most 123
        UTF-8 bytes (``ValueError`` otherwise). Closing twice does nothing."""
        self._native.close(code, reason)

    def reconnect(self):
        """Drops the connection (closing it with 1000 when open) and
        connects again at once, as attempt 1 with no delay. Only with
        ``reconnect=True``; ``InvalidStateError`` otherwise, and once
        ``close()`` was called."""
        self._native.reconnect()

    def set_header(self, name, value):
        """Sets (``value`` None: removes) a header of the next opening
        handshakes, replacing the values given to ``headers=`` under that
        name: for a fresh token in a ``reconnecting`` callback."""
        self._native.set_header(name, value)

    def free(self):
        """Releases the native socket now instead of when the WebSocket is
        collected. A socket still open is closed with 1001 (going away),
        and no callback runs after ``free`` returns. Idempotent."""
        self._native.free()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        """Closes, waits for the ``close`` event (so ``close`` callbacks have
        run), then frees. From inside a callback it does not wait, since no
        event can be delivered while a callback runs.

        With a dispatcher, on the thread that dispatches it (the last one
        that called ``dispatch()``), it dispatches while it waits, so the
        callbacks still run on that thread; from another thread it waits
        for that one to deliver the ``close`` event."""
        native = self._native
        dispatcher = native.dispatcher
        if (
            native.alive
            and not _callbacks.on_io_thread()
            and not (dispatcher is not None and dispatcher._inside())
        ):
            closed = threading.Event()
            key = native.bind(_ffi.WS_EVENT_CLOSE, lambda _event: closed.set())
            native.close()
            timeout = self._close_timeout + _EXIT_GRACE
            if dispatcher is None:
                closed.wait(timeout)
            else:
                dispatcher._wait(closed, timeout)
            native.unbind(key)
        native.free()

    def __repr__(self):
        state = ("CONNECTING", "OPEN", "CLOSING", "CLOSED")[self.readyState]
        return "<WebSocket {!r} {}>".format(self.url, state)


def websocket(url, protocols=None, headers=None, **options):
    """Opens a WebSocket to ``url``; the same as ``WebSocket(url, ...)``,
    under the name of Brython's ``browser.websocket.websocket``."""
    return WebSocket(url, protocols, headers, **options)
