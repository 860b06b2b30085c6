"""Statistics, pings and the newer connection options, in the three
styles: ``stats`` counting an echo exchange exactly, ``ping()`` measuring
a round trip, ``happy_eyeballs_delay`` and an ``https://`` proxy."""

import asyncio
import base64
import dataclasses
import hashlib
import socket
import threading

import pytest

import wsembed
import wsembed.aio
from recorder import Recorder
from servers import DEADLINE, wait_until
from wsembed import _ffi, errors, websocket

TEXT = "héllo ✓"
BINARY = b"\x00\x01\x02\xff"
# Payload bytes as the application sent them: UTF-8 for text.
PAYLOAD = len(TEXT.encode("utf-8")) + len(BINARY)


class DeafServer:
    """Completes the opening handshake, then reads and ignores everything:
    its pings go unanswered."""

    def __init__(self):
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            conn.settimeout(DEADLINE)
            try:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    request += chunk
                key = next(
                    line.split(b":", 1)[1].strip()
                    for line in request.split(b"\r\n")
                    if line.lower().startswith(b"sec-websocket-key:")
                )
                accept = base64.b64encode(
                    hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
                )
                conn.sendall(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
                )
                while conn.recv(4096):
                    pass
            except OSError:
                pass

    def url(self):
        return "ws://127.0.0.1:{}/".format(self.port)

    def stop(self):
        self._listener.close()


@pytest.fixture(scope="module")
def deaf_server():
    server = DeafServer()
    yield server
    server.stop()


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, DEADLINE))


def sent_counted(ws):
    """Whether both messages count as sent. The library publishes the
    received counts before delivering each message, the others after each
    step of its work: an echo can come in, and be read here, before the
    step that sent its message published that."""
    return ws.stats.messages_sent == 2


async def until(predicate):
    while not predicate():
        await asyncio.sleep(0.001)


def check_exchange(stats):
    """What sending TEXT and BINARY and receiving their echoes counts."""
    assert (stats.messages_sent, stats.messages_received) == (2, 2)
    assert (stats.payload_bytes_sent, stats.payload_bytes_received) == (PAYLOAD, PAYLOAD)
    # The handshake and frame headers come on top of the payloads.
    assert stats.bytes_sent > PAYLOAD and stats.bytes_received > PAYLOAD
    # Not the frame counts: the library publishes them after each step of
    # its work, and the message counts before each message is delivered.
    assert stats.connections == 1
    assert stats.handshake_time is not None and stats.handshake_time >= 0
    assert stats.handshake_time == stats.handshake_ms / 1000


# ----- the Stats type ---------------------------------------------------


def test_stats_has_every_field_of_the_c_struct():
    c_fields = [name for name, _ in _ffi.ws_stats._fields_]
    assert c_fields[:2] == ["size", "reserved"]
    assert [f.name for f in dataclasses.fields(wsembed.Stats)] == c_fields[2:]
    assert "Stats" in wsembed.__all__


def test_stats_is_frozen_and_converts_its_times():
    fields = {f.name: 0 for f in dataclasses.fields(wsembed.Stats)}
    before = wsembed.Stats(**fields)
    assert before.last_rtt is None and before.handshake_time is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.pings_answered = 1
    after = dataclasses.replace(
        before, last_rtt_us=1500, pings_answered=1, handshake_ms=0, connections=1
    )
    assert after.last_rtt == 0.0015
    # A handshake under a millisecond is 0 in C, and still happened.
    assert after.handshake_time == 0.0


# ----- stats --------------------------------------------------------------


def test_blocking_stats_count_an_exchange(echo_url):
    with wsembed.connect(echo_url) as ws:
        ws.send(TEXT)
        ws.send(BINARY)
        assert ws.recv(timeout=DEADLINE) == TEXT
        assert ws.recv(timeout=DEADLINE) == BINARY
        assert wait_until(lambda: sent_counted(ws))
        check_exchange(ws.stats)
        assert ws.stats.last_rtt is None
    # Kept once the connection is closed and freed, the close frames in
    # (the library publishes everything before the close event).
    closed = ws.stats
    check_exchange(closed)
    assert closed.frames_sent >= 3 and closed.frames_received >= 3
    assert ws.stats == closed


def test_callback_stats_count_an_exchange_and_outlive_free(echo_url):
    ws = websocket.WebSocket(echo_url)
    recorder = Recorder(ws)
    recorder.wait_type("open")
    ws.send(TEXT)
    ws.send(BINARY)
    recorder.wait_type("message", 2)
    assert wait_until(lambda: sent_counted(ws))
    check_exchange(ws.stats)
    ws.close()
    recorder.wait_closed()
    ws.free()
    check_exchange(ws.stats)


def test_aio_stats_count_an_exchange(echo_url):
    async def main():
        async with wsembed.aio.connect(echo_url) as ws:
            await ws.send(TEXT)
            await ws.send(BINARY)
            assert await ws.recv() == TEXT
            assert await ws.recv() == BINARY
            await until(lambda: sent_counted(ws))
            check_exchange(ws.stats)
        return ws.stats

    check_exchange(run(main()))


def test_stats_before_open(hanging_server):
    ws = websocket.WebSocket(hanging_server.url())
    stats = ws.stats
    assert (stats.connections, stats.messages_sent, stats.pings_sent) == (0, 0, 0)
    assert stats.handshake_time is None and stats.last_rtt is None
    ws.free()


# ----- ping ---------------------------------------------------------------


