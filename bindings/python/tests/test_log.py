"""wsembed's log as ``logging`` records: the hook installed only while the
"wsembed" logger is enabled, at the level it would take; records with the
socket's handle; a clean exit with the hook in place."""

import logging
import textwrap

import pytest

import wsembed
from servers import run_python
from wsembed import _ffi, _log, websocket

logger = logging.getLogger("wsembed")


@pytest.fixture(autouse=True)
def restore_logger():
    """Each test sets the logger as it needs; it goes back as it was, and
    the hook with it."""
    level, disabled = logger.level, logger.disabled
    yield
    logger.setLevel(level)
    logger.disabled = disabled
    _log.sync()


def open_and_free(url):
    ws = websocket.WebSocket(url)
    handle = ws._native.handle
    ws.free()
    return handle


def test_no_hook_while_the_logger_takes_nothing(hanging_server):
    logger.setLevel(logging.CRITICAL)
    open_and_free(hanging_server.url())
    assert _log.installed_level == 0
    assert _log._installed_fn is None

    logger.setLevel(logging.DEBUG)
    logger.disabled = True
    open_and_free(hanging_server.url())
    assert _log.installed_level == 0


def test_the_hook_follows_the_logger_from_the_next_socket(hanging_server):
    logger.setLevel(logging.CRITICAL)
    open_and_free(hanging_server.url())
    assert _log.installed_level == 0

    logger.setLevel(logging.INFO)
    # No change notification: nothing happens until a socket is created.
    assert _log.installed_level == 0
    open_and_free(hanging_server.url())
    assert _log.installed_level == _ffi.WS_LOG_INFO
    assert _log._installed_fn is _log._on_log

    for level, expected in [
        (logging.DEBUG, _ffi.WS_LOG_DEBUG),
        (logging.WARNING, _ffi.WS_LOG_WARN),
        (logging.ERROR, _ffi.WS_LOG_ERROR),
        (logging.CRITICAL, 0),
    ]:
        logger.setLevel(level)
        open_and_free(hanging_server.url())
        assert _log.installed_level == expected, logging.getLevelName(level)


def test_records_carry_the_handle(caplog):
    caplog.set_level(logging.DEBUG, logger="wsembed")
    # The trampoline exactly as C calls it.
    _log._on_log(_ffi.WS_LOG_INFO, 42, "connecting to 127.0.0.1:9 ✓".encode(), None)
    _log._on_log(_ffi.WS_LOG_WARN, 0, b"about no socket", None)
    _log._on_log(_ffi.WS_LOG_ERROR, 7, b"bad \xff byte", None)
    _log._on_log(_ffi.WS_LOG_DEBUG, 7, b"detail", None)
    records = [r for r in caplog.records if r.name == "wsembed"]
    assert [(r.levelno, r.wsembed_handle, r.getMessage()) for r in records] == [
        (logging.INFO, 42, "socket 42: connecting to 127.0.0.1:9 ✓"),
        (logging.WARNING, 0, "about no socket"),
        (logging.ERROR, 7, "socket 7: bad \ufffd byte"),
        (logging.DEBUG, 7, "socket 7: detail"),
    ]


def test_a_connection_logs_its_steps(caplog, python_server):
    caplog.set_level(logging.INFO, logger="wsembed")
    with wsembed.connect(python_server.url("/")) as ws:
        handle = ws._native.handle
        ws.send("hello")
        assert ws.recv(timeout=30) == "hello"
    assert _log.installed_level == _ffi.WS_LOG_INFO
    mine = [r for r in caplog.records if r.name == "wsembed" and r.wsembed_handle == handle]
    assert any(r.levelno == logging.INFO for r in mine), caplog.records


def test_exit_with_the_hook_in_place(python_server):
    # Sockets left open and the hook at DEBUG: at exit the hook goes
    # before the interpreter does, and nothing is printed.
    script = textwrap.dedent(
        """
        import logging, sys, threading
        records = []
        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record)
        logging.getLogger("wsembed").addHandler(Keep())
        logging.getLogger("wsembed").setLevel(logging.DEBUG)
        from wsembed import _ffi, _log, websocket
        opened = threading.Semaphore(0)
        sockets = []
        for i in range(10):
            ws = websocket.WebSocket(sys.argv[1])
            ws.bind("open", lambda: opened.release())
            sockets.append(ws)
        for _ in sockets:
            assert opened.acquire(timeout=30)
        assert _log.installed_level == _ffi.WS_LOG_DEBUG
        print("exiting with the hook in place", flush=True)
        """
    )
    assert run_python(script, python_server.url("/")) == "exiting with the hook in place\n"
