"""``python -m wsembed``, run as a program through pipes, as a script would
use it (the same output and exit status as examples/wscat.c); and the
``repr()`` of the public objects."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading

import pytest

import wsembed
import wsembed.aio
from servers import DEADLINE, PythonServer, free_port
from wsembed import websocket

BINARY = b"\x00\x01\xfe\xff"


class CliServer(PythonServer):
    """PythonServer's routes, and two more: ``/binary`` sends BINARY first,
    then echoes; ``/describe`` answers each message with its kind and
    length ("text 3", "binary 3"), so a test sees how a line was sent."""

    async def _handle(self, ws):
        path = ws.request.path
        if path == "/describe":
            async for message in ws:
                kind = "text" if isinstance(message, str) else "binary"
                await ws.send("{} {}".format(kind, len(message)))
            return
        if path == "/binary":
            await ws.send(BINARY)
        await super()._handle(ws)


@pytest.fixture(scope="module")
def server():
    # Its own, not the session's python_server: /restart counts the
    # connections of the server's whole life.
    s = CliServer()
    yield s
    s.stop()


def _environment():
    # The package the tests import, whether from a source tree on
    # PYTHONPATH or installed; WSEMBED_LIBRARY, if set, goes along.
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(wsembed.__file__)))
    path = os.environ.get("PYTHONPATH")
    return dict(
        os.environ,
        PYTHONPATH=package_parent + (os.pathsep + path if path else ""),
        PYTHONFAULTHANDLER="1",
    )


class Program:
    """``python -m wsembed ARGS`` with its three streams on pipes, killed
    if it outlives the deadline (so a hang fails the test, not the run)."""

    def __init__(self, *args):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wsembed", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_environment(),
        )
        self._timer = threading.Timer(DEADLINE, self.process.kill)
        self._timer.start()

    def send(self, line):
        self.process.stdin.write(line.encode("utf-8") if isinstance(line, str) else line)
        self.process.stdin.flush()

    def readline(self):
        return self.process.stdout.readline()

    def finish(self, close_input=True):
        """Ends the input (unless told not to) and waits for the end:
        ``(exit status, rest of stdout, stderr as text)``."""
        if close_input:
            self.process.stdin.close()
        out = self.process.stdout.read() if not self.process.stdout.closed else b""
        err = self.process.stderr.read().decode("utf-8")
        status = self.process.wait()
        self._timer.cancel()
        if not close_input:
            self.process.stdin.close()
        return status, out, err


def run(*args, input=b""):
    result = subprocess.run(
        [sys.executable, "-m", "wsembed", *args],
        input=input,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_environment(),
        timeout=DEADLINE,
    )
    return result.returncode, result.stdout, result.stderr.decode("utf-8")


CLEAN_CLOSE = 'wsembed: closed: code 1000, reason "", clean\n'


def test_lines_are_sent_and_echoes_printed(echo_url):
    program = Program(echo_url)
    for line in ("hello", "wörld ✓", ""):
        program.send(line + "\n")
        assert program.readline().decode("utf-8") == line + "\n"
    status, out, err = program.finish()
    assert (status, out) == (0, b"")
    assert err.startswith("wsembed: connected to " + echo_url + "\n")
    assert err.endswith(CLEAN_CLOSE)


def test_piped_input_all_echoed(rust_server):
    # The lines and the close go out at once; the echoes still come, the
    # last line without its newline too.
    status, out, err = run(rust_server.url("/"), input=b"one\ntwo\nthree")
    assert (status, out) == (0, b"one\ntwo\nthree\n"), err
    assert err.endswith(CLEAN_CLOSE)


def test_binary_message_printed_as_hex_dump(server):
    program = Program(server.url("/binary"))
    assert program.readline() == b"[binary, 4 bytes] 00 01 fe ff\n"
    assert program.finish()[:2] == (0, b"")


def test_binary_flag_sends_lines_as_binary_and_prints_binary_raw(server):
    program = Program("--binary", server.url("/binary"))
    assert program.readline() == BINARY + b"\n"
    program.send(b"\xffnot UTF-8\n")
    assert program.readline() == b"\xffnot UTF-8\n"
    assert program.finish()[:2] == (0, b"")

    program = Program("--binary", server.url("/describe"))
    program.send("abc\n")
    assert program.readline() == b"binary 3\n"
    assert program.finish()[:2] == (0, b"")


def test_text_lines_are_text_and_non_utf8_ones_refused(server):
    program = Program(server.url("/describe"))
    program.send(b"\xff\n")
    program.send("abc\n")
    assert program.readline() == b"text 3\n"
    status, out, err = program.finish()
    assert (status, out) == (0, b"")
    assert "wsembed: line not sent: not valid UTF-8 (use --binary for non-UTF-8 input)\n" in err


def test_refused_connection_exits_1():
    url = "ws://127.0.0.1:{}/".format(free_port())
    status, out, err = run(url)
    assert (status, out) == (1, b"")
    assert err.startswith("wsembed: error: ") and "[connection failed]\n" in err
    assert err.endswith('wsembed: closed: code 1006, reason "", not clean\n')


def test_url_that_cannot_be_opened_exits_1():
    status, out, err = run("http://127.0.0.1/")
    assert (status, out) == (1, b"")
    assert err.startswith("wsembed: cannot open http://127.0.0.1/: ")


@pytest.mark.parametrize(
    "args, said",
    [
        ([], "the following arguments are required: URL"),
        (["--no-such-flag", "ws://127.0.0.1/"], "unrecognized arguments: --no-such-flag"),
        (["ws://127.0.0.1/", "ws://127.0.0.2/"], "unrecognized arguments: ws://127.0.0.2/"),
        (["-H", "no colon", "ws://127.0.0.1/"], "wants \"Name: value\", not 'no colon'"),
        (["-H", ": value", "ws://127.0.0.1/"], 'wants "Name: value"'),
        (["--header"], "expected one argument"),
        (["--proxy", "bogus://proxy", "ws://127.0.0.1/"], "wsembed: --proxy: "),
    ],
)
def test_bad_arguments_exit_2(args, said):
    status, out, err = run(*args)
    assert (status, out) == (2, b""), err
    assert said in err


def test_server_that_closes_first_ends_the_program_waiting_for_input(server):
    program = Program(server.url("/close/4001/going%20away"))
    # The input stays open: the close alone must end the program.
    status, out, err = program.finish(close_input=False)
    assert (status, out) == (0, b"")
    assert err.endswith('wsembed: closed: code 4001, reason "going away", clean\n')


def test_headers_reach_the_server(server):
    program = Program(
        "-H", "X-Wsembed-Cli: a b:c", "--header", "X-Second:\t two", server.url("/headers")
    )
    received = json.loads(program.readline())
    headers = {name.lower(): value for name, value in received.items()}
    assert headers["x-wsembed-cli"] == "a b:c"
    assert headers["x-second"] == "two"
    assert program.finish()[:2] == (0, b"")


def test_subprotocol_offered_and_reported(server):
    url = server.url("/protocol")
    status, out, err = run("-p", "other", "--subprotocol", "superchat", url)
    assert (status, out) == (0, b"")
    assert err.startswith('wsembed: connected to {} (subprotocol "superchat")\n'.format(url))


def test_reconnect_reports_each_lost_connection(server):
    program = Program("--reconnect", server.url("/restart/1"))
    assert program.readline() == b"connection 1\n"
    assert program.readline() == b"connection 2\n"
    program.send("after\n")
    assert program.readline() == b"after\n"
    status, out, err = program.finish()
    assert (status, out) == (0, b"")
    assert 'wsembed: connection lost: code 1012, "restarting"; reconnecting in ' in err
    assert " ms (attempt 1)\n" in err
    assert err.count("wsembed: connected to ") == 2


def test_stats_printed_at_the_end(echo_url):
    status, out, err = run("--stats", echo_url)
    assert (status, out) == (0, b"")
    stats = err.splitlines()[-1]
    assert stats.startswith("wsembed: stats: bytes_sent=")
    assert " messages_sent=0 " in stats and " connections=1 " in stats


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name == "nt", reason="POSIX signals")
def test_ctrl_c_closes_with_1000(server):
    program = Program(server.url("/"))
    program.send("before\n")
    assert program.readline() == b"before\n"
    program.process.send_signal(signal.SIGINT)
    status, out, err = program.finish(close_input=False)
    assert (status, out) == (0, b""), err
    assert err.endswith(CLEAN_CLOSE)
    assert "Traceback" not in err


def test_closed_standard_output_ends_the_program(server):
    program = Program(server.url("/"))
    assert program.process.stderr.readline().startswith(b"wsembed: connected to ")
    program.process.stdout.close()  # as `| head -1` does once it has its line
    program.send("nobody reads this\n")
    # The input stays open: the failed write of the echo alone must end it.
    status, _, err = program.finish(close_input=False)
    assert status == 1
    assert "wsembed: standard output: " in err and "Broken pipe" in err
    assert err.endswith(CLEAN_CLOSE)
    assert "Exception ignored" not in err and "Traceback" not in err


def test_version():
    status, out, err = run("--version")
    assert (status, err) == (0, "")
    assert out.decode() == "wsembed {} (library {}, TLS {}, deflate {})\n".format(
        wsembed.__version__,
        wsembed.version(),
        "yes" if wsembed.has_tls() else "no",
        "yes" if wsembed.has_deflate() else "no",
    )


def test_help_exits_0():
    status, out, err = run("--help")
    assert (status, err) == (0, "")
    assert out.startswith(b"usage: python -m wsembed ")


# ----- repr() ------------------------------------------------------------------


def test_repr_of_websocket(python_server):
    url = python_server.url("/")
    with websocket.WebSocket(url) as ws:
        assert repr(ws) in (
            "<WebSocket url={!r} readyState=CONNECTING>".format(url),
            "<WebSocket url={!r} readyState=OPEN>".format(url),
        )
    assert repr(ws) == "<WebSocket url={!r} readyState=CLOSED>".format(url)
    # One whose __init__ never ran (or failed) has no socket: still no error.
    assert repr(websocket.WebSocket.__new__(websocket.WebSocket)) == (
        "<WebSocket url=? readyState=?>"
    )


def test_repr_of_blocking_and_asyncio_connections(python_server):
    url = python_server.url("/")
    with wsembed.connect(url) as ws:
        assert repr(ws) == "<wsembed.blocking.Connection url={!r} readyState=OPEN>".format(url)
    assert repr(ws) == "<wsembed.blocking.Connection url={!r} readyState=CLOSED>".format(url)

    async def main():
        async with wsembed.aio.connect(url) as ws:
            opened = repr(ws)
        return opened, repr(ws)

    assert asyncio.run(main()) == (
        "<wsembed.aio.Connection url={!r} readyState=OPEN>".format(url),
        "<wsembed.aio.Connection url={!r} readyState=CLOSED>".format(url),
    )
    assert repr(wsembed.aio.Connection.__new__(wsembed.aio.Connection)) == (
        "<wsembed.aio.Connection url=? readyState=?>"
    )


def test_repr_of_events_never_raises():
    assert repr(websocket.Event("close", code=1000, wasClean=True)) == (
        "<Event close code=1000 reason='' wasClean=True>"
    )
    # A message event made by hand without data.
    assert repr(websocket.Event("message")) == "<Event message>"
