"""One native socket handle and its lifetime: the layer every public API
(``websocket``, ``connect``, ``aio``) is built on.

Ownership: a :class:`NativeSocket` owns its ``ws_handle`` and frees it
exactly once, when ``free()`` is called, when the object is collected, or
at interpreter exit (``weakref.finalize``, the wasmtime-py ``_managed``
pattern). ``ws_free`` guarantees that no callback of the socket runs after
it returns, and runs the ``free_userdata`` finalizer of each binding, which
releases its key in the callback table. Called from inside a callback
(a finalizer run by the garbage collector on the IO thread, say) it does
not wait for itself.

At exit, an ``atexit`` hook first stops callbacks, then ``ws_shutdown``
closes every socket and joins the IO thread, so no C thread calls into an
interpreter that is going away. The sockets left are then freed, each
before its dispatcher (finalizers run newest first, and a socket keeps its
dispatcher alive), so the dispatchers can be freed too. Those the callback
API keeps alive by the browser's rule (``websocket._kept``) are among
them: they are still referenced at exit, so their finalizers are alive.
"""

from __future__ import annotations

import atexit
import ctypes
import weakref

from . import _callbacks, _ffi, _log, _stats, errors
from ._dispatcher import Dispatcher
from ._ffi import lib
from ._options import cstring, native_options

# For the type checker only: annotations are not evaluated at run time
# (the __future__ import), so `import wsembed` does not load typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, NoReturn, Optional, Tuple, Union

    from ._ffi import ws_event
    from ._options import Headers, Protocols
    from ._stats import Stats

    # What send() takes: str as a text message, a bytes-like as binary.
    Data = Union[str, bytes, bytearray, memoryview]
    # A C buffer argument: NULL (to size the result), or a char array.
    _CharBuffer = Optional["ctypes.Array[ctypes.c_char]"]


def _free_handle(handle: int, dispatcher: Optional[Dispatcher] = None) -> None:
    lib.ws_free(handle)
    if dispatcher is not None:
        # After ws_free: the socket no longer holds the dispatcher in C.
        dispatcher._release()


def _read_string(getter: Callable[[int, _CharBuffer, int], int], handle: int) -> str:
    """A string getter with snprintf semantics: size it, then copy it."""
    size = getter(handle, None, 0)
    buf = ctypes.create_string_buffer(size + 1)
    getter(handle, buf, size + 1)
    return buf.value.decode("utf-8", "replace")


def _read_sized(get: Callable[[_CharBuffer, int], int]) -> bytes:
    """The bytes of a getter that returns their full length, as snprintf:
    ``get(buf, cap)``. Sized again if they grew in between."""
    size = get(None, 0)
    while True:
        if size == 0:
            return b""
        buf = ctypes.create_string_buffer(size + 1)
        full = get(buf, size + 1)
        if full <= size:
            return buf.raw[:full]
        size = full


def _open_failed() -> errors.WebSocketError:
    """The exception for ``ws_open_ex`` returning 0, from the status code
    and message the library recorded for this thread (``ws_last_status``,
    ``ws_last_error``): a bad URL, ``wss://`` in a build without TLS, an IO
    thread that could not start... Call it right after ``ws_open_ex``,
    before any other wsembed call on this thread replaces them.
    """
    status = lib.ws_last_status()
    message = errors.last_error()
    if status == _ffi.WS_OK:
        # Not expected: a failed ws_open_ex always records its status.
        status = _ffi.WS_ERR_INTERNAL
    return errors.from_status(status, message)


def _as_buffer(
    data: Union[bytes, bytearray, memoryview]
) -> Tuple[Union[bytes, ctypes.Array[ctypes.c_char]], int]:
    """``(pointer-compatible object, length)`` for a bytes-like object,
    without a copy where ctypes can point into it."""
    if isinstance(data, bytes):
        return data, len(data)
    view = memoryview(data)
    if view.readonly or not view.c_contiguous:
        copy = view.tobytes()
        return copy, len(copy)
    view = view.cast("B")
    return (ctypes.c_char * view.nbytes).from_buffer(view), view.nbytes


