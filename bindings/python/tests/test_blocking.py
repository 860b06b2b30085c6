"""wsembed.connect: the blocking client."""

import threading
import time

import pytest

import wsembed
from servers import DEADLINE, free_port, late_echo_messages
from wsembed import _ffi, errors


def test_send_and_recv(echo_url):
    with wsembed.connect(echo_url) as ws:
        assert ws.readyState == wsembed.OPEN
        ws.send("text ✓")
        ws.send(b"\x00binary")
        assert ws.recv(timeout=DEADLINE) == "text ✓"
        assert ws.recv(timeout=DEADLINE) == b"\x00binary"
    assert ws.readyState == wsembed.CLOSED
    assert ws.close_code is not None


def test_recv_timeout_raises_timeout_error(python_server):
    with wsembed.connect(python_server.url()) as ws:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.2)
        assert time.monotonic() - start >= 0.2


def test_iteration_ends_at_a_clean_close(python_server):
    ws = wsembed.connect(python_server.url("/send/3"))
    received = []
    for message in ws:
        received.append(message)
        if len(received) == 3:
            ws.close()
    assert received == ["0", "1", "2"]
    assert ws.close_code == 1005


def test_server_close_ends_iteration_and_recv_raises(python_server):
    ws = wsembed.connect(python_server.url("/close/1000"))
    assert list(ws) == []
    with pytest.raises(wsembed.ConnectionClosed) as info:
        ws.recv()
    assert (info.value.code, info.value.reason, info.value.was_clean) == (1000, "bye", True)
    assert info.value.status == errors.WS_ERR_INVALID_STATE
    assert (ws.close_code, ws.close_reason) == (1000, "bye")
    ws.close()


def test_connect_failure_raises_connection_closed():
    with pytest.raises(ConnectionError) as info:
        wsembed.connect("ws://127.0.0.1:{}/".format(free_port()))
    error = info.value
    assert isinstance(error, wsembed.ConnectionClosed)
    assert error.status == error.error_code == errors.WS_ERR_CONNECT
    assert error.code == 1006 and not error.was_clean


def test_connect_timeout(hanging_server):
    with pytest.raises(wsembed.ConnectionClosed) as info:
        wsembed.connect(hanging_server.url(), connect_timeout=0.3)
    assert info.value.error_code == errors.WS_ERR_TIMEOUT


def test_bad_url_raises_value_error():
    with pytest.raises(ValueError):
        wsembed.connect("http://127.0.0.1/")


def test_recv_in_one_thread_send_in_another(echo_url):
    with wsembed.connect(echo_url) as ws:
        got = []

        def reader():
            for _ in range(100):
                got.append(ws.recv(timeout=DEADLINE))

        thread = threading.Thread(target=reader)
        thread.start()
        for i in range(100):
            ws.send(str(i))
        thread.join(DEADLINE)
        assert got == [str(i) for i in range(100)]


def test_subprotocol_and_close_code(python_server):
    ws = wsembed.connect(python_server.url("/protocol"), protocols="chat")
    assert ws.protocol == "chat"
    ws.close(3000, "going")
    assert (ws.close_code, ws.close_reason) == (3000, "going")
    ws.close()  # idempotent
    assert python_server.wait_closes(lambda closes: ("/protocol", 3000) in closes)


def test_send_waits_for_room_in_a_full_queue(python_server):
    # As the asyncio test: the server reads nothing for half a second.
    messages = late_echo_messages()
    url = python_server.url("/late-echo/0.5")
    with wsembed.connect(url, max_send_queue=512 * 1024) as ws:
        for message in messages:
            ws.send(message)
        echoed = [ws.recv(timeout=DEADLINE) for _ in messages]
    assert echoed == messages
    assert ws._room.waits


def test_send_from_a_callback_on_the_io_thread_does_not_wait(python_server):
    # The IO thread is what empties the queue: waiting there would never end.
    outcome = []
    url = python_server.url("/stall")
    with wsembed.connect(url, max_send_queue=64 * 1024, close_timeout=0.2) as ws:
        done = threading.Event()

        def flood_from_the_io_thread(evt):
            try:
                while True:
                    ws.send(b"x" * 1024)
            except wsembed.QueueFullError as e:
                outcome.append(e)
            finally:
                done.set()

        # "open" has happened: the binding replays it on the IO thread.
        ws._native.bind(_ffi.WS_EVENT_OPEN, flood_from_the_io_thread)
        assert done.wait(DEADLINE)
    assert len(outcome) == 1
    assert outcome[0].status == errors.WS_ERR_QUEUE_FULL
