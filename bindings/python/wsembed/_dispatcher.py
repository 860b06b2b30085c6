"""Dispatchers: callbacks on a thread of your choosing.

A socket opened with ``WebSocket(url, dispatcher=d)`` still does all its
networking on wsembed's IO thread; only its callbacks move: they run inside
``d.dispatch()``, on the thread that calls it, and nowhere else. The
dispatcher's descriptor (``d.fileno()``) is readable while events wait, so
an event loop can watch it and call ``d.dispatch()`` when it is readable::

    d = Dispatcher()
    ws = websocket.WebSocket(url, dispatcher=d)
    ws.bind("message", on_message)            # runs inside d.dispatch()
    root.tk.createfilehandler(d, tkinter.READABLE, lambda *_: d.dispatch())

``wsembed.aio`` does this for you: each event loop gets one dispatcher.
"""

from __future__ import annotations

import ctypes
import math
import threading
import time
import weakref

from . import _ffi, errors
from ._ffi import lib

# For the type checker only: annotations are not evaluated at run time
# (the __future__ import), so `import wsembed` does not load typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Optional

__all__ = ["Dispatcher"]

_INT_MAX = 2 ** (8 * ctypes.sizeof(ctypes.c_int) - 1) - 1
_SIZE_MAX = 2 ** (8 * ctypes.sizeof(ctypes.c_size_t)) - 1
# How long the exit of a `with` block dispatches at a time while it waits
# for the close event: a slice, so it sees the deadline.
_WAIT_SLICE_MS = 100


def _free_dispatcher(handle: int) -> None:
    # Refused (WS_ERR_INVALID_STATE) only while a socket opened with it is
    # alive, and every socket keeps its Dispatcher alive: not at collection.
    lib.ws_dispatcher_free(handle)


def _closed_error() -> errors.InvalidStateError:
    return errors.InvalidStateError(_ffi.WS_ERR_INVALID_HANDLE, "the dispatcher is closed")


