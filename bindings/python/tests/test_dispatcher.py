"""Dispatchers: the callbacks of a socket opened with one run only inside
``dispatch()``, on the thread that calls it, never on the IO thread; the
descriptor is readable while events wait."""

import asyncio
import gc
import select
import selectors
import textwrap
import threading
import time

import pytest

import wsembed
import wsembed.aio
from recorder import Recorder, unraisable_reports
from servers import DEADLINE, run_python, wait_until
from wsembed import Dispatcher, _ffi, websocket
from wsembed._ffi import lib


def readable(dispatcher, timeout=0):
    return bool(select.select([dispatcher], [], [], timeout)[0])


def dispatch_until(dispatcher, predicate, timeout=DEADLINE):
    """Dispatches on this thread until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out dispatching"
        dispatcher.dispatch(20)


def handle_is_freed(handle):
    return lib.ws_ready_state(handle) == _ffi.WS_ERR_INVALID_HANDLE


def dispatcher_is_freed(handle):
    return lib.ws_dispatcher_fd(handle) == _ffi.WS_ERR_INVALID_HANDLE


def io_thread(url):
    """The ident of wsembed's IO thread, where a socket without a
    dispatcher runs its callbacks."""
    recorder = Recorder()
    ws = websocket.WebSocket(url)
    ws.bind("open", recorder)
    recorder.wait_type("open")
    ws.free()
    (ident,) = recorder.threads
    return ident


def test_nothing_runs_until_dispatch(python_server):
    with Dispatcher() as d:
        ws = websocket.WebSocket(python_server.url("/send/3"), dispatcher=d)
        recorder = Recorder(ws)
        # The IO thread connects and reads meanwhile; nothing is delivered.
        assert wait_until(lambda: ws.readyState == websocket.OPEN)
        assert readable(d, DEADLINE)
        time.sleep(0.2)
        assert recorder.events == []
        assert readable(d), "level-triggered: still readable until dispatched"
        dispatch_until(d, lambda: len(recorder.of("message")) == 3)
        assert recorder.types() == ["open", "message", "message", "message"]
        assert recorder.data() == ["0", "1", "2"]
        assert recorder.threads == {threading.get_ident()}
        assert not readable(d)
        assert d.dispatch() == 0
        ws.free()


def test_callbacks_run_on_the_dispatching_thread_not_the_io_thread(echo_url):
    # A host loop on its own thread, as a GUI's: a selector watching the
    # dispatcher's descriptor (the Dispatcher itself, by its fileno()).
    io = io_thread(echo_url)
    d = Dispatcher()
    stop = threading.Event()
    host = []

    def host_loop():
        host.append(threading.get_ident())
        with selectors.DefaultSelector() as selector:
            selector.register(d, selectors.EVENT_READ)
            while not stop.is_set():
                if selector.select(0.05):
                    d.dispatch()

    thread = threading.Thread(target=host_loop)
    thread.start()
    try:
        ws = websocket.WebSocket(echo_url, dispatcher=d)
        recorder = Recorder(ws)
        ws.bind("open", lambda: ws.send("on the host's thread"))
        recorder.wait_type("message")
        assert recorder.data() == ["on the host's thread"]
        assert recorder.threads == {host[0]}
        assert io not in recorder.threads
        assert threading.get_ident() not in recorder.threads
        # From another thread, a with block's exit waits for the host to
        # deliver the close event.
        ws.__exit__(None, None, None)
        assert recorder.types()[-1] == "close"
        assert recorder.threads == {host[0]}
    finally:
        stop.set()
        thread.join(DEADLINE)
    d.close()


def test_dispatch_runs_at_most_max_events(python_server):
    with Dispatcher() as d:
        ws = websocket.WebSocket(python_server.url("/send/5"), dispatcher=d)
        recorder = Recorder(ws)
        assert wait_until(lambda: ws.readyState == websocket.OPEN)
        # open and five messages: one event per call with a budget of 1.
        runs = []
        while len(recorder.events) < 6:
            assert readable(d, DEADLINE)
            runs.append(d.dispatch(0, 1))
        assert set(runs) <= {0, 1} and runs.count(1) == 6
        assert recorder.types() == ["open"] + ["message"] * 5
        ws.free()


def test_wakeup_ends_a_waiting_dispatch():
    with Dispatcher() as d:
        result = []
        thread = threading.Thread(target=lambda: result.append(d.dispatch(-1)))
        thread.start()
        time.sleep(0.1)
        assert thread.is_alive()
        d.wakeup()
        thread.join(DEADLINE)
        assert result == [0]
        # A wakeup with nobody waiting makes the next wait return at once.
        d.wakeup()
        assert readable(d)
        assert d.dispatch(-1) == 0


def test_close_waits_for_every_socket(python_server):
    d = Dispatcher()
    handle = d.handle
    ws = websocket.WebSocket(python_server.url(), dispatcher=d)
    assert ws._native.dispatcher is d
    with pytest.raises(wsembed.InvalidStateError):
        d.close()
    assert not d.closed
    ws.free()
    d.close()
    assert d.closed and dispatcher_is_freed(handle)
    d.close()  # idempotent
    with pytest.raises(ValueError):
        d.fileno()
    with pytest.raises(wsembed.InvalidStateError):
        d.dispatch()
    with pytest.raises(wsembed.InvalidStateError):
        d.wakeup()
    with pytest.raises(wsembed.InvalidStateError):
        websocket.WebSocket(python_server.url(), dispatcher=d)


def test_arguments_are_checked(python_server):
    with Dispatcher() as d:
        with pytest.raises(ValueError):
            d.dispatch(-2)
        with pytest.raises(ValueError):
            d.dispatch(0, -1)
        with pytest.raises(TypeError):
            d.dispatch(0.5)
    with pytest.raises(TypeError):
        websocket.WebSocket(python_server.url(), dispatcher=object())
    # The blocking and asyncio clients take no dispatcher of the user's.
    with Dispatcher() as d:
        with pytest.raises(TypeError):
            wsembed.connect(python_server.url(), dispatcher=d)

        async def aio_connect():
            await wsembed.aio.connect(python_server.url(), dispatcher=d)

        with pytest.raises(TypeError):
            asyncio.run(aio_connect())


def test_dispatch_and_close_from_its_own_callback_are_refused(python_server):
    with Dispatcher() as d:
        ws = websocket.WebSocket(python_server.url(), dispatcher=d)
        refused = []

        def on_open():
            for call in (d.dispatch, d.close):
                try:
                    call()
                except wsembed.InvalidStateError as e:
                    refused.append(e.status)

        ws.bind("open", on_open)
        dispatch_until(d, lambda: refused)
        assert refused == [_ffi.WS_ERR_INVALID_STATE] * 2
        assert not d.closed
        ws.free()


def test_with_block_exit_dispatches_on_the_dispatching_thread(python_server):
    d = Dispatcher()
    recorder = Recorder()
    with websocket.WebSocket(python_server.url("/with"), dispatcher=d) as ws:
        for name in ("open", "message", "error", "close"):
            ws.bind(name, recorder)
        dispatch_until(d, lambda: recorder.of("open"))
    # The exit closed, ran the close event here, then freed the socket.
    assert recorder.types() == ["open", "close"]
    assert recorder.of("close")[0].wasClean
    assert recorder.threads == {threading.get_ident()}
    d.close()


def test_with_block_inside_a_dispatched_callback_does_not_wait(python_server):
    with Dispatcher() as d:
        ws = websocket.WebSocket(python_server.url(), dispatcher=d)
        took = []

        def on_open():
            start = time.monotonic()
            with websocket.WebSocket(python_server.url(), dispatcher=d):
                pass
            took.append(time.monotonic() - start)

        ws.bind("open", on_open)
        dispatch_until(d, lambda: took)
        # No waiting for a close event only this thread could dispatch.
        assert took[0] < 1.0
        ws.free()


def test_free_from_inside_a_dispatched_callback(echo_url):
    with Dispatcher() as d:
        ws = websocket.WebSocket(echo_url, dispatcher=d)
        freed = []
        after = Recorder()

        def on_message(evt):
            evt.target.free()
            freed.append(True)

        ws.bind("message", on_message)
        ws.bind("message", after)  # bound after: never runs once freed
        ws.bind("open", lambda: ws.send("free me"))
        dispatch_until(d, lambda: freed)
        assert handle_is_freed(ws._native.handle)
        assert after.events == []
        # Its last socket freed: the dispatcher can go.


def test_a_collected_socket_releases_its_dispatcher(python_server):
    d = Dispatcher()

    def open_and_forget():
        ws = websocket.WebSocket(python_server.url(), dispatcher=d)
        opened = []
        # A callback that refers to its socket: a cycle for the collector.
        # An open callback alone no longer holds the socket once it ran.
        ws.bind("open", lambda evt: opened.append(ws.url))
        dispatch_until(d, lambda: opened)
        return ws._native.handle

    gc.disable()
    try:
        handle = open_and_forget()
        assert not handle_is_freed(handle)
        with pytest.raises(wsembed.InvalidStateError):
            d.close()
        gc.collect()
        assert handle_is_freed(handle)
    finally:
        gc.enable()
    d.close()
    assert d.closed


def test_an_exception_in_a_dispatched_callback_is_reported(python_server):
    with Dispatcher() as d:
        ws = websocket.WebSocket(python_server.url(), dispatcher=d)
        recorder = Recorder()

        def fail():
            raise RuntimeError("from a dispatched callback")

        with unraisable_reports() as reports:
            ws.bind("open", fail)
            ws.bind("open", recorder)
            dispatch_until(d, lambda: recorder.events)
        assert [r[0] for r in reports] == [RuntimeError]
        assert recorder.types() == ["open"]
        ws.free()


def test_dispatchers_and_the_io_thread_side_by_side(echo_url):
    io = io_thread(echo_url)
    d1, d2 = Dispatcher(), Dispatcher()
    plain = websocket.WebSocket(echo_url)
    first = websocket.WebSocket(echo_url, dispatcher=d1)
    second = websocket.WebSocket(echo_url, dispatcher=d2)
    recorders = [Recorder(ws) for ws in (plain, first, second)]
    for ws in (plain, first, second):
        ws.bind("open", lambda evt: evt.target.send("x"))
    recorders[0].wait_type("message")
    dispatch_until(d1, lambda: recorders[1].of("message"))
    dispatch_until(d2, lambda: recorders[2].of("message"))
    assert recorders[0].threads == {io}
    assert recorders[1].threads == recorders[2].threads == {threading.get_ident()}
    for ws in (plain, first, second):
        ws.free()
    d1.close()
    d2.close()


EXIT_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    import wsembed.aio
    from wsembed import Dispatcher, websocket

    d = Dispatcher()
    sockets = [websocket.WebSocket(sys.argv[1], dispatcher=d) for _ in range(5)]
    for ws in sockets:
        ws.bind("open", lambda evt: evt.target.send("left waiting"))
        ws.bind("close", lambda evt: print("close callback ran at exit"))
    while not all(ws.readyState == websocket.OPEN for ws in sockets):
        d.dispatch(20)
    # Echoes wait in the dispatcher, never dispatched.

    # A daemon thread waiting in dispatch(-1) of another dispatcher.
    import threading
    waiting = Dispatcher()
    served = websocket.WebSocket(sys.argv[1], dispatcher=waiting)
    served.bind("open", lambda evt: evt.target.send("served"))
    echoed = threading.Event()
    served.bind("message", lambda evt: echoed.set())
    def serve():
        # Until exit closes the dispatcher (dispatch() then raises): a
        # daemon thread may still run between that and the end.
        while not waiting.closed:
            try:
                waiting.dispatch(-1)
            except wsembed.errors.WebSocketError:
                return
    threading.Thread(target=serve, daemon=True).start()
    assert echoed.wait(30)

    # A connection left open on a loop that is never closed.
    loop = asyncio.new_event_loop()
    connection = loop.run_until_complete(wsembed.aio.connect(sys.argv[1]))
    loop.run_until_complete(connection.send("also left"))
    print("exiting with sockets open", flush=True)
    """
)


