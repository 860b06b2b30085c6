"""Automatic reconnection from Python: the callback API's ``'reconnecting'``
event and ``reconnect()``/``set_header()``, the blocking client's messages
across connections, and ``async for ws in wsembed.aio.connect(url,
reconnect=True)``, against a Python ``websockets`` server that restarts
(closes with 1012) its first connections."""

import asyncio
import time

import pytest

import wsembed
import wsembed.aio
from recorder import Recorder
from servers import PythonServer, free_port
from wsembed import errors, websocket

FAST = dict(reconnect=True, reconnect_delay=0.02, reconnect_max_delay=0.2, reconnect_jitter=0)


def dispatch_until(d, predicate, timeout=30.0):
    """Runs the dispatcher's callbacks on this thread until ``predicate()``
    holds. With a dispatcher nothing is delivered before the test's
    callbacks are bound: an open that came and went before the binds would
    otherwise not be replayed (a late listener gets the current state)."""
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        d.dispatch(20)


@pytest.fixture
def server():
    s = PythonServer()
    yield s
    s.stop()


def test_reconnecting_event_then_open_again_on_the_same_socket(server):
    d = websocket.Dispatcher()
    ws = websocket.WebSocket(server.url("/restart/2"), dispatcher=d, **FAST)
    rec = Recorder(ws)
    ws.bind("reconnecting", rec)
    dispatch_until(d, lambda: len(rec.of("open")) >= 3 and len(rec.of("message")) >= 3)
    reconnecting = rec.of("reconnecting")
    assert [e.attempt for e in reconnecting] == [1, 2]
    assert [e.delay for e in reconnecting] == [0.02, 0.04]
    assert all((e.code, e.reason, e.wasClean) == (1012, "restarting", True) for e in reconnecting)
    assert all(e.error_code == 0 and e.target is ws for e in reconnecting)
    assert [e.attempt for e in rec.of("open")] == [0, 1, 2]
    assert rec.data()[:3] == ["connection 1", "connection 2", "connection 3"]
    assert ws.readyState == websocket.OPEN
    ws.send("still here")
    dispatch_until(d, lambda: "still here" in rec.data())
    assert repr(reconnecting[0]).startswith("<Event reconnecting attempt=1 delay=0.020 code=1012")
    ws.close()
    dispatch_until(d, lambda: rec.of("close"))
    assert rec.types()[-1] == "close" and len(rec.of("close")) == 1
    ws.free()
    d.close()


def test_closing_in_reconnecting_stops_it_and_reconnect_needs_the_option(server):
    d = websocket.Dispatcher()
    ws = websocket.WebSocket(server.url("/restart/5"), dispatcher=d, **FAST)
    rec = Recorder(ws)
    ws.bind("reconnecting", lambda evt: evt.target.close())
    dispatch_until(d, lambda: rec.of("close"))
    assert rec.types() == ["open", "message", "close"]
    assert rec.of("close")[0].code == 1006
    with pytest.raises(errors.InvalidStateError):
        ws.reconnect()
    ws.free()
    d.close()
    plain = websocket.WebSocket(server.url())
    with pytest.raises(errors.InvalidStateError, match="reconnection is off"):
        plain.reconnect()
    plain.free()


def test_set_header_reaches_the_handshake_that_reconnect_makes(server):
    ws = websocket.WebSocket(server.url("/headers"), headers={"X-Token": "one"}, **FAST)
    rec = Recorder(ws)
    rec.wait_type("message")
    assert '"x-token": "one"' in rec.data()[0]
    ws.set_header("x-token", "two")
    ws.reconnect()
    rec.wait_type("message", 2)
    assert '"x-token": "two"' in rec.data()[1]
    assert "one" not in rec.data()[1]
    with pytest.raises(ValueError):
        ws.set_header("Sec-WebSocket-Key", "x")
    ws.free()


def test_options_are_checked():
    with pytest.raises(ValueError, match="jitter"):
        websocket.WebSocket("ws://127.0.0.1:9/", reconnect=True, reconnect_jitter=2)
    with pytest.raises(ValueError):
        websocket.WebSocket("ws://127.0.0.1:9/", reconnect=True, reconnect_backoff=0.5)
    with pytest.raises(TypeError):
        websocket.WebSocket("ws://127.0.0.1:9/", reconnect=True, reconnect_max_attempts=1.5)


def test_giving_up_is_an_error_then_a_close():
    url = "ws://127.0.0.1:{}/".format(free_port())
    ws = websocket.WebSocket(url, reconnect_max_attempts=3, **FAST)
    rec = Recorder(ws)
    ws.bind("reconnecting", rec)
    rec.wait_closed()
    assert rec.types() == ["reconnecting", "reconnecting", "error", "close"]
    error = rec.of("error")[0]
    assert error.error_code == errors.WS_ERR_CONNECT
    assert error.reason.startswith("gave up after 3 attempts")
    ws.free()


def test_the_blocking_client_raises_where_a_connection_ends_and_goes_on(server):
    with wsembed.connect(server.url("/restart/1"), **FAST) as ws:
        assert ws.recv() == "connection 1"
        with pytest.raises(errors.ConnectionClosed) as lost:
            ws.recv()
        assert (lost.value.code, lost.value.was_clean) == (1012, True)
        assert ws.recv() == "connection 2"
        ws.send("echo")
        assert ws.recv() == "echo"


def test_async_for_yields_the_connection_after_each_open(server):
    async def main():
        seen = []
        async for ws in wsembed.aio.connect(server.url("/restart/2"), **FAST):
            async for message in ws:
                seen.append(message)
                if message == "connection 3":
                    await ws.send("done")
                    assert await ws.recv() == "done"
                    await ws.close()
        return seen

    seen = asyncio.run(asyncio.wait_for(main(), 30))
    assert seen == ["connection 1", "connection 2", "connection 3"]


def test_async_for_raises_when_the_library_gives_up():
    url = "ws://127.0.0.1:{}/".format(free_port())

    async def main():
        async for _ in wsembed.aio.connect(url, reconnect_max_attempts=2, **FAST):
            raise AssertionError("never opens")

    with pytest.raises(errors.ConnectionClosed) as failed:
        asyncio.run(asyncio.wait_for(main(), 30))
    assert "gave up after 2 attempts" in failed.value.error
