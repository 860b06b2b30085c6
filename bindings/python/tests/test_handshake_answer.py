"""The server's answer to the opening handshake, in the three styles: a
refusal's status, headers and body (the error event's ``status``, the
socket's ``response_*``, ``InvalidStatus`` from the blocking and asyncio
clients), and the headers of a 101."""

import asyncio
import gc
import socket
import threading
import time

import pytest

import wsembed
import wsembed.aio
from recorder import Recorder
from servers import DEADLINE, PythonServer, free_port, wait_until
from wsembed import _callbacks, errors, websocket

BODY_401 = b"Token expired.\nSign in again.\x00\xff"
ANSWERS = {
    # Repeated headers, an empty one, a byte that is not ASCII, and a
    # binary body sized by Content-Length.
    "/401": [
        b"HTTP/1.1 401 Unauthorized\r\n"
        b'WWW-Authenticate: Bearer realm="api"\r\n'
        b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
        b"X-Empty:\r\n"
        b"X-Latin: caf\xe9\r\n"
        b"Content-Length: " + str(len(BODY_401)).encode() + b"\r\n\r\n",
        BODY_401,
    ],
    # A chunked body, in two writes after the head.
    "/503": [
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n",
        b"6\r\nbusy, \r\n",
        b"9\r\ntry later\r\n0\r\n\r\n",
    ],
    # A body that never comes whole: the connect timeout ends the wait.
    "/429-stall": [
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 50\r\n\r\npart",
    ],
}


class RefusingServer:
    """Answers each request with the bytes ``ANSWERS`` has for its path
    (a short pause between the parts, as a slow server's), then waits for
    the client to hang up."""

    def __init__(self):
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            conn.settimeout(DEADLINE)
            request = b""
            try:
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    request += chunk
                path = request.split(b" ", 2)[1].decode()
                for part in ANSWERS[path]:
                    conn.sendall(part)
                    time.sleep(0.03)
                while conn.recv(4096):
                    pass
            except OSError:
                pass

    def url(self, path):
        return "ws://127.0.0.1:{}{}".format(self.port, path)

    def stop(self):
        self._listener.close()


def _extra_headers(connection, request, response):
    response.headers["X-Server"] = "test"
    response.headers["X-Server"] = "again"


@pytest.fixture(scope="module")
def refusing():
    server = RefusingServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def extra_headers_server():
    """Python websockets, adding X-Server twice to its 101."""
    server = PythonServer(process_response=_extra_headers)
    yield server
    server.stop()


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, DEADLINE))


def check_401(status, headers, body):
    assert status == 401
    assert headers["www-authenticate"] == 'Bearer realm="api"'
    assert headers["WWW-Authenticate"] == headers.get("Www-Authenticate")
    assert headers["Set-Cookie"] == "a=1, b=2"
    assert headers["x-empty"] == "" and "X-Empty" in headers
    assert headers["X-Latin"] == "café"
    assert "Retry-After" not in headers and 1 not in headers
    assert headers.get("Retry-After") is None
    assert headers.get("Retry-After", "none") == "none"
    with pytest.raises(KeyError):
        headers["Retry-After"]
    assert body == BODY_401


# ----- callbacks ------------------------------------------------------------


def test_a_refusal_in_the_error_callback(refusing):
    ws = websocket.WebSocket(refusing.url("/401"))
    read_in_callback = []

    def on_error(evt):
        # The answer is there when the error callback runs.
        read_in_callback.append(
            (evt.status, ws.response_status, ws.response_headers["WWW-Authenticate"], ws.response_body)
        )

    ws.bind("error", on_error)
    recorder = Recorder(ws)
    recorder.wait_closed()
    assert recorder.types() == ["error", "close"]
    error, close = recorder.events
    assert error.status == 401 and error.error_code == errors.WS_ERR_HANDSHAKE
    assert "401" in error.reason and "status=401" in repr(error)
    assert close.status == 0 and close.code == 1006
    assert read_in_callback == [(401, 401, 'Bearer realm="api"', BODY_401)]
    check_401(ws.response_status, ws.response_headers, ws.response_body)
    ws.free()
    # The status and body outlive the socket; the headers cannot.
    assert (ws.response_status, ws.response_body) == (401, BODY_401)
    with pytest.raises(wsembed.InvalidStateError):
        ws.response_headers["WWW-Authenticate"]


def test_a_chunked_503(refusing):
    ws = websocket.WebSocket(refusing.url("/503"))
    recorder = Recorder(ws)
    recorder.wait_closed()
    assert recorder.events[0].status == 503
    assert ws.response_headers["retry-after"] == "7"
    assert ws.response_body == b"busy, try later"
    ws.free()


def test_the_headers_are_looked_up_not_listed(refusing):
    ws = websocket.WebSocket(refusing.url("/401"))
    Recorder(ws).wait_closed()
    headers = ws.response_headers
    with pytest.raises(TypeError):
        iter(headers)
    with pytest.raises(TypeError):
        list(headers)
    with pytest.raises(TypeError):
        len(headers)
    with pytest.raises(TypeError):
        headers[b"Set-Cookie"]
    with pytest.raises(ValueError):
        headers["X\0"]
    assert "HTTP 401" in repr(headers)
    ws.free()


def test_no_answer_yet_and_none_at_all(hanging_server):
    # CONNECTING: no answer has come.
    ws = websocket.WebSocket(hanging_server.url())
    assert ws.response_status == 0 and ws.response_body == b""
    assert "Upgrade" not in ws.response_headers
    ws.free()
    # A refused TCP connection never gets an answer: no HTTP status.
    ws = websocket.WebSocket("ws://127.0.0.1:{}/".format(free_port()))
    recorder = Recorder(ws)
    recorder.wait_closed()
    assert recorder.events[0].error_code == errors.WS_ERR_CONNECT
    assert recorder.events[0].status == 0 and ws.response_status == 0
    assert ws.response_headers.get("Server") is None
    ws.free()


