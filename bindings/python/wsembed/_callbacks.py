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

import ctypes
import itertools
import threading
import weakref

from . import _unraisable
from ._ffi import ws_callback, ws_userdata_free

_table = {}
# Keys start at 1: a NULL userdata would read back as None.
_keys = itertools.count(1)
_stopped = False
_io_thread = None


def register(socket):
    """A new key whose events go to ``socket._deliver(key, event)``.
    Register before binding: C may call back before ``ws_bind_ex`` returns."""
    key = next(_keys)
    _table[key] = weakref.ref(socket)
    return key


def stop():
    """From now on events are dropped before any handler runs: for
    interpreter exit, while the IO thread is being shut down."""
    global _stopped
    _stopped = True


def stopped():
    return _stopped


def on_io_thread():
    """True on the IO thread, where waiting for an event would deadlock:
    no event is delivered while a callback runs."""
    return _io_thread is not None and _io_thread == threading.get_ident()


def live_keys():
    """How many bindings are alive (for tests of leaks)."""
    return len(_table)


def _keep_thread_state():
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


@ws_callback
def on_event(handle, event, key):
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


def _deliver(key, event):
    """Hands an event to the socket bound under `key`, if it is alive.
    Holding the socket while its handler runs means it cannot be collected
    meanwhile: a finalizer's ws_free never waits for Python code, only for a
    trampoline that finds the reference dead."""
    ref = _table.get(key)
    socket = ref() if ref is not None else None
    if socket is not None:
        socket._deliver(key, event.contents)


@ws_callback
def on_dispatched(handle, event, key):
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


@ws_userdata_free
def on_free(key):
    try:
        _table.pop(key, None)
    except BaseException:
        _unraisable.report("Exception ignored in the wsembed userdata finalizer", on_free)
