"""Text, binary and unicode messages go out and come back unchanged, in
order, against both echo servers."""

import array
import threading
from urllib.parse import quote

import pytest

from recorder import Recorder
from wsembed import websocket

MESSAGES = [
    "hello",
    "",
    "Bonjour, ça va ? ¡Hola! 你好 🎉 ✓",
    "nul \0 inside",
    b"",
    b"\x00\x01\x02\xff binary",
    bytes(range(256)) * 8,
    "x" * 200_000,
    bytes(300_000),
]


def open_echo(url):
    ws = websocket.WebSocket(url)
    recorder = Recorder(ws)
    recorder.wait_type("open")
    return ws, recorder


def test_round_trip_keeps_type_content_and_order(echo_url):
    ws, recorder = open_echo(echo_url)
    for message in MESSAGES:
        ws.send(message)
    recorder.wait_type("message", len(MESSAGES))
    received = recorder.data()
    assert [type(m) for m in received] == [type(m) for m in MESSAGES]
    assert received == MESSAGES
    ws.close()
    recorder.wait_closed()
    assert recorder.types() == ["open"] + ["message"] * len(MESSAGES) + ["close"]
    assert recorder.events[-1].wasClean


@pytest.mark.parametrize(
    "make",
    [
        lambda: bytearray(b"from a bytearray"),
        lambda: memoryview(b"from a read-only memoryview"),
        lambda: memoryview(bytearray(b"xxfrom a slicexx"))[2:-2],
        lambda: memoryview(array.array("i", [1, 2, 3])),
    ],
    ids=["bytearray", "memoryview", "slice", "array"],
)
def test_bytes_like_objects_are_sent_as_binary(echo_url, make):
    ws, recorder = open_echo(echo_url)
    data = make()
    ws.send(data)
    recorder.wait_type("message")
    assert recorder.data() == [bytes(data)]
    ws.free()


def test_other_types_are_refused(python_server):
    ws, _ = open_echo(python_server.url())
    for bad in (42, None, ["a"], 1.5):
        with pytest.raises(TypeError):
            ws.send(bad)
    ws.free()


def test_text_that_is_not_utf8_is_refused(python_server):
    ws, _ = open_echo(python_server.url())
    # A lone surrogate cannot be encoded: a ValueError, nothing sent.
    with pytest.raises(ValueError):
        ws.send("\ud800")
    ws.free()


def test_callbacks_run_on_one_thread_that_is_not_ours(echo_url):
    ws, recorder = open_echo(echo_url)
    ws.send("ping")
    recorder.wait_type("message")
    ws.close()
    recorder.wait_closed()
    assert len(recorder.threads) == 1
    assert threading.get_ident() not in recorder.threads


def test_event_target_is_the_websocket(python_server):
    ws, recorder = open_echo(python_server.url())
    assert recorder.events[0].target is ws
    ws.free()


def test_state_and_attributes(python_server):
    ws = websocket.WebSocket(python_server.url("/protocol"), protocols=["superchat", "chat"])
    assert ws.url == python_server.url("/protocol")
    assert ws.readyState in (websocket.CONNECTING, websocket.OPEN)
    recorder = Recorder(ws)
    recorder.wait_type("open")
    assert ws.readyState == ws.OPEN == 1
    assert ws.protocol == "chat"
    assert ws.extensions == ""  # none offered
    assert ws.bufferedAmount == 0
    ws.close()
    recorder.wait_closed()
    assert ws.readyState == ws.CLOSED == 3
    ws.free()
    # The state stays readable after the native socket is gone.
    assert (ws.readyState, ws.bufferedAmount, ws.protocol) == (websocket.CLOSED, 0, "chat")
    assert websocket.CONNECTING == 0 and websocket.CLOSING == 2


def test_headers_reach_the_server(python_server):
    import json

    ws = websocket.WebSocket(
        python_server.url("/headers"), headers={"Authorization": "Bearer t0ken", "X-Name": "é"}
    )
    recorder = Recorder(ws)
    recorder.wait_type("message")
    # HTTP header names are case-insensitive (the library sends them in
    # lower case).
    headers = {k.lower(): v for k, v in json.loads(recorder.data()[0]).items()}
    assert headers["authorization"] == "Bearer t0ken"
    ws.free()


def test_close_with_code_and_reason_reaches_the_server(python_server):
    ws, recorder = open_echo(python_server.url("/closing"))
    ws.close(4001, "done here")
    recorder.wait_closed()
    close = recorder.of("close")[0]
    assert (close.code, close.reason, close.wasClean) == (4001, "done here", True)
    assert python_server.wait_closes(lambda closes: ("/closing", 4001) in closes)


def test_server_close_code_and_reason_reach_the_callback(python_server):
    ws = websocket.WebSocket(python_server.url("/close/4321"))
    recorder = Recorder(ws)
    recorder.wait_closed()
    close = recorder.of("close")[0]
    assert (close.code, close.reason, close.wasClean) == (4321, "bye", True)
    assert ws.readyState == websocket.CLOSED


@pytest.mark.parametrize(
    "code, reason",
    [
        # What `await ws.close(1002, "Protocol violation")` sends: a valid
        # code, whatever its reason says.
        (1002, "Protocol violation"),
        (1002, "bad frame"),
        (1003, "no binary here"),
        (1007, "not UTF-8"),
        (1011, "server bug"),
        (3000, "unauthorized"),
        (4999, "ça ferme"),
    ],
)
def test_every_close_code_a_server_may_send_is_delivered_as_sent(python_server, code, reason):
    ws = websocket.WebSocket(python_server.url(f"/close/{code}/{quote(reason)}"))
    recorder = Recorder(ws)
    recorder.wait_closed()
    assert recorder.types() == ["open", "close"]
    close = recorder.of("close")[0]
    assert (close.code, close.reason, close.wasClean) == (code, reason, True)


def test_context_manager_closes_and_waits_for_the_close_event(echo_url):
    with websocket.WebSocket(echo_url) as ws:
        recorder = Recorder(ws)
        recorder.wait_type("open")
        ws.send("last words")
        recorder.wait_type("message")
    # The close callback has run by the end of the block.
    assert recorder.types()[-1] == "close"
    assert ws.readyState == websocket.CLOSED
