"""Lifetimes: many sockets, garbage collection of open sockets, freeing
from inside callbacks, and interpreter exit with sockets open."""

import gc
import textwrap
import threading

from recorder import Recorder
from servers import DEADLINE, run_python, wait_until
from wsembed import _callbacks, _ffi, websocket
from wsembed._ffi import lib


def handle_is_freed(handle):
    return lib.ws_ready_state(handle) == _ffi.WS_ERR_INVALID_HANDLE


def test_a_thousand_sockets_at_once(echo_url):
    sockets, recorders = [], []
    for i in range(1000):
        ws = websocket.WebSocket(echo_url)
        recorder = Recorder()
        ws.bind("message", recorder)
        ws.bind("open", lambda evt, ws=ws, i=i: ws.send("socket {}".format(i)))
        sockets.append(ws)
        recorders.append(recorder)
    for i, recorder in enumerate(recorders):
        recorder.wait_type("message")
        assert recorder.data() == ["socket {}".format(i)]
    closed = Recorder()
    for ws in sockets:
        ws.bind("close", closed)
        ws.close()
    closed.wait_type("close", 1000)
    assert all(e.wasClean for e in closed.events)
    handles = [ws._native.handle for ws in sockets]
    # Events refer to their WebSocket (evt.target): drop them too.
    del sockets, ws, recorders, recorder, closed
    # Each is let go once every callback of its close event ran, which
    # may be just after the recorder saw the last one.
    assert wait_until(lambda: gc.collect() is not None and all(handle_is_freed(h) for h in handles))


def test_ten_thousand_sockets_leak_nothing(rust_server):
    # Open, bind, close and drop 10,000 sockets: each handle is freed as its
    # WebSocket goes, and with it every binding and its key. (Closed, so
    # that their callbacks no longer hold them, as in a browser.)
    baseline = _callbacks.live_keys()
    url = rust_server.url()
    handles = []
    def ignore(evt):
        pass

    for _ in range(10_000):
        ws = websocket.WebSocket(url)
        ws.bind("message", ignore)
        ws.bind("open", ignore)
        ws.close()
        handles.append(ws._native.handle)
    del ws
    gc.collect()
    assert wait_until(lambda: _callbacks.live_keys() == baseline)
    assert all(handle_is_freed(h) for h in handles)


def test_garbage_collection_frees_an_open_socket(python_server):
    # Kept events would keep their WebSocket (evt.target): keep types only.
    types = []
    opened = threading.Event()

    def open_and_forget():
        ws = websocket.WebSocket(python_server.url("/collected"))
        # A callback that refers to its socket: a cycle through the
        # closure, which only the collector can free. Once open, an open
        # callback alone no longer holds the socket (a message or close
        # callback would, as in a browser).
        ws.bind("open", lambda evt: (types.append(evt.type), opened.set(), ws))
        return ws._native.handle

    # Automatic collections would free it at a moment of their choosing.
    gc.disable()
    try:
        handle = open_and_forget()
        assert opened.wait(DEADLINE)
        assert not handle_is_freed(handle)
        # Let go once its open callbacks ran, just after this one.
        assert wait_until(lambda: gc.collect() is not None and handle_is_freed(handle))
    finally:
        gc.enable()
    # Freed while open: closed with 1001 (going away), without more events.
    assert python_server.wait_closes(lambda closes: ("/collected", 1001) in closes)
    assert types == ["open"]


def test_free_from_inside_its_own_callback(echo_url):
    ws = websocket.WebSocket(echo_url)
    freed = threading.Event()
    after = Recorder()

    def on_message(evt):
        evt.target.free()
        freed.set()

    ws.bind("message", on_message)
    ws.bind("message", after)  # bound after: never runs once freed
    ws.bind("open", lambda: ws.send("free me"))
    assert freed.wait(DEADLINE)
    assert handle_is_freed(ws._native.handle)
    assert after.events == []


def test_last_reference_dropped_on_the_io_thread(python_server):
    # The only reference lives in a callback's closure; clearing it there
    # collects the WebSocket on the IO thread, inside the callback, whose
    # finalizer calls ws_free (which does not wait for itself).
    holder = {"ws": websocket.WebSocket(python_server.url())}
    handle = holder["ws"]._native.handle
    done = threading.Event()

    def on_open():
        holder.clear()
        gc.collect()
        done.set()

    holder["ws"].bind("open", on_open)
    assert done.wait(DEADLINE)
    assert wait_until(lambda: handle_is_freed(handle))


def test_with_block_inside_a_callback_does_not_wait(python_server):
    ws = websocket.WebSocket(python_server.url())
    done = threading.Event()

    def on_open():
        with websocket.WebSocket(python_server.url()):
            pass
        done.set()

    ws.bind("open", on_open)
    assert done.wait(DEADLINE)
    ws.free()


EXIT_SCRIPT = textwrap.dedent(
    """
    import sys, threading
    from wsembed import websocket
    import wsembed
    opened = threading.Semaphore(0)
    sockets = []
    for i in range(20):
        ws = websocket.WebSocket(sys.argv[1])
        ws.bind("open", lambda: opened.release())
        ws.bind("message", lambda evt: None)
        ws.bind("close", lambda evt: print("close callback ran at exit"))
        sockets.append(ws)
    for _ in sockets:
        assert opened.acquire(timeout=30)
    for ws in sockets:
        ws.send("left open")
    blocking = wsembed.connect(sys.argv[1])
    cycle = websocket.WebSocket(sys.argv[1])
    cycle.bind("message", lambda evt: cycle.send("x"))
    print("exiting with sockets open", flush=True)
    """
)


def test_interpreter_exit_with_open_sockets(echo_url):
    assert run_python(EXIT_SCRIPT, echo_url) == "exiting with sockets open\n"


def test_interpreter_exit_from_a_callback_thread_state(python_server):
    # Exit while the IO thread is inside a Python callback.
    script = textwrap.dedent(
        """
        import sys, threading, time
        from wsembed import websocket
        inside = threading.Event()
        def on_open():
            inside.set()
            time.sleep(0.5)
        ws = websocket.WebSocket(sys.argv[1])
        ws.bind("open", on_open)
        assert inside.wait(30)
        """
    )
    run_python(script, python_server.url())
