"""Finding and loading the native library, libwsembed.

The library ships inside the package (a wheel holds it; ``pip install`` from
source builds it with cargo and copies it next to this file).
``WSEMBED_LIBRARY=/path/libwsembed.so`` overrides it, for a library built by
hand or a debug build. A failure says how to fix it, as wasmtime-py and
libclang's cindex do.
"""

from __future__ import annotations

import ctypes
import glob
import importlib.machinery
import os

# For the type checker only: annotations are not evaluated at run time
# (the __future__ import), so `import wsembed` does not load typing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Tuple

ENV_VAR = "WSEMBED_LIBRARY"

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

_HOW_TO_FIX = (
    "Install a wheel, which holds the library (`pip install wsembed-*.whl`, "
    "made by bindings/python/build-wheel.sh), or install the package from a "
    "clone of the wsembed repository with `pip install ./bindings/python` (it "
    "builds the library with cargo, so it needs a Rust toolchain), or build "
    "the library with `cargo build --release` and set "
    "{var}=/path/to/target/release/libwsembed.so."
).format(var=ENV_VAR)


def _packaged_candidates() -> List[str]:
    # setuptools-rust names the library as it would an extension module,
    # e.g. libwsembed.cpython-313-x86_64-linux-gnu.so or libwsembed.abi3.so;
    # a library copied in by hand keeps cargo's name.
    names = ["libwsembed" + suffix for suffix in importlib.machinery.EXTENSION_SUFFIXES]
    names += ["libwsembed.so", "libwsembed.dylib", "wsembed.dll"]
    paths = [os.path.join(_PACKAGE_DIR, name) for name in names]
    # A wheel is tagged py3-none (one for every Python 3), so the library
    # may carry the suffix of the Python that built it, not this one's.
    paths += sorted(glob.glob(os.path.join(_PACKAGE_DIR, "libwsembed.*")))
    return paths


def find() -> str:
    """The path of the library to load: the override, else the packaged one.

    Raises ImportError, saying how to fix it, when there is none.
    """
    override = os.environ.get(ENV_VAR)
    if override:
        return override
    for path in _packaged_candidates():
        if os.path.isfile(path):
            return path
    raise ImportError(
        "wsembed: the native library libwsembed is not in {dir}. {fix}".format(
            dir=_PACKAGE_DIR, fix=_HOW_TO_FIX
        )
    )


def load() -> Tuple[ctypes.CDLL, str]:
    """Loads the library; returns ``(ctypes.CDLL, path)``.

    CDLL, not PyDLL: ctypes releases the GIL during every call, so a call
    that waits (``ws_free`` waiting for a running callback, ``ws_shutdown``)
    lets the IO thread take the GIL and finish that callback.
    """
    path = find()
    try:
        return ctypes.CDLL(path), path
    except OSError as e:
        source = "set by {var}".format(var=ENV_VAR) if os.environ.get(ENV_VAR) else "packaged"
        raise ImportError(
            "wsembed: cannot load the native library {path} ({source}): {err}. {fix}".format(
                path=path, source=source, err=e, fix=_HOW_TO_FIX
            )
        ) from e
