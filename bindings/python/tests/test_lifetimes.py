"""Browser lifetimes for the callback API: a WebSocket whose callbacks may
still be called lives on without a reference of the script's (CONNECTING
with open/message/error/close callbacks, OPEN with message/error/close,
CLOSING with error/close), and goes once that stops holding.

Callbacks here keep nothing that refers to their socket (an Event's
``target`` does): what they saw is kept as plain data."""

import gc
import os
import textwrap
import threading
import time
import weakref

import pytest

from servers import DEADLINE, PythonServer, run_python, wait_until
from wsembed import Dispatcher, _callbacks, _ffi, websocket
from wsembed._ffi import lib

FAST_RECONNECT = dict(reconnect=True, reconnect_delay=0.05, reconnect_jitter=0)


def handle_is_freed(handle):
    return lib.ws_ready_state(handle) == _ffi.WS_ERR_INVALID_HANDLE


def collected(ref):
    """Whether the WebSocket behind ``ref`` is gone once the collector ran
    (a callback that refers to its socket makes a cycle)."""
    gc.collect()
    return ref() is None


def dispatch_until(dispatcher, predicate, timeout=DEADLINE):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out dispatching"
        dispatcher.dispatch(20)


def ignore(*args):
    pass


def live_websockets():
    return sum(1 for o in gc.get_objects() if isinstance(o, websocket.WebSocket))


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_socket_bound_in_a_function_outlives_it(echo_url):
    # The browser idiom: nothing refers to the socket once start() returns.
    received = []
    done = threading.Event()
    refs = []

    def on_message(evt):
        received.append(evt.data)
        done.set()

    def start():
        ws = websocket.WebSocket(echo_url)
        ws.bind("open", lambda evt: evt.target.send("hi"))
        ws.bind("message", on_message)
        refs.append(weakref.ref(ws))

    start()
    gc.collect()
    assert done.wait(DEADLINE)
    assert received == ["hi"]
    # OPEN with a message callback: still held.
    assert not collected(refs[0])
    refs[0]().close()
    assert wait_until(lambda: collected(refs[0]))


def test_collectable_after_its_close_event(python_server):
    events = []
    opened = threading.Event()

    def start():
        ws = websocket.WebSocket(python_server.url("/after-close"))
        ws.bind("open", lambda: opened.set())
        ws.bind("message", lambda evt: events.append(evt.type))
        ws.bind("close", lambda evt: events.append((evt.type, evt.code)))
        return weakref.ref(ws), ws._native.handle

    ref, handle = start()
    assert opened.wait(DEADLINE)
    assert not collected(ref)
    # Closed, it is CLOSING with a close callback: held until the event.
    ref().close(4000)
    assert wait_until(lambda: collected(ref))
    assert events == [("close", 4000)]
    assert handle_is_freed(handle)


def test_server_close_lets_it_go(python_server):
    # Nothing of the script listens to close: the binding's own watcher
    # sees it, and lets the socket go.
    seen = []

    def start():
        ws = websocket.WebSocket(python_server.url("/close/4001"))
        ws.bind("open", lambda: seen.append("open"))
        ws.bind("message", lambda evt: seen.append(evt.data))
        return weakref.ref(ws), ws._native.handle

    ref, handle = start()
    assert wait_until(lambda: collected(ref))
    assert seen == ["open"]
    assert handle_is_freed(handle)


def test_unbinding_the_callbacks_that_hold_it(python_server):
    ws = websocket.WebSocket(python_server.url("/unbound"))
    ws.bind("message", ignore)
    ws.bind("close", ignore)
    assert wait_until(lambda: ws.readyState == websocket.OPEN)
    handle = ws._native.handle
    ref = weakref.ref(ws)
    del ws
    assert not collected(ref)
    ref().unbind("message")
    assert not collected(ref)  # the close callback still holds it
    ref().unbind("close")
    assert collected(ref)
    # Freed while open: closed with 1001 (going away), as a collected file.
    assert handle_is_freed(handle)
    assert python_server.wait_closes(lambda closes: ("/unbound", 1001) in closes)


def test_unbinding_from_its_own_callback(python_server):
    # The last reference goes on the IO thread, inside the socket's own
    # callback: ws_free there does not wait for itself.
    done = threading.Event()

    def on_message(evt):
        evt.target.unbind("message")
        done.set()

    def start():
        ws = websocket.WebSocket(python_server.url("/unbound-inside"))
        ws.bind("open", lambda evt: evt.target.send("x"))
        ws.bind("message", on_message)
        return weakref.ref(ws), ws._native.handle

    ref, handle = start()
    assert done.wait(DEADLINE)
    assert wait_until(lambda: handle_is_freed(handle))
    assert ref() is None
    assert python_server.wait_closes(lambda closes: ("/unbound-inside", 1001) in closes)


