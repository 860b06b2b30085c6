"""The installed package: it loads the library it ships with no
environment variable, WSEMBED_LIBRARY overrides it, and a load failure
says how to fix it."""

import os
import re
import subprocess
import sys

import pytest

import wsembed

PRINT_PATH = "import wsembed; print(wsembed.library_path)"


def run_python(code, **env):
    environ = {k: v for k, v in os.environ.items() if k != "WSEMBED_LIBRARY"}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
        cwd=os.path.dirname(os.path.abspath(__file__)),
        timeout=60,
    )


@pytest.mark.skipif(
    "WSEMBED_LIBRARY" in os.environ, reason="testing a library named by WSEMBED_LIBRARY"
)
def test_import_uses_the_packaged_library():
    result = run_python(PRINT_PATH)
    assert result.returncode == 0, result.stderr.decode()
    path = result.stdout.decode().strip()
    package_dir = os.path.dirname(os.path.abspath(wsembed.__file__))
    assert os.path.dirname(path) == package_dir
    assert os.path.basename(path).startswith("libwsembed")


def test_environment_variable_overrides_the_library():
    result = run_python(PRINT_PATH, WSEMBED_LIBRARY=wsembed.library_path)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == wsembed.library_path


def test_load_failure_says_how_to_fix_it():
    result = run_python("import wsembed", WSEMBED_LIBRARY="/nonexistent/libwsembed.so")
    assert result.returncode != 0
    err = result.stderr.decode()
    assert "ImportError" in err
    assert "/nonexistent/libwsembed.so" in err
    assert "pip install ./bindings/python" in err and "WSEMBED_LIBRARY" in err


def crate_version():
    """The version in the repository's Cargo.toml ([package] version)."""
    here = os.path.dirname(os.path.abspath(__file__))
    cargo_toml = os.path.join(here, "..", "..", "..", "Cargo.toml")
    with open(cargo_toml) as f:
        package = re.search(r"^\[package\]$(.*?)^\[", f.read(), re.M | re.S).group(1)
    return re.search(r'^version\s*=\s*"([^"]+)"', package, re.M).group(1)


def test_versions():
    assert re.match(r"^\d+\.\d+\.\d+$", wsembed.version())
    assert isinstance(wsembed.has_tls(), bool)
    assert isinstance(wsembed.has_deflate(), bool)
    # One version: the crate's, which the package (setup.py), its
    # metadata and the library (cargo) all take from Cargo.toml.
    from importlib import metadata

    assert wsembed.__version__ == crate_version()
    assert wsembed.version() == crate_version()
    try:
        installed = metadata.version("wsembed")
    except metadata.PackageNotFoundError:  # the source tree, not installed
        installed = crate_version()
    assert installed == crate_version()


def test_public_names():
    from wsembed import websocket

    assert websocket.websocket and websocket.WebSocket and websocket.Event
    for name in wsembed.__all__:
        assert getattr(wsembed, name) is not None