class ResponseHeaders:
    """The headers of the server's answer to the opening handshake (the
    101 of an open socket, or a refusal's), as a read-only mapping from
    name to value:

    - names match in any letter case; a header sent several times reads as
      its values joined with ", " (``"a=1, b=2"``);
    - ``headers["Retry-After"]`` (``KeyError`` when absent),
      ``headers.get(name, default=None)``, ``name in headers``;
    - values are ``str``, decoded as ISO-8859-1 as ``http.client`` does
      (``value.encode("latin-1")`` gives the bytes back).

    It is not iterable and has no ``len()``: the library looks a header up
    by name and cannot list them, so ask for the names you need. Each
    lookup reads the socket, which this object keeps alive (as
    ``evt.target`` does); once the socket is freed (``free()``, the end of
    a ``with`` block, ``close()`` of the blocking and asyncio clients)
    lookups raise ``InvalidStateError``.
    """

    __slots__ = ("_native",)

    def __init__(self, native: NativeSocket) -> None:
        self._native = native

    def __getitem__(self, name: str) -> str:
        value = self._native.response_header(name)
        if value is None:
            raise KeyError(name)
        return value

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        value = self._native.response_header(name)
        return default if value is None else value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._native.response_header(name) is not None

    def __iter__(self) -> NoReturn:
        # Without this, Python would "iterate" by calling __getitem__(0),
        # __getitem__(1)... and fail on a confusing TypeError.
        raise TypeError(
            "the handshake's headers cannot be listed (the library looks them up "
            "by name): use headers[name], headers.get(name) or name in headers"
        )

    def __repr__(self) -> str:
        return "<ResponseHeaders of {!r}, HTTP {}>".format(
            self._native.url, self._native.response_status
        )


class NativeState:
    """The browser's read-only state attributes, for every class that holds
    its socket in ``self._native``."""

    _native: NativeSocket

    @property
    def readyState(self) -> int:
        """``CONNECTING`` (0), ``OPEN`` (1), ``CLOSING`` (2) or ``CLOSED`` (3)."""
        return self._native.ready_state

    @property
    def bufferedAmount(self) -> int:
        """Bytes accepted by ``send`` and not yet written to the network."""
        return self._native.buffered_amount

    @property
    def protocol(self) -> str:
        """The subprotocol the server selected ("" until OPEN, or if none)."""
        return self._native.protocol

    @property
    def extensions(self) -> str:
        """The extensions the server agreed to, as its
        ``Sec-WebSocket-Extensions`` answer, e.g. ``'permessage-deflate;
        client_max_window_bits=15'`` ("" until OPEN, or if none)."""
        return self._native.extensions

    @property
    def url(self) -> str:
        """The URL as parsed, e.g. ``'ws://example.org/'``."""
        return self._native.url

    @property
    def response_status(self) -> int:
        """The HTTP status of the server's answer to the opening handshake:
        101 once open, the refusal's status (401, 403, 429, 503...), 0
        while no answer has come (or if none did: DNS, connect or TLS
        failures)."""
        return self._native.response_status

    @property
    def response_headers(self) -> ResponseHeaders:
        """The headers of that answer: a read-only, case-insensitive
        :class:`ResponseHeaders`, looked up by name (not iterable)."""
        return self._native.response_headers

    @property
    def response_body(self) -> bytes:
        """The body of a refusal (``bytes``, at most its first 64 KiB);
        ``b""`` for a 101 or before an answer."""
        return self._native.response_body

    @property
    def stats(self) -> Stats:
        """What the socket has moved so far, over all its connections: a
        :class:`~wsembed.Stats` snapshot, read again at each access. Still
        readable once the socket is closed or freed (then as it was when
        freed)."""
        return self._native.stats