def _int(value: int, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("{} must be an int, not {}".format(what, type(value).__name__))
    if not low <= value <= high:
        raise ValueError("{} must be between {} and {}, got {}".format(what, low, high, value))
    return value


class Dispatcher:
    """A queue of the events of the sockets opened with it, run by
    :meth:`dispatch` on the thread that calls it.

    ``Dispatcher()`` creates one (``ws_dispatcher_new``); pass it to
    ``websocket.WebSocket(url, dispatcher=d)``. :meth:`close` (or the end
    of a ``with`` block) frees it, once every socket opened with it is
    freed; a dispatcher that nothing refers to is freed when collected.
    """

    def __init__(self) -> None:
        handle = lib.ws_dispatcher_new()
        if not handle:
            status = lib.ws_last_status() or _ffi.WS_ERR_INTERNAL
            raise errors.from_status(status, errors.last_error())
        fd = lib.ws_dispatcher_fd(handle)
        if fd < 0:
            error = errors.from_status(fd)
            lib.ws_dispatcher_free(handle)
            raise error
        self._handle: int = handle
        self._fd: int = fd
        # Sockets opened with it and not yet freed, counted in Python to
        # learn when the last one goes (``_idle``). Reentrant: a socket
        # collected while the lock is held releases it from a finalizer.
        self._lock = threading.RLock()
        self._sockets = 0
        self._idle: Optional[Callable[[], None]] = None
        # Per thread: inside dispatch() of this dispatcher.
        self._local = threading.local()
        # The thread that last dispatched (at first, the creator's).
        self._home = threading.get_ident()
        self._finalizer = weakref.finalize(self, _free_dispatcher, handle)

    @property
    def handle(self) -> int:
        """The ``ws_dispatcher`` handle (an int), for other C code."""
        return self._handle

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has freed the dispatcher."""
        return not self._finalizer.alive

    def fileno(self) -> int:
        """A descriptor that is readable while events wait to be
        dispatched (level-triggered). Watch it for reading only; it belongs
        to wsembed: never read, write or close it. ``select``,
        ``selectors``, tkinter's ``createfilehandler`` and Qt's
        ``QSocketNotifier`` take it (or this object)."""
        if self.closed:
            raise ValueError("fileno() of a closed dispatcher")
        return self._fd

    def dispatch(self, timeout_ms: int = 0, max_events: int = 0) -> int:
        """Runs the callbacks of the events waiting, on this thread, and
        returns how many events ran.

        ``timeout_ms`` bounds the wait when none is waiting: 0 never waits,
        -1 waits until an event comes or :meth:`wakeup` is called (Python
        signal handlers wait too: prefer a bound). ``max_events`` caps the
        events run (0: every event waiting when the call starts).

        Raises ``InvalidStateError`` from one of this dispatcher's
        callbacks, while another thread is dispatching it, or once closed.
        """
        _int(timeout_ms, "timeout_ms", -1, _INT_MAX)
        _int(max_events, "max_events", 0, _SIZE_MAX)
        local = self._local
        if getattr(local, "inside", False):
            raise errors.InvalidStateError(
                _ffi.WS_ERR_INVALID_STATE,
                "dispatch() from one of this dispatcher's own callbacks",
            )
        if self.closed:
            raise _closed_error()
        self._home = threading.get_ident()
        local.inside = True
        try:
            ran: int = lib.ws_dispatch(self._handle, timeout_ms, max_events)
        finally:
            local.inside = False
        if ran < 0:
            raise errors.from_status(ran)
        return ran

    def wakeup(self) -> None:
        """Makes a :meth:`dispatch` that is waiting return now, or the next
        one return without waiting. Any thread, also from a callback."""
        if self.closed:
            raise _closed_error()
        errors.check(lib.ws_dispatcher_wakeup(self._handle))

    def close(self) -> None:
        """Frees the dispatcher and closes its descriptor (stop watching it
        first). Events still waiting are dropped. Raises
        ``InvalidStateError`` while a socket opened with it is not freed
        (``free()`` them first) or from one of its callbacks. Idempotent."""
        if self.closed:
            return
        if getattr(self._local, "inside", False):
            raise errors.InvalidStateError(
                _ffi.WS_ERR_INVALID_STATE, "close() from one of this dispatcher's own callbacks"
            )
        with self._lock:
            if self.closed:
                return
            status = lib.ws_dispatcher_free(self._handle)
            if status != _ffi.WS_ERR_INVALID_HANDLE:
                errors.check(status)
            self._finalizer.detach()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "<wsembed.Dispatcher closed>"
        return "<wsembed.Dispatcher fd={} sockets={}>".format(self._fd, self._sockets)

    # ----- for the sockets opened with it ---------------------------------

    def _attach(self) -> None:
        """A socket is being opened with this dispatcher."""
        with self._lock:
            if self.closed:
                raise _closed_error()
            self._sockets += 1

    def _release(self) -> None:
        """A socket opened with it is freed (or failed to open); runs
        ``_idle()`` when it was the last. Any thread."""
        with self._lock:
            self._sockets -= 1
            idle = self._sockets == 0
        if idle and self._idle is not None:
            self._idle()

    def _inside(self) -> bool:
        """True inside one of its callbacks on this thread."""
        inside: bool = getattr(self._local, "inside", False)
        return inside

    def _wait(self, done: threading.Event, timeout: float) -> bool:
        """Waits at most ``timeout`` seconds for the ``threading.Event``
        ``done``, set by one of its callbacks. On the thread that dispatches
        it, it dispatches meanwhile (nobody else would); from another
        thread it waits for that one. Returns ``done.is_set()``."""
        deadline = time.monotonic() + timeout
        while not done.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if self._home != threading.get_ident() or self.closed:
                done.wait(remaining)
                continue
            slice_ms = min(_WAIT_SLICE_MS, max(1, math.ceil(remaining * 1000)))
            try:
                self.dispatch(slice_ms)
            except errors.InvalidStateError:
                # Another thread is dispatching it right now: it delivers.
                done.wait(min(remaining, _WAIT_SLICE_MS / 1000))
        return done.is_set()
