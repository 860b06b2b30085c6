"""wsembed's log, as records of the ``logging`` logger named "wsembed".

The library's levels map to logging's: ERROR to ``logging.ERROR`` (a
socket's failure), WARN to ``logging.WARNING`` (what was recovered from),
INFO to ``logging.INFO`` (one line per connection step), DEBUG to
``logging.DEBUG``. A record about a socket says "socket <handle>: " before
the library's text and has the handle in its ``wsembed_handle`` attribute
(0 for a line about no socket), for filters and formatters
(``%(wsembed_handle)s``).

The native hook (``ws_set_log_callback``) is installed only while the
logger is enabled for some level, at the most detailed one it would take,
so lines nobody wants are never even formatted. Logging has no change
notification: the levels are read again each time a socket is created
(``sync``). So configure logging before opening sockets; a change made
later counts from the next socket on.

The logger has a ``NullHandler``, as a library's should: without a
handler configured anywhere its records are dropped rather than printed
to stderr by ``logging.lastResort``. Its level stays unset, so it follows
the root logger's (WARNING unless configured), and with it the hook.

The callback comes from wsembed's IO thread, or from the thread of the
wsembed call a line is about, concurrently with other callbacks; logging
is thread-safe. At interpreter exit the hook is removed (``atexit``)
before the interpreter starts to finalize: ``ws_set_log_callback``
returns only once no call of it is running on another thread, and none
starts after.
"""

from __future__ import annotations

import atexit
import logging
import threading

from . import _unraisable
from ._ffi import LOG_FN, WS_LOG_DEBUG, WS_LOG_ERROR, WS_LOG_INFO, WS_LOG_WARN, WS_OK, lib

# For the type checker only: annotations are not evaluated at run time
# (the __future__ import), so `import wsembed` does not load typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

logger = logging.getLogger("wsembed")
logger.addHandler(logging.NullHandler())

# Most detailed first: the search in `_wanted` stops at the first match.
_LEVELS = (
    (WS_LOG_DEBUG, logging.DEBUG),
    (WS_LOG_INFO, logging.INFO),
    (WS_LOG_WARN, logging.WARNING),
    (WS_LOG_ERROR, logging.ERROR),
)
_TO_LOGGING = dict(_LEVELS)

# The WS_LOG_* level of the hook in place, 0 when none is.
installed_level = 0
# The CFUNCTYPE object C holds while the hook is in place (C would call a
# freed trampoline if it were collected).
_installed_fn: Optional[object] = None
# NULL, as ctypes spells it for a function pointer argument.
_NO_FN = LOG_FN()
_lock = threading.Lock()
_closed = False
_inside = threading.local()


def _wanted() -> int:
    for ws_level, logging_level in _LEVELS:
        if logger.isEnabledFor(logging_level):
            return ws_level
    return 0


def sync() -> None:
    """Installs, changes or removes the hook to match the logger's level.
    Cheap when nothing changed: four level lookups (cached by logging) and
    a comparison."""
    if _wanted() == installed_level:
        return
    if getattr(_inside, "active", False):
        # From a log handler (one that opens a socket): another thread may
        # hold the lock while it waits for this very call to end.
        return
    with _lock:
        if not _closed:
            _install(_wanted())


def _install(level: int) -> None:
    global installed_level, _installed_fn
    if level == installed_level:
        return
    if level:
        status = lib.ws_set_log_callback(level, _on_log, None)
        if status != WS_OK:
            # Not expected: the level is one of the four.
            return
        _installed_fn = _on_log
    else:
        lib.ws_set_log_callback(0, _NO_FN, None)
        # After the call: it returns once C no longer uses the function.
        _installed_fn = None
    installed_level = level


# ctypes' function types call through `*args: Any`: mypy calls them untyped.
@LOG_FN  # type: ignore[misc]
def _on_log(level: int, handle: int, message: bytes, userdata: Optional[int]) -> None:
    # Unlike the event trampoline, no thread state is kept here
    # (_callbacks._keep_thread_state): lines also come from threads other
    # than the IO thread (name resolution, say), whose states would then
    # live as long as the interpreter. A foreign thread's line costs a
    # thread state made for it; the IO thread's is kept by its first event.
    try:
        _inside.active = True
        try:
            text = message.decode("utf-8", "replace")
            logging_level = _TO_LOGGING.get(level, logging.DEBUG)
            extra = {"wsembed_handle": handle}
            if handle:
                logger.log(logging_level, "socket %d: %s", handle, text, extra=extra)
            else:
                logger.log(logging_level, "%s", text, extra=extra)
        finally:
            _inside.active = False
    except BaseException:
        # Handlers report their own errors (Handler.handleError); this is
        # a bug of the binding, and it must still not unwind into C.
        _unraisable.report("Exception ignored in the wsembed log callback", _on_log)


def _at_exit() -> None:
    global _closed
    with _lock:
        _closed = True
        _install(0)


# Registered after logging's own exit hook (imported above), so it runs
# before it (atexit is last in, first out): no record reaches a handler
# that logging.shutdown has closed.
atexit.register(_at_exit)
