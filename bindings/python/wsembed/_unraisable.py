"""Reporting an exception that has nowhere to go: one raised by a callback
on the IO thread. It goes to ``sys.unraisablehook``, as an exception in a
``__del__`` does, so tests and applications can catch it there, and the IO
thread goes on serving the other sockets.
"""

from __future__ import annotations

import ctypes
import sys
import threading

# For the type checker only: annotations are not evaluated at run time
# (the __future__ import), so `import wsembed` does not load typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from sys import UnraisableHookArgs
    from typing import Callable, List, Optional

_args_type: Optional[Callable[..., UnraisableHookArgs]] = None
_args_type_lock = threading.Lock()


class _Probe(Exception):
    pass


def _raise_probe() -> None:
    raise _Probe


def _unraisable_args_type() -> Callable[..., UnraisableHookArgs]:
    """The type ``sys.unraisablehook`` expects (``UnraisableHookArgs``).

    CPython does not export it, and its default hook refuses any other
    type, so we catch one instance: ctypes reports an exception raised in a
    ctypes callback through the hook. Other reports made meanwhile are
    passed on to the hook in place.
    """
    global _args_type
    with _args_type_lock:
        if _args_type is None:
            found: List[Callable[..., UnraisableHookArgs]] = []
            previous = sys.unraisablehook

            def capture(args: UnraisableHookArgs) -> None:
                if args.exc_type is _Probe:
                    found.append(type(args))
                else:
                    previous(args)

            sys.unraisablehook = capture
            try:
                ctypes.CFUNCTYPE(None)(_raise_probe)()
            finally:
                sys.unraisablehook = previous
            _args_type = found[0]
        return _args_type


def report(message: str, obj: object) -> None:
    """Sends the exception being handled to ``sys.unraisablehook``, as
    ``"<message>: <obj!r>"``. Call it from an ``except`` block; it never
    raises."""
    exc_type, exc_value, exc_traceback = sys.exc_info()
    try:
        args = _unraisable_args_type()((exc_type, exc_value, exc_traceback, message, obj))
        sys.unraisablehook(args)
    except BaseException:
        # A broken hook must not take the IO thread down; there is no
        # better place left to report to.
        pass
    finally:
        del exc_value, exc_traceback
