"""bind and unbind: the bind race, several callbacks, unbinding, and the
callback signatures the seed allows."""

import threading

import pytest

import wsembed
from recorder import Recorder
from servers import DEADLINE, wait_until
from wsembed import websocket


def test_late_bind_still_sees_open_and_held_messages(python_server):
    # The server sends three messages right after the handshake: they may
    # all arrive before anything is bound, and none may be lost.
    ws = websocket.WebSocket(python_server.url("/send/3"))
    opened = Recorder()
    ws.bind("open", opened)
    opened.wait_type("open")
    # Open happened long ago; a callback bound now is still called once.
    late = Recorder()
    ws.bind("open", late)
    late.wait_type("open")
    messages = Recorder()
    ws.bind("message", messages)
    messages.wait_type("message", 3)
    assert messages.data() == ["0", "1", "2"]
    ws.free()


def test_bind_after_close_gets_the_close_event(python_server):
    ws = websocket.WebSocket(python_server.url("/close/4000"))
    first = Recorder(ws)
    first.wait_closed()
    late = Recorder()
    ws.bind("close", late)
    late.wait_closed()
    assert [e.code for e in late.of("close")] == [4000]


def test_bind_race_from_many_sockets(echo_url):
    # Bind only once every socket is open: each must still report open
    # exactly once, and a message sent before binding is not lost.
    sockets = [websocket.WebSocket(echo_url) for _ in range(50)]
    assert wait_until(lambda: all(ws.readyState == websocket.OPEN for ws in sockets))
    for ws in sockets:
        ws.send("early")
    recorders = []
    for ws in sockets:
        recorder = Recorder()
        ws.bind("open", recorder)
        ws.bind("message", recorder)
        recorders.append(recorder)
    for recorder in recorders:
        recorder.wait_type("message")
    for ws in sockets:
        ws.free()
    assert all(r.types() == ["open", "message"] for r in recorders)


def test_callbacks_run_in_bind_order_and_duplicates_once(python_server):
    ws = websocket.WebSocket(python_server.url())
    calls = []
    done = Recorder()

    def first(evt):
        calls.append("first")

    def second(evt):
        calls.append("second")

    ws.bind("open", first)
    ws.bind("open", second)
    ws.bind("open", first)  # already bound: still once
    ws.bind("open", done)
    done.wait_type("open")
    assert calls == ["first", "second"]
    ws.free()


def test_unbind_stops_a_callback(python_server):
    ws = websocket.WebSocket(python_server.url())
    gone, kept = Recorder(), Recorder()
    ws.bind("message", gone)
    ws.bind("message", kept)
    ws.bind("open", kept)
    kept.wait_type("open")
    ws.unbind("message", gone)
    ws.unbind("message", lambda e: None)  # never bound: not an error
    ws.send("after unbind")
    kept.wait_type("message")
    assert gone.of("message") == []
    ws.unbind("message")  # every message callback
    ws.free()


def test_bound_method_unbinds_by_equality(python_server):
    class Client:
        def __init__(self):
            self.messages = []

        def on_message(self, evt):
            self.messages.append(evt.data)

    client = Client()
    ws = websocket.WebSocket(python_server.url())
    ws.bind("message", client.on_message)
    ws.unbind("message", client.on_message)  # a new bound-method object, equal
    assert ws._bound == []
    ws.free()


def test_bad_event_names_and_callbacks(python_server):
    ws = websocket.WebSocket(python_server.url())
    with pytest.raises(ValueError):
        ws.bind("onmessage", print)
    with pytest.raises(ValueError):
        ws.unbind("bogus", print)
    with pytest.raises(TypeError):
        ws.bind("open", "not callable")
    with pytest.raises(TypeError):
        ws.bind("open", lambda a, b: None)
    ws.free()


def test_builtin_and_optional_argument_callables(python_server):
    ws = websocket.WebSocket(python_server.url())
    seen = []
    done = threading.Event()
    ws.bind("open", lambda evt=None: seen.append(evt.type))
    ws.bind("open", lambda *args: seen.append(len(args)))
    ws.bind("open", done.set)  # a bound builtin method taking nothing
    assert done.wait(DEADLINE)
    assert seen == ["open", 1]
    ws.free()


def test_bind_from_inside_a_callback(python_server):
    ws = websocket.WebSocket(python_server.url())
    messages = Recorder()

    def on_open(evt):
        ws.bind("message", messages)
        ws.send("bound inside")

    ws.bind("open", on_open)
    messages.wait_type("message")
    assert messages.data() == ["bound inside"]
    ws.free()


def test_bind_on_a_freed_socket_raises(python_server):
    ws = websocket.WebSocket(python_server.url())
    ws.free()
    with pytest.raises(wsembed.InvalidStateError):
        ws.bind("open", print)


def test_handlers_keep_their_thread_state_between_events(echo_url):
    # ctypes would give the IO thread a fresh Python thread state for every
    # callback (slow, and threading.local values would vanish between
    # handlers); the binding keeps one for the thread's life.
    local = threading.local()
    seen = []
    done = threading.Event()
    ws = websocket.WebSocket(echo_url)

    def on_open(evt):
        local.count = 0
        ws.send("a")

    def on_message(evt):
        local.count = getattr(local, "count", -100) + 1
        seen.append(local.count)
        if len(seen) < 3:
            ws.send("b")
        else:
            done.set()

    ws.bind("open", on_open)
    ws.bind("message", on_message)
    assert done.wait(DEADLINE)
    ws.free()
    assert seen == [1, 2, 3]
