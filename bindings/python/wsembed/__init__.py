"""wsembed: a WebSocket client (RFC 6455) written in Rust, for Python
through ctypes, shaped like Brython's ``browser.websocket``.

Three ways to use it, all on the same native library:

- callbacks, as in the browser: ``from wsembed import websocket``, then
  ``ws = websocket.WebSocket(url)`` and ``ws.bind('message', fn)``;
- blocking calls, for scripts: ``ws = wsembed.connect(url)``, then
  ``ws.send(...)``, ``ws.recv(timeout=...)``, ``for message in ws``;
- asyncio: ``async with wsembed.aio.connect(url) as ws``, then
  ``await ws.recv()``, ``async for message in ws``.

Callbacks run on wsembed's IO thread, or, for a socket opened with a
:class:`Dispatcher` (``WebSocket(url, dispatcher=d)``), inside
``d.dispatch()`` on your thread; ``wsembed.aio`` gives each event loop one.

The native library ships inside the package; ``WSEMBED_LIBRARY`` names
another one to load instead.
"""

from __future__ import annotations

from . import errors, websocket
from ._dispatcher import Dispatcher
from ._ffi import lib as _lib, lib_path as library_path
from ._stats import Stats
from .blocking import connect
from .errors import (
    ConnectionClosed,
    InvalidArgumentError,
    InvalidStateError,
    InvalidStatus,
    QueueFullError,
    UnsupportedError,
    WebSocketError,
)
from .websocket import CLOSED, CLOSING, CONNECTING, OPEN, Event, WebSocket

# For the type checker only: annotations are not evaluated at run time
# (the __future__ import), so `import wsembed` does not load typing, nor
# asyncio (`wsembed.aio` is imported on first use, see __getattr__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

    from . import aio

__version__: str
try:
    # Written by the build from the crate's Cargo.toml (setup.py); absent
    # from the source tree, where mypy runs.
    from ._version import __version__  # type: ignore[import-not-found,no-redef,unused-ignore]
except ImportError:
    # The source tree, not installed: the library's version, which cargo
    # also takes from Cargo.toml.
    __version__ = _lib.ws_version().decode("ascii")

__all__ = [
    "websocket",
    "WebSocket",
    "Event",
    "Dispatcher",
    "Stats",
    "connect",
    "aio",
    "errors",
    "WebSocketError",
    "UnsupportedError",
    "InvalidArgumentError",
    "InvalidStateError",
    "QueueFullError",
    "ConnectionClosed",
    "InvalidStatus",
    "CONNECTING",
    "OPEN",
    "CLOSING",
    "CLOSED",
    "version",
    "has_tls",
    "has_deflate",
    "library_path",
]


def version() -> str:
    """The native library's version, "MAJOR.MINOR.PATCH"."""
    text: str = _lib.ws_version().decode("ascii")
    return text


def has_tls() -> bool:
    """Whether this build speaks ``wss://`` (else ``wss://`` URLs and the TLS
    options raise ``NotImplementedError``)."""
    return bool(_lib.ws_has_tls())


def has_deflate() -> bool:
    """Whether this build compresses (permessage-deflate); else
    ``deflate=True`` and the other ``deflate_*`` options raise
    ``NotImplementedError``."""
    return bool(_lib.ws_has_deflate())


def __getattr__(name: str) -> ModuleType:
    # `wsembed.aio` without importing asyncio for those who never use it.
    if name == "aio":
        import importlib

        return importlib.import_module(".aio", __name__)
    raise AttributeError("module {!r} has no attribute {!r}".format(__name__, name))
