"""The one C callback that wsembed calls for every event, and the table its
userdata points into (the wasmtime-py ``_slab`` pattern).

Each binding gets a fresh integer key, passed to C as the ``void *``
userdata. The table maps the key to a *weak* reference to the socket that
bound it: the socket keeps its handlers, so a socket nobody refers to can
be collected (and freed) even while bound, and a handler that refers back to
its socket makes a cycle the garbage collector can see. The C finalizer of
the binding (``ws_bind_ex``'s ``free_userdata``) removes the key.

The CFUNCTYPE objects below live as long as the module, so C never calls
a freed trampoline. ``on_event`` serves sockets whose callbacks run on the
IO thread, ``on_dispatched`` those opened with a dispatcher, whose
callbacks run inside ``ws_dispatch`` on the thread that calls it.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
import weakref

from . import _unraisable
from ._ffi import ws_callback, ws_userdata_free

# For the type checker only: annotations are not evaluated at run time
# (the __future__ import), so `import wsembed` does not load typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Optional

    from ._ffi import ws_event
    from ._native import NativeSocket

_table: Dict[int, weakref.ref[NativeSocket]] = {}
# Keys start at 1: a NULL userdata would read back as None.
_keys = itertools.count(1)
_stopped = False
_io_thread: Optional[int] = None


def register(socket: NativeSocket) -> int:
    """A new key whose events go to ``socket._deliver(key, event)``.
    Register before binding: C may call back before ``ws_bind_ex`` returns."""
    key = next(_keys)
    _table[key] = weakref.ref(socket)
    return key


def stop() -> None:
    """From now on events are dropped before any handler runs: for
    interpreter exit, while the IO thread is being shut down."""
    global _stopped
    _stopped = True


def stopped() -> bool:
    return _stopped


def on_io_thread() -> bool:
    """True on the IO thread, where waiting for an event would deadlock:
    no event is delivered while a callback runs."""
    return _io_thread is not None and _io_thread == threading.get_ident()


def live_keys() -> int:
    """How many bindings are alive (for tests of leaks)."""
    return len(_table)


def _keep_thread_state() -> None:
    """Makes the calling thread's Python thread state outlive this callback.

    ctypes wraps each call from a thread Python did not start in
    PyGILState_Ensure/Release, which creates a thread state and destroys it
    again every time: with its frame stack (an mmap and a munmap) that was
    about a third of a small-message round trip. One more Ensure that is
    never released keeps the state for the thread's life, as cffi and
    pybind11 do for their callbacks; the interpreter deletes it at exit.
    The IO thread ends only in ``ws_shutdown``, which the package runs at
    exit; a new IO thread gets its own state the same way.
    """
    ctypes.pythonapi.PyGILState_Ensure()


# ctypes' function types call through `*args: Any`: mypy calls them untyped.
@ws_callback  # type: ignore[misc]
def on_event(handle: int, event: ctypes._Pointer[ws_event], key: int) -> None:
    global _io_thread
    try:
        ident = threading.get_ident()
        if ident != _io_thread:
            _keep_thread_state()
            _io_thread = ident
        if not _stopped:
            _deliver(key, event)
    except BaseException:
        # Handlers report their own exceptions; this is a bug of the
        # binding, and it must still not unwind into C.
        _unraisable.report("Exception ignored in the wsembed event trampoline", on_event)


def _deliver(key: int, event: ctypes._Pointer[ws_event]) -> None:
    """Hands an event to the socket bound under `key`, if it is alive.
    Holding the socket while its handler runs means it cannot be collected
    meanwhile: a finalizer's ws_free never waits for Python code, only for a
    trampoline that finds the reference dead."""
    ref = _table.get(key)
    socket = ref() if ref is not None else None
    if socket is not None:
        socket._deliver(key, event.contents)


@ws_callback  # type: ignore[misc]
def on_dispatched(handle: int, event: ctypes._Pointer[ws_event], key: int) -> None:
    """The trampoline of sockets opened with a dispatcher: it runs inside
    ``ws_dispatch``, on a Python thread that already has its thread state
    and released the GIL only for the call, so it needs none of the IO
    thread's bookkeeping (and must not take that thread for the IO
    thread)."""
    try:
        if not _stopped:
            _deliver(key, event)
    except BaseException:
        _unraisable.report("Exception ignored in the wsembed event trampoline", on_dispatched)


@ws_userdata_free  # type: ignore[misc]
def on_free(key: int) -> None:
    try:
        _table.pop(key, None)
    except BaseException:
        _unraisable.report("Exception ignored in the wsembed userdata finalizer", on_free)
