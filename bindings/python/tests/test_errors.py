"""Failures become Python exceptions: NotImplementedError for what the
build lacks, ValueError for bad URLs and arguments, WebSocketError (with
the status code) for the rest; network failures become error events; an
exception raised in a callback goes to sys.unraisablehook and the IO
thread goes on."""

import pytest

import wsembed
from recorder import Recorder, unraisable_reports
from servers import free_port
from wsembed import errors, websocket


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "ws://127.0.0.1/#fragment",
        "not a url",
        "",
        "ws://",
        "ws://127.0.0.1:99999/",
    ],
)
def test_bad_urls_raise_value_error(url):
    with pytest.raises(ValueError) as info:
        websocket.WebSocket(url)
    assert isinstance(info.value, wsembed.InvalidArgumentError)
    assert info.value.status == errors.WS_ERR_INVALID_URL
    assert info.value.status_name == "WS_ERR_INVALID_URL"
    assert str(info.value)


def test_url_with_nul_and_non_str():
    with pytest.raises(ValueError):
        websocket.WebSocket("ws://127.0.0.1/\0")
    with pytest.raises(TypeError):
        websocket.WebSocket(b"ws://127.0.0.1/")


@pytest.mark.skipif(wsembed.has_tls(), reason="this build has TLS")
def test_wss_without_tls_is_not_implemented():
    with pytest.raises(NotImplementedError) as info:
        websocket.websocket("wss://127.0.0.1:1/")
    assert info.value.status == errors.WS_ERR_UNSUPPORTED


@pytest.mark.skipif(wsembed.has_tls(), reason="this build has TLS")
@pytest.mark.parametrize(
    "option",
    [
        {"ca_pem": "-----BEGIN CERTIFICATE-----"},
        {"ca_file": "/nonexistent.pem"},
        {"client_cert": ("cert.pem", "key.pem")},
        {"insecure_skip_verify": True},
    ],
)
def test_tls_options_without_tls_are_not_implemented(python_server, option):
    with pytest.raises(NotImplementedError):
        websocket.WebSocket(python_server.url(), **option)


def test_insecure_skip_verify_false_is_always_accepted(python_server):
    websocket.WebSocket(python_server.url(), insecure_skip_verify=False).free()


def test_proxy_option_follows_the_library(python_server):
    # Proxies are an extension under way: whatever the library answers is
    # what Python raises (NotImplementedError while it lacks them).
    try:
        ws = websocket.WebSocket(python_server.url(), proxy="http://127.0.0.1:1")
    except NotImplementedError as e:
        assert e.status == errors.WS_ERR_UNSUPPORTED
    else:
        ws.free()
    with pytest.raises((ValueError, NotImplementedError)):
        websocket.WebSocket(python_server.url(), proxy="socks9://nowhere")


@pytest.mark.parametrize(
    "options, error",
    [
        ({"connect_timeout": -1}, ValueError),
        ({"connect_timeout": 0}, ValueError),  # refused by the library
        ({"close_timeout": float("nan")}, ValueError),
        ({"ping_interval": "5"}, TypeError),
        ({"pong_timeout": True}, TypeError),
        ({"connect_timeout": 2**40}, ValueError),
        ({"max_message_size": 0}, ValueError),
        ({"max_message_size": -5}, ValueError),
        ({"max_send_queue": 2**70}, ValueError),
        ({"max_send_queue": 1.5}, TypeError),
        ({"client_cert": "only-one-path"}, TypeError),
        ({"no_such_option": 1}, TypeError),
    ],
)
def test_bad_options(python_server, options, error):
    with pytest.raises(error):
        websocket.WebSocket(python_server.url(), **options)


@pytest.mark.parametrize(
    "protocols, headers",
    [
        (["not a token"], None),
        (["chat", "chat"], None),
        (None, {"Sec-WebSocket-Key": "x"}),
        (None, {"X-Bad": "a\r\nb"}),
    ],
)
def test_bad_protocols_and_headers_raise_value_error(python_server, protocols, headers):
    with pytest.raises(ValueError):
        websocket.WebSocket(python_server.url(), protocols=protocols, headers=headers)


def test_send_while_connecting_raises_invalid_state(hanging_server):
    ws = websocket.WebSocket(hanging_server.url())
    assert ws.readyState == websocket.CONNECTING
    with pytest.raises(wsembed.InvalidStateError) as info:
        ws.send("too early")
    assert info.value.status == errors.WS_ERR_INVALID_STATE
    # Closing while connecting aborts: a close event 1006 and no error.
    recorder = Recorder(ws)
    ws.close()
    recorder.wait_closed()
    assert recorder.types() == ["close"]
    assert recorder.events[0].code == 1006
    assert not recorder.events[0].wasClean


