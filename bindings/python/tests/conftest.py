"""Fixtures: the servers of servers.py, started once per session."""

import pytest

from servers import HangingServer, PythonServer, RustServer


@pytest.fixture(scope="session")
def python_server():
    server = PythonServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def rust_server():
    server = RustServer()
    yield server
    server.stop()


@pytest.fixture(params=["python", "rust"])
def echo_url(request):
    """An echo server's URL: Python websockets', then the project's own."""
    return request.getfixturevalue(request.param + "_server").url("/")


@pytest.fixture(scope="session")
def hanging_server():
    server = HangingServer()
    yield server
    server.stop()