class NativeSocket:
    """Owns one ``ws_handle``. Not public: see ``wsembed.websocket``.

    Handlers bound here are kept by this object, keyed by their binding
    key, and called with the C event, which is valid only during the call:
    on the IO thread, or inside ``dispatcher.dispatch()`` for a socket
    opened with a :class:`Dispatcher` (which it keeps alive, and releases
    when freed).
    """

    __slots__ = (
        "_handle",
        "_handlers",
        "_finalizer",
        "_url",
        "_protocol",
        "_extensions",
        "_response",
        "_stats",
        "_dispatcher",
        "_trampoline",
        "__weakref__",
    )

    def __init__(
        self,
        url: str,
        protocols: Protocols = None,
        headers: Headers = None,
        dispatcher: Optional[Dispatcher] = None,
        **settings: Any,
    ) -> None:
        url_bytes = cstring(url, "url")
        if dispatcher is not None and not isinstance(dispatcher, Dispatcher):
            raise TypeError(
                "dispatcher must be a wsembed.Dispatcher, not {}".format(type(dispatcher).__name__)
            )
        if _callbacks.stopped():
            raise RuntimeError("wsembed is shut down: the interpreter is exiting")
        # Logging has no change notification: its levels are read here, so
        # this socket's first lines already follow them.
        _log.sync()
        if dispatcher is not None:
            dispatcher._attach()
        try:
            with native_options(
                protocols, headers, dispatcher=dispatcher.handle if dispatcher else 0, **settings
            ) as options:
                handle = lib.ws_open_ex(url_bytes, options)
                if not handle:
                    # Raised before the options are freed: ws_options_free is a
                    # wsembed call, after which the status need not survive.
                    raise _open_failed()
        except BaseException:
            if dispatcher is not None:
                dispatcher._release()
            raise
        self._handle: int = handle
        self._handlers: Dict[int, Tuple[int, Callable[[ws_event], None]]] = {}
        self._dispatcher = dispatcher
        self._trampoline = _callbacks.on_event if dispatcher is None else _callbacks.on_dispatched
        self._finalizer = weakref.finalize(self, _free_handle, handle, dispatcher)
        self._url = _read_string(lib.ws_url, handle)
        self._protocol: Optional[str] = None
        self._extensions: Optional[str] = None
        # (status, body) of the handshake's answer, kept once freed.
        self._response: Optional[Tuple[int, bytes]] = None
        # The last statistics, kept once freed.
        self._stats: Optional[Stats] = None

    @property
    def handle(self) -> int:
        return self._handle

    @property
    def dispatcher(self) -> Optional[Dispatcher]:
        """The :class:`Dispatcher` running its callbacks, or None (the IO
        thread)."""
        return self._dispatcher

    @property
    def alive(self) -> bool:
        """False once the handle is freed."""
        return self._finalizer.alive

    # ----- events -------------------------------------------------------

    def bind(self, kind: int, handler: Callable[[ws_event], None]) -> int:
        """Binds ``handler(event)`` to events of ``kind``; returns its key,
        for ``unbind``. An event that already happened is replayed to it."""
        key = _callbacks.register(self)
        self._handlers[key] = (kind, handler)
        status = lib.ws_bind_ex(self._handle, kind, self._trampoline, key, _callbacks.on_free)
        if status != _ffi.WS_OK:
            # The finalizer has already released the key.
            error = errors.from_status(status)
            del self._handlers[key]
            raise error
        return key

    def unbind(self, key: int) -> None:
        """Removes a binding. A call already running on another thread
        finishes; none starts after this returns."""
        entry = self._handlers.get(key)
        if entry is None:
            return
        if self.alive:
            lib.ws_unbind(self._handle, entry[0], self._trampoline, key)
        self._handlers.pop(key, None)

    def _deliver(self, key: int, event: ws_event) -> None:
        entry = self._handlers.get(key)
        if entry is not None:
            entry[1](event)

    # ----- sending and closing --------------------------------------------

    def send(self, data: Data) -> None:
        """Queues ``data``: ``str`` as a text message, a bytes-like object
        as a binary one. Never blocks on the network."""
        if isinstance(data, str):
            encoded = data.encode("utf-8")
            status = lib.ws_send_text(self._handle, encoded, len(encoded))
        elif isinstance(data, (bytes, bytearray, memoryview)):
            buffer, length = _as_buffer(data)
            status = lib.ws_send_binary(self._handle, buffer, length)
        else:
            raise TypeError(
                "send() takes str or a bytes-like object, not {}".format(type(data).__name__)
            )
        errors.check(status)

    def close(self, code: Optional[int] = None, reason: Optional[str] = None) -> None:
        """Starts the closing handshake (or aborts a connection attempt).
        A reason without a code closes with 1000, as the browser does."""
        if not self.alive:
            return
        if code is None and reason is None:
            errors.check(lib.ws_close(self._handle))
            return
        if code is None:
            code = 1000
        if isinstance(code, bool) or not isinstance(code, int):
            raise TypeError("close code must be an int, not {}".format(type(code).__name__))
        if not 0 <= code <= 0xFFFF:
            raise ValueError("close code {} is neither 1000 nor in 3000-4999".format(code))
        reason_bytes = None if reason is None else cstring(reason, "close reason")
        errors.check(lib.ws_close_ex(self._handle, code, reason_bytes))

    def ping(self, data: Data = b"") -> None:
        """Sends a ping with ``data`` (``str`` as UTF-8, or bytes-like; at
        most 125 bytes) as its payload. Its answer only shows in ``stats``."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                "ping() takes str or a bytes-like object, not {}".format(type(data).__name__)
            )
        buffer, length = _as_buffer(data)
        errors.check(lib.ws_ping(self._handle, buffer, length))

    def reconnect(self) -> None:
        errors.check(lib.ws_reconnect(self._handle))

    def set_header(self, name: str, value: Optional[str]) -> None:
        name_bytes = cstring(name, "header name")
        value_bytes = None if value is None else cstring(value, "header value")
        errors.check(lib.ws_set_header(self._handle, name_bytes, value_bytes))

    def free(self) -> None:
        """Releases the handle now (idempotent). A socket still open is
        closed with 1001 (going away) in the background, without further
        events; no callback runs after this returns (unless called from one
        of this socket's callbacks: then none after that one)."""
        if self._finalizer.alive:
            # Kept for `protocol`, `extensions`, `response_status` and
            # `response_body` after the handle is gone (the headers cannot
            # be listed, so they cannot be kept).
            self._protocol = _read_string(lib.ws_protocol, self._handle)
            self._extensions = _read_string(lib.ws_extensions, self._handle)
            # Where redirects led, if they did.
            self._url = _read_string(lib.ws_url, self._handle)
            self._response = (self.response_status, self.response_body)
            self._stats = _stats.read(self._handle)
            self._finalizer()

    # ----- state --------------------------------------------------------

    @property
    def ready_state(self) -> int:
        if not self.alive:
            return _ffi.WS_CLOSED
        state: int = lib.ws_ready_state(self._handle)
        # A handle freed by another thread since the check reads as closed.
        return state if state >= 0 else _ffi.WS_CLOSED

    @property
    def buffered_amount(self) -> int:
        return lib.ws_buffered_amount(self._handle) if self.alive else 0

    def set_low_threshold(self, size: int) -> None:
        """Sets the low-water mark of ``bufferedamountlow`` events. Raises
        ``InvalidStateError`` once freed."""
        errors.check(lib.ws_set_buffered_amount_low_threshold(self._handle, size))

    @property
    def protocol(self) -> str:
        if self._protocol is not None:
            return self._protocol
        return _read_string(lib.ws_protocol, self._handle)

    @property
    def extensions(self) -> str:
        if self._extensions is not None:
            return self._extensions
        return _read_string(lib.ws_extensions, self._handle)

    @property
    def url(self) -> str:
        # Read again while the handle lives: redirects may have moved it.
        if self._finalizer.alive:
            return _read_string(lib.ws_url, self._handle)
        return self._url

    @property
    def response_status(self) -> int:
        if self._response is not None:
            return self._response[0]
        status: int = lib.ws_response_status(self._handle)
        return status

    @property
    def response_body(self) -> bytes:
        if self._response is not None:
            return self._response[1]
        handle = self._handle
        return _read_sized(lambda buf, cap: lib.ws_response_body(handle, buf, cap))

    @property
    def stats(self) -> Stats:
        if self._stats is not None:
            return self._stats
        try:
            return _stats.read(self._handle)
        except errors.InvalidStateError:
            # Freed by another thread since the check: it kept them.
            if self._stats is not None:
                return self._stats
            raise

    @property
    def response_headers(self) -> ResponseHeaders:
        # A new view each time: one kept here would make a reference cycle,
        # and a socket in a cycle is freed only by the cyclic collector.
        return ResponseHeaders(self)

    def response_header(self, name: str) -> Optional[str]:
        """The value of header ``name`` of the handshake's answer, or None
        when it has none. Raises ``InvalidStateError`` once freed."""
        name_bytes = cstring(name, "header name")
        handle = self._handle

        def get(buf: _CharBuffer, cap: int) -> int:
            length: int = lib.ws_response_header(handle, name_bytes, buf, cap)
            # Read at once: it tells an absent header from an empty one.
            status = lib.ws_last_status()
            if status == _ffi.WS_ERR_INVALID_ARGUMENT:
                raise KeyError(name)
            if status == _ffi.WS_ERR_INVALID_HANDLE:
                raise errors.InvalidStateError(
                    status, "the socket is freed: its handshake answer is gone"
                )
            errors.check(status)
            return length

        try:
            return _read_sized(get).decode("latin-1")
        except KeyError:
            return None


def _at_exit() -> None:
    _callbacks.stop()
    lib.ws_shutdown()


# weakref.finalize frees what is still alive at exit from its own atexit
# hook. Creating one finalizer now makes sure that hook is registered
# before ours, so ours runs first (atexit is last in, first out): callbacks
# stop and the IO thread is joined before the remaining handles are freed.
weakref.finalize(_at_exit, lambda: None)
atexit.register(_at_exit)
