"""``repr()`` of the objects that hold a socket in ``self._native``."""

from __future__ import annotations

# For the type checker only: annotations are not evaluated at run time
# (the __future__ import), so `import wsembed` does not load typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

    from ._native import NativeState

_STATE_NAMES = ("CONNECTING", "OPEN", "CLOSING", "CLOSED")


def describe(obj: NativeState, name: str) -> str:
    """``<name url='...' readyState=OPEN>``.

    Never raises: repr() runs in tracebacks, debuggers and logging, also
    on an object whose ``__init__`` failed before it had a socket, or at
    interpreter exit once the library is gone; there an unknown part
    reads ``?`` rather than hiding the error being reported.
    """
    try:
        url = repr(obj.url)
    except Exception:
        url = "?"
    state: Union[int, str]
    try:
        state = obj.readyState
        state = _STATE_NAMES[state] if 0 <= state < len(_STATE_NAMES) else str(state)
    except Exception:
        state = "?"
    return "<{} url={} readyState={}>".format(name, url, state)