def test_open_with_only_open_callbacks_is_collectable(python_server):
    opens = []

    def start():
        ws = websocket.WebSocket(python_server.url("/only-open"))
        # Two of them: the socket goes only once both ran.
        ws.bind("open", lambda: opens.append(1))
        ws.bind("open", lambda: opens.append(2))
        return weakref.ref(ws), ws._native.handle

    ref, handle = start()
    assert wait_until(lambda: collected(ref))
    assert opens == [1, 2]
    assert handle_is_freed(handle)
    assert python_server.wait_closes(lambda closes: ("/only-open", 1001) in closes)


def test_connecting_with_only_an_open_callback_is_held(hanging_server):
    def start():
        ws = websocket.WebSocket(hanging_server.url(), connect_timeout=0.5)
        ws.bind("open", ignore)
        return weakref.ref(ws), ws._native.handle

    ref, handle = start()
    assert not collected(ref)
    # The attempt times out: its close event lets it go.
    assert wait_until(lambda: collected(ref))
    assert handle_is_freed(handle)


def test_every_close_callback_runs_before_it_goes(python_server):
    # One close callback bound before the watcher's first place, one after:
    # both run, and only then is the socket let go.
    calls = []
    done = threading.Event()

    def start():
        ws = websocket.WebSocket(python_server.url("/close/4002"))
        ws.bind("close", lambda: calls.append("first"))
        ws.bind("message", ignore)
        ws.bind("error", ignore)
        ws.bind("close", lambda: calls.append("second"))
        ws.bind("close", lambda: done.set())
        return weakref.ref(ws)

    ref = start()
    assert done.wait(DEADLINE)
    assert wait_until(lambda: collected(ref))
    assert calls == ["first", "second"]


def test_free_is_immediate(python_server):
    opened = threading.Event()
    ws = websocket.WebSocket(python_server.url("/freed"))
    ws.bind("open", lambda: opened.set())
    ws.bind("message", ignore)
    assert opened.wait(DEADLINE)
    assert id(ws) in websocket._kept
    handle = ws._native.handle
    ws.free()
    assert handle_is_freed(handle)
    assert id(ws) not in websocket._kept
    ref = weakref.ref(ws)
    del ws
    assert collected(ref)


def test_with_block_lets_it_go(python_server):
    with websocket.WebSocket(python_server.url()) as ws:
        ws.bind("message", ignore)
        assert id(ws) in websocket._kept
    assert id(ws) not in websocket._kept


def test_close_from_a_callback_waits_for_the_close_event(python_server):
    # close() in a message callback: the other message callbacks of that
    # message still run, and the socket goes after its close event.
    calls = []

    def closing(evt):
        calls.append("closing")
        evt.target.close()

    def start():
        ws = websocket.WebSocket(python_server.url("/close-inside"))
        ws.bind("message", closing)
        ws.bind("message", lambda: calls.append("after"))
        # Last: the echo must find both message callbacks bound.
        ws.bind("open", lambda evt: evt.target.send("x"))
        return weakref.ref(ws)

    ref = start()
    assert wait_until(lambda: collected(ref))
    assert calls == ["closing", "after"]
    assert python_server.wait_closes(lambda closes: ("/close-inside", 1005) in closes)


@pytest.fixture
def restarting_server():
    server = PythonServer()
    yield server
    server.stop()


def test_reconnecting_counts_as_connecting(restarting_server):
    # Held by an open callback alone: while it reconnects (CONNECTING) it
    # lives without a reference, and goes once open again. A dispatcher
    # makes the moment of each step the test's; the delay keeps the next
    # open out of the reconnecting event's batch.
    d = Dispatcher()
    opens = []
    lost = []
    options = dict(FAST_RECONNECT, reconnect_delay=0.5)
    ws = websocket.WebSocket(restarting_server.url("/restart/1"), dispatcher=d, **options)
    ws.bind("open", lambda evt: opens.append(evt.attempt))
    ws.bind("reconnecting", lambda evt: lost.append(evt.code))
    dispatch_until(d, lambda: lost == [1012])
    ref = weakref.ref(ws)
    ws.unbind("reconnecting")
    del ws
    assert not collected(ref)
    dispatch_until(d, lambda: opens == [0, 1])
    assert collected(ref)
    d.close()


def test_a_reconnecting_callback_holds_an_open_socket(restarting_server):
    lost = threading.Event()

    def start():
        ws = websocket.WebSocket(restarting_server.url("/restart/1"), **FAST_RECONNECT)
        ws.bind("reconnecting", lambda: lost.set())
        return weakref.ref(ws)

    ref = start()
    assert lost.wait(DEADLINE)
    assert wait_until(lambda: ref() is not None and ref().readyState == websocket.OPEN)
    assert not collected(ref)
    ref().close()
    assert collected(ref)


