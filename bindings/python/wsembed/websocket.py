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

Lifetime, as in a browser: a WebSocket whose callbacks may still be
called stays alive without a reference of yours, so a socket opened and
bound inside a function goes on after the function returns. The binding
holds it while it is CONNECTING (or reconnecting) with an ``open``,
``message``, ``error`` or ``close`` callback bound, OPEN with a
``message``, ``error`` or ``close`` callback, or CLOSING with an ``error``
or ``close`` callback (with ``reconnect=True``, a ``reconnecting`` callback
also holds it while CONNECTING or OPEN). The state meant is the one the
callbacks have seen so far: it moves with the ``open``, ``reconnecting``
and ``close`` events, and to CLOSING with your ``close()``; the socket is
let go only after every callback of the event that ends its hold ran (a
callback bound after the ``close`` event still gets its replay first).
Once none of this holds (after its ``close`` event, once you unbind those
callbacks, or once it opens with only ``open`` callbacks bound), the
WebSocket is like a file again: freed when Python collects it, closed
with 1001 (going away) if still open, without further events. ``free()``
or a ``with`` block releases it at a known time in any state.
"""

from __future__ import annotations

import inspect
import threading
import weakref

from . import _callbacks, _ffi, _options, _repr, _unraisable, errors
from ._dispatcher import Dispatcher
from ._events import Event, kind_of
from ._native import NativeSocket, NativeState

# For the type checker only: annotations are not evaluated at run time
# (the __future__ import), so `import wsembed` does not load typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple, Union

    from ._ffi import ws_event
    from ._native import Data
    from ._options import Headers, Protocols

    # What bind() takes: a callable that takes the event, or nothing.
    Callback = Union[Callable[[Event], object], Callable[[], object]]

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

# The browser's rule: which callbacks keep a socket alive in each state.
# A callback keeps it while its event can still come.
_OPEN_EVENT = _ffi.WS_EVENT_OPEN
_MESSAGE_EVENT = _ffi.WS_EVENT_MESSAGE
_ERROR_EVENT = _ffi.WS_EVENT_ERROR
_CLOSE_EVENT = _ffi.WS_EVENT_CLOSE
_RECONNECTING_EVENT = _ffi.WS_EVENT_RECONNECTING
_KEEPING = {
    CONNECTING: frozenset((_OPEN_EVENT, _MESSAGE_EVENT, _ERROR_EVENT, _CLOSE_EVENT)),
    OPEN: frozenset((_MESSAGE_EVENT, _ERROR_EVENT, _CLOSE_EVENT)),
    CLOSING: frozenset((_ERROR_EVENT, _CLOSE_EVENT)),
    CLOSED: frozenset(),
}
# With reconnection a lost connection is a `reconnecting` event, not the
# end, so that callback counts while the next one can come: not once your
# close() made it CLOSING.
_KEEPING_RECONNECT = {
    state: kinds | {_RECONNECTING_EVENT} if state in (CONNECTING, OPEN) else kinds
    for state, kinds in _KEEPING.items()
}
# The events after which the rule may let a socket go; a watcher of each
# is bound with the socket's first callback and kept last of its kind.
_WATCHED = (_OPEN_EVENT, _CLOSE_EVENT)

# The sockets the rule keeps alive, by id() (a subclass may define __eq__
# and lose __hash__). Each entry is added and removed under its socket's
# lock; a dict's single operations need no lock of their own under the GIL.
_kept: Dict[int, WebSocket] = {}


def _takes_event(fn: Callback) -> bool:
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

    def __init__(self, fn: Callback, target: WebSocket) -> None:
        # Called as fn(event) or fn(), as `takes_event` says.
        self.fn: Callable[..., object] = fn
        self.takes_event = _takes_event(fn)
        # Weak: what keeps the WebSocket alive is the browser's rule
        # (``_kept``), not a reference cycle through its callbacks.
        self.target = weakref.ref(target)

    def __call__(self, c_event: ws_event) -> None:
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


class _Watcher:
    """The binding's own listener of an event that moves the state the
    keep-alive rule reads. Those of ``open`` and ``close`` are bound last
    of their kind, so the socket is let go only once every callback of the
    event has run: letting it go earlier could free it under the callbacks
    still to come (``ws_free`` from a callback stops the rest). That of
    ``reconnecting``, which can only keep it, is bound first."""

    __slots__ = ("target",)

    def __init__(self, target: WebSocket) -> None:
        self.target = weakref.ref(target)

    def __call__(self, c_event: ws_event) -> None:
        ws = self.target()
        if ws is None:
            return
        try:
            ws._saw(c_event.kind, self)
        except BaseException:
            _unraisable.report("Exception ignored in the wsembed keep-alive watcher", ws)


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

    Lifetime: as in a browser, a socket lives on without a reference of
    yours while a callback bound to it may still be called: CONNECTING
    (or reconnecting) with an ``open``, ``message``, ``error`` or ``close``
    callback, OPEN with a ``message``, ``error`` or ``close`` one, CLOSING
    with an ``error`` or ``close`` one; with ``reconnect=True`` a
    ``reconnecting`` callback also counts while CONNECTING or OPEN. The
    state is the one the callbacks have seen (a dispatcher's queue may hold
    events the socket has moved past: it lives to deliver them). After the
    ``close`` event, or once the callbacks that held it are unbound, it is
    freed when Python collects it, as a file is. ``free()`` releases it at
    once in any state.
    """

    CONNECTING = CONNECTING
    OPEN = OPEN
    CLOSING = CLOSING
    CLOSED = CLOSED

    def __init__(
        self,
        url: str,
        protocols: Protocols = None,
        headers: Headers = None,
        dispatcher: Optional[Dispatcher] = None,
        **options: Any,
    ) -> None:
        self._native = NativeSocket(url, protocols, headers, dispatcher=dispatcher, **options)
        self._close_timeout = _options.close_timeout(options)
        # (kind, fn, key) for each bound callback, for unbind; the lock
        # makes "bind once" hold when threads (or callbacks) bind at once.
        self._bound: List[Tuple[int, Callback, int]] = []
        self._bound_lock = threading.Lock()
        # For the keep-alive rule, under the same lock: the state as the
        # callbacks have seen it (moved by the watchers' events and by
        # close()); (key, watcher) of each watcher, by event kind; and
        # whether the close watcher bound last has had its call.
        self._seen_state = CONNECTING
        self._watchers: Dict[int, Tuple[int, _Watcher]] = {}
        self._close_seen = False
        if options.get("reconnect"):
            self._keeping = _KEEPING_RECONNECT
            # Bound before any callback, so that those of a `reconnecting`
            # event already see CONNECTING: one that unbinds its `message`
            # callback then leaves the socket to the `open` ones.
            self._native.bind(_RECONNECTING_EVENT, _Watcher(self))
        else:
            self._keeping = _KEEPING

    # ----- events -------------------------------------------------------

    def bind(self, evt: str, fn: Callback) -> None:
        """Calls ``fn(event)`` (or ``fn()``) on each ``evt``: ``'open'``,
        ``'message'``, ``'error'``, ``'close'``, ``'reconnecting'`` or
        ``'bufferedamountlow'``. Several callbacks may be bound to one
        event; they run in the order bound. Binding the same callback twice
        to an event binds it once.

        ``'bufferedamountlow'`` fires each time ``bufferedAmount`` falls
        from above ``bufferedAmountLowThreshold`` to at or below it, with
        ``evt.bufferedAmount`` (as WebRTC's ``RTCDataChannel``): a producer
        sends until ``QueueFullError`` and resumes there instead of polling
        ``bufferedAmount``. It is an edge, so a callback bound late gets no
        replay, and it fires once per fall, not while the amount stays low.
        The library compares on every write only while such a callback is
        bound, so bind it when you produce, not by habit. It does not keep
        the socket alive by itself: a producer holds the socket anyway."""
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
            for watched in _WATCHED:
                if watched == kind or watched not in self._watchers:
                    self._watch_last(watched)
                elif watched == _CLOSE_EVENT and self._seen_state == CLOSED:
                    # The new callback may still be owed a replay (the
                    # events raced the binds): the watcher's own replay
                    # comes after it, last of the catch-up.
                    self._watch_last(watched)
            self._keep_if_listened()

    def unbind(self, evt: str, fn: Optional[Callback] = None) -> None:
        """Removes ``fn`` from ``evt`` (every callback of ``evt`` when
        ``fn`` is omitted). Removing one that is not bound does nothing."""
        kind = kind_of(evt)
        with self._bound_lock:
            removed = [e for e in self._bound if e[0] == kind and (fn is None or e[1] == fn)]
            self._bound = [e for e in self._bound if e not in removed]
            self._keep_if_listened()
        for _, _, key in removed:
            self._native.unbind(key)

    # ----- sending and closing --------------------------------------------

    def send(self, data: Data) -> None:
        """Sends ``data``: a ``str`` as a text message; ``bytes``,
        ``bytearray`` or ``memoryview`` as a binary one. The data is copied
        and queued; this never blocks. Raises ``InvalidStateError`` unless
        the socket is OPEN, ``QueueFullError`` when ``bufferedAmount`` would
        pass ``max_send_queue``, ``ValueError`` for a message over
        ``max_message_size``."""
        self._native.send(data)

    # What bufferedAmountLowThreshold was last set to: the library cannot
    # be asked. On the class, so that a socket never set reads the
    # library's default without per-socket state.
    _low_threshold = 0

    @property
    def bufferedAmountLowThreshold(self) -> int:
        """Bytes: a ``bufferedamountlow`` event fires each time
        ``bufferedAmount`` falls from above this to at or below it. 0 (the
        default) means once the queue is empty; a producer that wants to
        refill before the network idles sets it higher, e.g. to
        ``max_send_queue`` minus the size of its next message, which then
        fits when the event comes. Reads what was last set; a new value
        counts from the next fall (one already past is not reported, so
        compare with ``bufferedAmount`` after setting it). ``TypeError``
        or ``ValueError`` for anything but a ``size_t`` int,
        ``InvalidStateError`` once freed."""
        return self._low_threshold

    @bufferedAmountLowThreshold.setter
    def bufferedAmountLowThreshold(self, value: int) -> None:
        value = _options.size(value, "bufferedAmountLowThreshold")
        self._native.set_low_threshold(value)
        self._low_threshold = value

    def ping(self, data: Data = b"") -> None:
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

    def close(self, code: Optional[int] = None, reason: Optional[str] = None) -> None:
        """Closes the connection: the closing handshake when OPEN (the
        ``close`` event follows), an abort when CONNECTING (``close`` event,
        code 1006). ``code`` is 1000 or 3000-4999, ``reason`` at most 123
        UTF-8 bytes (``ValueError`` otherwise). Closing twice does nothing."""
        self._native.close(code, reason)
        with self._bound_lock:
            if self._seen_state in (CONNECTING, OPEN):
                self._seen_state = CLOSING
            # From a callback, letting go now could free the socket before
            # the other callbacks of the event being delivered ran; its
            # close event, which soon follows, lets it go instead.
            if not self._in_callback():
                self._keep_if_listened()

    def reconnect(self) -> None:
        """Drops the connection (closing it with 1000 when open) and
        connects again at once, as attempt 1 with no delay. Only with
        ``reconnect=True``; ``InvalidStateError`` otherwise, and once
        ``close()`` was called."""
        self._native.reconnect()

    def set_header(self, name: str, value: Optional[str]) -> None:
        """Sets (``value`` None: removes) a header of the next opening
        handshakes, replacing the values given to ``headers=`` under that
        name: for a fresh token in a ``reconnecting`` callback."""
        self._native.set_header(name, value)

    def free(self) -> None:
        """Releases the native socket now instead of when the WebSocket is
        collected. A socket still open is closed with 1001 (going away),
        and no callback runs after ``free`` returns. The binding no longer
        keeps it alive, whatever is bound. Idempotent."""
        self._native.free()
        with self._bound_lock:
            self._keep_if_listened()

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
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
        self.free()

    # ----- the keep-alive rule -------------------------------------------

    def _in_callback(self) -> bool:
        """On the thread that runs this socket's callbacks, inside one."""
        dispatcher = self._native.dispatcher
        if dispatcher is None:
            return _callbacks.on_io_thread()
        return dispatcher._inside()

    def _watch_last(self, kind: int) -> None:
        """(Re)binds the watcher of ``kind`` after every callback bound so
        far. Under ``_bound_lock``. Unbound first: were both bound for a
        moment, the old one could let the socket go before the callback
        just bound ran. A watcher bound after its event happened gets it
        replayed, so a move it missed is not lost."""
        old = self._watchers.pop(kind, None)
        if old is not None:
            self._native.unbind(old[0])
        if kind == _CLOSE_EVENT:
            self._close_seen = False
        watcher = _Watcher(self)
        try:
            self._watchers[kind] = (self._native.bind(kind, watcher), watcher)
        except errors.InvalidStateError:
            # Freed by another thread meanwhile: nothing left to watch.
            pass

    def _saw(self, kind: int, watcher: _Watcher) -> None:
        """``watcher`` saw an event of ``kind`` (or its replay)."""
        with self._bound_lock:
            state = self._seen_state
            if kind == _RECONNECTING_EVENT:
                # Before the event's callbacks: it may keep the socket, never
                # let it go (a close() from a callback may have left that
                # for later; not this early).
                if state == OPEN:
                    self._seen_state = CONNECTING
                    self._keep_if_listened()
                return
            if kind == _CLOSE_EVENT:
                # Final: an open replayed after it changes nothing.
                self._seen_state = CLOSED
                # Only the watcher bound last counts: one replaced since
                # says nothing of the callbacks bound after it.
                if self._watchers.get(kind, (None, None))[1] is watcher:
                    self._close_seen = True
            elif kind == _OPEN_EVENT and state == CONNECTING:
                self._seen_state = OPEN
            self._keep_if_listened()

    def _keep_if_listened(self) -> None:
        """Holds the socket in ``_kept`` while the rule says so, else lets
        it go. Under ``_bound_lock``: the caller holds the socket, so
        letting it go here never frees it under the lock."""
        if self._seen_state == CLOSED:
            # No event is to come, but replays may be: to the callbacks
            # bound after the close, which its watcher's call follows.
            keep = not self._close_seen and bool(self._bound)
        else:
            keeping = self._keeping[self._seen_state]
            keep = any(kind in keeping for kind, _, _ in self._bound)
        if keep and self._native.alive:
            _kept[id(self)] = self
        else:
            _kept.pop(id(self), None)

    def __repr__(self) -> str:
        return _repr.describe(self, type(self).__name__)


def websocket(
    url: str, protocols: Protocols = None, headers: Headers = None, **options: Any
) -> WebSocket:
    """Opens a WebSocket to ``url``; the same as ``WebSocket(url, ...)``,
    under the name of Brython's ``browser.websocket.websocket``."""
    return WebSocket(url, protocols, headers, **options)