def test_interpreter_exit_with_dispatcher_sockets_open(echo_url):
    assert run_python(EXIT_SCRIPT, echo_url) == "exiting with sockets open\n"


def test_a_tkinter_loop_dispatches(echo_url):
    # As a GUI does: Tcl's event loop watches the descriptor (tkinter.Tcl
    # needs no display; Tk's mainloop is the same loop).
    tkinter = pytest.importorskip("tkinter")
    tcl = tkinter.Tcl()
    if not hasattr(tcl.tk, "createfilehandler"):
        pytest.skip("no createfilehandler on this platform")
    d = Dispatcher()
    ws = websocket.WebSocket(echo_url, dispatcher=d)
    recorder = Recorder(ws)
    ws.bind("open", lambda: ws.send("from Tcl's loop"))
    tcl.tk.createfilehandler(d, tkinter.READABLE, lambda *_: d.dispatch())
    try:
        deadline = time.monotonic() + DEADLINE
        while not recorder.of("message"):
            assert time.monotonic() < deadline
            tcl.tk.dooneevent(tkinter._tkinter.DONT_WAIT)
            time.sleep(0.001)
    finally:
        tcl.tk.deletefilehandler(d)
    assert recorder.data() == ["from Tcl's loop"]
    assert recorder.threads == {threading.get_ident()}
    ws.free()
    d.close()