def test_send_after_close_raises_invalid_state(python_server):
    ws = websocket.WebSocket(python_server.url())
    recorder = Recorder(ws)
    recorder.wait_type("open")
    ws.close()
    recorder.wait_closed()
    with pytest.raises(wsembed.InvalidStateError):
        ws.send("too late")
    ws.close()  # closing twice is not an error
    ws.free()
    with pytest.raises(wsembed.InvalidStateError):
        ws.send("freed")
    ws.close()  # nor is closing a freed socket


@pytest.mark.parametrize(
    "code, reason",
    [(999, None), (1001, None), (2999, None), (5000, None), (70000, None), (1000, "é" * 62)],
)
def test_bad_close_code_or_reason_raise_value_error(python_server, code, reason):
    ws = websocket.WebSocket(python_server.url())
    recorder = Recorder(ws)
    recorder.wait_type("open")
    with pytest.raises(ValueError):
        ws.close(code, reason)
    with pytest.raises(TypeError):
        ws.close("1000")
    ws.free()


def test_reason_without_code_closes_with_1000(python_server):
    ws = websocket.WebSocket(python_server.url("/reason-only"))
    recorder = Recorder(ws)
    recorder.wait_type("open")
    ws.close(reason="done")
    recorder.wait_closed()
    assert (recorder.events[-1].code, recorder.events[-1].reason) == (1000, "done")


def test_message_over_max_size_is_refused(python_server):
    ws = websocket.WebSocket(python_server.url(), max_message_size=10)
    recorder = Recorder(ws)
    recorder.wait_type("open")
    with pytest.raises(ValueError) as info:
        ws.send(b"x" * 11)
    assert info.value.status == errors.WS_ERR_TOO_LARGE
    ws.free()


def test_full_send_queue_raises_queue_full(python_server):
    # The server reads nothing: once the TCP buffers are full, so is the
    # queue.
    ws = websocket.WebSocket(python_server.url("/stall"), max_send_queue=1000)
    recorder = Recorder(ws)
    recorder.wait_type("open")
    with pytest.raises(wsembed.QueueFullError) as info:
        for _ in range(1_000_000):
            ws.send(b"x" * 600)
    assert info.value.status == errors.WS_ERR_QUEUE_FULL
    ws.free()


def test_refused_connection_gives_error_then_close():
    ws = websocket.WebSocket("ws://127.0.0.1:{}/".format(free_port()))
    recorder = Recorder(ws)
    recorder.wait_closed()
    assert recorder.types() == ["error", "close"]
    error, close = recorder.events
    assert error.error_code == errors.WS_ERR_CONNECT
    assert error.reason
    assert (close.code, close.wasClean) == (1006, False)


def test_exception_in_callback_goes_to_unraisablehook(echo_url):
    class Boom(Exception):
        pass

    def on_open(evt):
        raise Boom("from a callback")

    with unraisable_reports() as reports:
        ws = websocket.WebSocket(echo_url)
        ws.bind("open", on_open)
        recorder = Recorder(ws)
        # The IO thread survives: the next events still arrive.
        recorder.wait_type("open")
        ws.send("still alive")
        recorder.wait_type("message")
        ws.close()
        recorder.wait_closed()
    assert len(reports) == 1
    exc_type, exc_value, err_msg, obj = reports[0]
    assert exc_type is Boom and str(exc_value) == "from a callback"
    assert err_msg == "Exception ignored in wsembed 'open' callback"
    assert obj is on_open


def test_system_exit_in_callback_does_not_end_anything(python_server):
    def on_open():
        raise SystemExit(3)

    with unraisable_reports() as reports:
        ws = websocket.WebSocket(python_server.url())
        ws.bind("open", on_open)
        recorder = Recorder(ws)
        recorder.wait_type("open")
        ws.send("after SystemExit")
        recorder.wait_type("message")
    assert [r[0] for r in reports] == [SystemExit]
    ws.free()


def test_default_hook_prints_the_report(python_server, capfd):
    import sys

    def on_open(evt):
        raise ValueError("printed by the default hook")

    previous = sys.unraisablehook
    sys.unraisablehook = sys.__unraisablehook__
    try:
        ws = websocket.WebSocket(python_server.url())
        ws.bind("open", on_open)
        recorder = Recorder(ws)
        recorder.wait_type("open")
        ws.send("after")
        recorder.wait_type("message")
        ws.free()
    finally:
        sys.unraisablehook = previous
    err = capfd.readouterr().err
    assert "Exception ignored in wsembed 'open' callback" in err
    assert "ValueError: printed by the default hook" in err


def test_strerror_and_status_names():
    assert errors.strerror(errors.WS_ERR_QUEUE_FULL) == "send queue full"
    e = errors.from_status(errors.WS_ERR_INTERNAL, "x")
    assert type(e) is wsembed.WebSocketError and e.status_name == "WS_ERR_INTERNAL"