def test_blocking_ping_returns_the_round_trip(echo_url):
    with wsembed.connect(echo_url) as ws:
        rtt = ws.ping()
        assert isinstance(rtt, float) and 0 < rtt < DEADLINE
        assert ws.stats.last_rtt == rtt
        assert (ws.stats.pings_sent, ws.stats.pings_answered) == (1, 1)
        # The largest payload, as str and as bytes-like.
        assert ws.ping("p" * 125) > 0
        assert ws.ping(bytearray(125)) > 0
        stats = ws.stats
        assert (stats.pings_sent, stats.pings_answered, stats.pongs_received) == (3, 3, 3)
        # Pings are not messages.
        assert (stats.messages_sent, stats.messages_received) == (0, 0)


def test_callback_ping_sets_the_round_trip(echo_url):
    ws = websocket.WebSocket(echo_url)
    recorder = Recorder(ws)
    recorder.wait_type("open")
    assert ws.ping(b"x") is None
    assert wait_until(lambda: ws.stats.pings_answered == 1)
    assert ws.stats.last_rtt > 0
    ws.ping("y")
    assert wait_until(lambda: ws.stats.pings_answered == 2)
    assert ws.stats.pings_sent == 2
    ws.free()


def test_aio_ping_returns_the_round_trip(echo_url):
    async def main():
        async with wsembed.aio.connect(echo_url) as ws:
            first = await ws.ping()
            second = await ws.ping(b"payload")
            return first, second, ws.stats

    first, second, stats = run(main())
    assert isinstance(first, float) and first > 0 and second > 0
    assert stats.last_rtt == second
    assert (stats.pings_sent, stats.pings_answered) == (2, 2)


def test_ping_over_125_bytes_raises_value_error(python_server):
    ws = websocket.WebSocket(python_server.url())
    Recorder(ws).wait_type("open")
    with pytest.raises(ValueError) as info:
        ws.ping(bytes(126))
    assert info.value.status == errors.WS_ERR_INVALID_ARGUMENT
    with pytest.raises(TypeError):
        ws.ping(125)
    ws.free()

    with wsembed.connect(python_server.url()) as conn:
        with pytest.raises(wsembed.InvalidArgumentError):
            conn.ping("é" * 63)  # 126 bytes in UTF-8
        assert conn.stats.pings_sent == 0

    async def main():
        async with wsembed.aio.connect(python_server.url()) as conn:
            with pytest.raises(ValueError):
                await conn.ping(bytes(200))

    run(main())


def test_ping_outside_open_raises_invalid_state(hanging_server, python_server):
    ws = websocket.WebSocket(hanging_server.url())
    with pytest.raises(wsembed.InvalidStateError) as info:
        ws.ping()
    assert info.value.status == errors.WS_ERR_INVALID_STATE
    ws.free()
    with pytest.raises(wsembed.InvalidStateError):
        ws.ping()

    conn = wsembed.connect(python_server.url())
    conn.close()
    with pytest.raises(wsembed.InvalidStateError):
        conn.ping()


def test_unanswered_ping_times_out(deaf_server):
    with wsembed.connect(deaf_server.url(), close_timeout=0.2) as ws:
        with pytest.raises(TimeoutError):
            ws.ping(timeout=0.2)
        assert (ws.stats.pings_sent, ws.stats.pings_answered) == (1, 0)
        assert ws.stats.last_rtt is None

    async def main():
        async with wsembed.aio.connect(deaf_server.url(), close_timeout=0.2) as ws:
            with pytest.raises(TimeoutError):
                await ws.ping(timeout=0.2)

    run(main())


def test_ping_raises_when_the_connection_closes_first(deaf_server):
    with wsembed.connect(deaf_server.url(), close_timeout=0.2) as ws:
        # Closed from another thread while ping() waits for its answer.
        timer = threading.Timer(0.1, ws.close)
        timer.start()
        with pytest.raises(wsembed.ConnectionClosed):
            ws.ping(timeout=DEADLINE)
        timer.join()


# ----- options --------------------------------------------------------------


@pytest.mark.parametrize("delay", [0, 0.1])
def test_happy_eyeballs_delay_is_accepted_everywhere(python_server, delay):
    ws = websocket.WebSocket(python_server.url(), happy_eyeballs_delay=delay)
    Recorder(ws).wait_type("open")
    ws.free()
    with wsembed.connect(python_server.url(), happy_eyeballs_delay=delay) as conn:
        conn.send("x")
        assert conn.recv(timeout=DEADLINE) == "x"

    async def main():
        async with wsembed.aio.connect(python_server.url(), happy_eyeballs_delay=delay) as conn:
            await conn.send("y")
            return await conn.recv()

    assert run(main()) == "y"


@pytest.mark.parametrize(
    "delay, error",
    [(-1, ValueError), (float("inf"), ValueError), (2**40, ValueError), ("0.1", TypeError)],
)
def test_bad_happy_eyeballs_delay(python_server, delay, error):
    with pytest.raises(error):
        websocket.WebSocket(python_server.url(), happy_eyeballs_delay=delay)
    with pytest.raises(error):
        wsembed.connect(python_server.url(), happy_eyeballs_delay=delay)


@pytest.mark.skipif(not wsembed.has_tls(), reason="an https:// proxy needs a build with TLS")
def test_https_proxy_is_accepted(python_server):
    ws = websocket.WebSocket(python_server.url(), proxy="https://127.0.0.1:1")
    recorder = Recorder(ws)
    recorder.wait_closed()
    assert recorder.of("error")[0].error_code == errors.WS_ERR_CONNECT
    ws.free()