def test_dispatcher_sockets_follow_the_rule(echo_url):
    d = Dispatcher()
    received = []

    def on_message(evt):
        received.append(evt.data)
        evt.target.close()

    def start():
        ws = websocket.WebSocket(echo_url, dispatcher=d)
        ws.bind("open", lambda evt: evt.target.send("via dispatcher"))
        ws.bind("message", on_message)
        ws.bind("close", ignore)
        return weakref.ref(ws)

    ref = start()
    # Nothing is dispatched yet, whatever the IO thread has done: the
    # socket lives to deliver its queued events.
    time.sleep(0.2)
    assert not collected(ref)
    dispatch_until(d, lambda: collected(ref))
    assert received == ["via dispatcher"]
    # Every socket opened with it is freed: it can be closed.
    d.close()


def test_a_callback_bound_after_the_close_still_gets_it(python_server):
    # On the IO thread, events race the binds of the function that opens
    # the socket: its close may be seen before the close callback is
    # bound. The socket lives until that callback has its replay. A
    # dispatcher makes the race deterministic.
    d = Dispatcher()
    closes = []
    ws = websocket.WebSocket(python_server.url("/close/4003"), dispatcher=d)
    ws.bind("open", ignore)
    dispatch_until(d, lambda: ws.readyState == websocket.CLOSED)
    d.dispatch()
    assert id(ws) not in websocket._kept  # its close was delivered
    ws.bind("close", lambda evt: closes.append(evt.code))
    ref = weakref.ref(ws)
    del ws
    assert not collected(ref)
    dispatch_until(d, lambda: collected(ref))
    assert closes == [4003]
    d.close()


def test_binding_from_many_threads_at_once(echo_url):
    # bind and unbind race the IO thread's events and each other: whatever
    # the interleaving, a socket is let go once closed, and only then.
    sockets = 20
    closed = threading.Semaphore(0)
    refs = []
    for _ in range(sockets):
        ws = websocket.WebSocket(echo_url)
        ws.bind("close", lambda: closed.release())
        ws.bind("open", lambda evt: evt.target.send("x"))
        refs.append(weakref.ref(ws))
    del ws
    stop = threading.Event()

    def churn():
        def callback(evt):
            pass

        while not stop.is_set():
            for ref in refs:
                ws = ref()
                if ws is not None:
                    ws.bind("message", callback)
                    ws.unbind("message", callback)
                    ws.bind("error", callback)
                    ws.unbind("error")

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    assert all(not collected(ref) for ref in refs)
    for ref in refs:
        ref().close()
    for _ in range(sockets):
        assert closed.acquire(timeout=DEADLINE)
    stop.set()
    for thread in threads:
        thread.join(DEADLINE)
    assert wait_until(lambda: all(collected(ref) for ref in refs))


def test_ten_thousand_sockets_come_and_go(rust_server):
    # Each: opened in a function, echo received, closed from its message
    # callback, let go after its close event. Nothing accumulates.
    url = rust_server.url()
    live = weakref.WeakSet()
    closes = threading.Semaphore(0)
    echoes = []

    def on_open(evt):
        evt.target.send("echo")

    def on_message(evt):
        echoes.append(evt.data)
        evt.target.close()

    def on_close(evt):
        closes.release()

    def start():
        ws = websocket.WebSocket(url)
        ws.bind("open", on_open)
        ws.bind("message", on_message)
        ws.bind("close", on_close)
        live.add(ws)

    def run(count, batch=200):
        for first in range(0, count, batch):
            size = min(batch, count - first)
            for _ in range(size):
                start()
            for _ in range(size):
                assert closes.acquire(timeout=DEADLINE)
        # The watcher lets each go after the script's close callbacks.
        assert wait_until(lambda: len(live) == 0)

    gc.collect()
    objects_before = live_websockets()
    kept_before = len(websocket._kept)
    keys_before = _callbacks.live_keys()
    run(500)
    gc.collect()
    rss_before = resident_bytes()
    run(10_000)
    gc.collect()
    assert len(echoes) == 10_500 and set(echoes) == {"echo"}
    assert live_websockets() == objects_before
    assert len(websocket._kept) == kept_before
    assert wait_until(lambda: _callbacks.live_keys() == keys_before)
    growth = resident_bytes() - rss_before
    assert growth < 20 * 1024 * 1024, "RSS grew by {} bytes".format(growth)


EXIT_SCRIPT = textwrap.dedent(
    """
    import sys, threading
    from wsembed import websocket
    opened = threading.Semaphore(0)

    def start(i):
        ws = websocket.WebSocket(sys.argv[1] + str(i))
        ws.bind("open", lambda: opened.release())
        ws.bind("message", lambda evt: None)
        ws.bind("close", lambda evt: print("close callback ran at exit"))

    for i in range(10):
        start(i)
    for _ in range(10):
        assert opened.acquire(timeout=30)
    assert len(websocket._kept) == 10
    print("exiting with held sockets open", flush=True)
    """
)


def test_interpreter_exit_closes_held_sockets(python_server):
    base = python_server.url("/held-at-exit/")
    assert run_python(EXIT_SCRIPT, base) == "exiting with held sockets open\n"
    paths = {"/held-at-exit/{}".format(i) for i in range(10)}
    assert python_server.wait_closes(
        lambda closes: paths <= {path for path, code in closes if code == 1001}
    )