def test_the_101_headers_in_the_open_callback(extra_headers_server):
    ws = websocket.WebSocket(extra_headers_server.url())
    read_in_callback = []
    ws.bind("open", lambda: read_in_callback.append((ws.response_status, ws.response_headers["x-server"])))
    recorder = Recorder(ws)
    recorder.wait_type("open")
    assert read_in_callback == [(101, "test, again")]
    assert ws.response_headers["UPGRADE"].lower() == "websocket"
    assert ws.response_body == b""
    ws.close()
    recorder.wait_closed()
    ws.free()


# ----- blocking -------------------------------------------------------------


def test_connect_raises_invalid_status(refusing):
    with pytest.raises(wsembed.InvalidStatus) as info:
        wsembed.connect(refusing.url("/401"))
    e = info.value
    # Still what the blocking client raised before: a ConnectionClosed.
    assert isinstance(e, wsembed.ConnectionClosed) and isinstance(e, ConnectionError)
    assert e.error_code == errors.WS_ERR_HANDSHAKE and e.status_name == "WS_ERR_HANDSHAKE"
    assert e.code == 1006 and not e.was_clean
    assert "401" in str(e)
    check_401(e.status, e.headers, e.body)

    with pytest.raises(wsembed.InvalidStatus) as info:
        wsembed.connect(refusing.url("/503"))
    assert info.value.status == 503
    assert info.value.headers["Retry-After"] == "7"
    assert info.value.body == b"busy, try later"


def test_a_refusal_whose_body_stalls_is_still_invalid_status(refusing):
    with pytest.raises(wsembed.InvalidStatus) as info:
        wsembed.connect(refusing.url("/429-stall"), connect_timeout=0.5)
    e = info.value
    assert (e.status, e.error_code, e.body) == (429, errors.WS_ERR_TIMEOUT, b"part")
    assert e.headers["retry-after"] == "1"


def test_the_exception_keeps_the_socket_until_collected(refusing):
    gc.collect()
    baseline = _callbacks.live_keys()
    try:
        wsembed.connect(refusing.url("/401"))
    except wsembed.InvalidStatus as e:
        assert e.headers["Set-Cookie"] == "a=1, b=2"
        assert _callbacks.live_keys() > baseline
    gc.collect()
    # Freed with the exception: its bindings are gone.
    assert wait_until(lambda: _callbacks.live_keys() <= baseline)


def test_other_failures_stay_connection_closed():
    with pytest.raises(wsembed.ConnectionClosed) as info:
        wsembed.connect("ws://127.0.0.1:{}/".format(free_port()))
    assert not isinstance(info.value, wsembed.InvalidStatus)
    assert info.value.status == errors.WS_ERR_CONNECT


def test_connect_reads_the_101(extra_headers_server):
    with wsembed.connect(extra_headers_server.url()) as ws:
        assert ws.response_status == 101
        assert ws.response_headers["X-Server"] == "test, again"
        assert "sec-websocket-accept" in ws.response_headers
        assert ws.response_body == b""
        ws.send("still a WebSocket")
        assert ws.recv(timeout=DEADLINE) == "still a WebSocket"
    assert ws.response_status == 101
    with pytest.raises(wsembed.InvalidStateError):
        ws.response_headers.get("X-Server")


# ----- asyncio --------------------------------------------------------------


def test_aio_connect_raises_invalid_status(refusing):
    async def main():
        loop = asyncio.get_running_loop()
        with pytest.raises(wsembed.InvalidStatus) as info:
            await wsembed.aio.connect(refusing.url("/401"))
        e = info.value
        check_401(e.status, e.headers, e.body)
        assert e.error_code == errors.WS_ERR_HANDSHAKE
        with pytest.raises(wsembed.InvalidStatus) as info:
            async with wsembed.aio.connect(refusing.url("/503")):
                pass
        assert (info.value.status, info.value.headers["retry-after"]) == (503, "7")
        assert info.value.body == b"busy, try later"
        # The exceptions keep their sockets, and so the loop's dispatcher;
        # once they are gone, so is it.
        assert loop in wsembed.aio._loop_dispatchers
        del e, info
        gc.collect()
        return loop in wsembed.aio._loop_dispatchers

    assert run(main()) is False


def test_aio_connect_reads_the_101(extra_headers_server):
    async def main():
        async with wsembed.aio.connect(extra_headers_server.url()) as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            return ws.response_status, ws.response_headers["x-server"], ws.response_body

    assert run(main()) == (101, "test, again", b"")


# ----- redirects -------------------------------------------------------------


def test_redirects_are_refused_unless_allowed(refusing, python_server):
    target = python_server.url("/")
    ANSWERS["/302"] = [
        "HTTP/1.1 302 Found\r\nLocation: {}\r\nContent-Length: 0\r\n\r\n".format(
            target
        ).encode()
    ]
    with pytest.raises(wsembed.InvalidStatus) as info:
        wsembed.connect(refusing.url("/302"))
    assert info.value.status == 302
    assert info.value.headers["Location"] == target
    with wsembed.connect(refusing.url("/302"), max_redirects=1) as ws:
        assert ws.url == target
        ws.send("followed")
        assert ws.recv() == "followed"
    with pytest.raises(ValueError):
        wsembed.connect(refusing.url("/302"), max_redirects=-1)
