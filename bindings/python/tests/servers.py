"""Test servers, all on 127.0.0.1 with a port chosen by the system.

- ``PythonServer``: Python ``websockets`` (an implementation independent of
  wsembed's), on its own event loop in a thread. It routes on the path:
  ``/`` echoes; ``/close/CODE`` closes at once with CODE and reason "bye";
  ``/headers`` sends the request headers as JSON, then echoes;
  ``/send/N`` sends N text messages "0".."N-1" at once, then echoes;
  ``/protocol`` echoes, with the subprotocols "chat" and "superchat";
  ``/stall`` reads nothing; ``/late-echo/SECONDS`` reads nothing for
  SECONDS, then echoes; ``/restart/N`` sends "connection K" (K counted
  per server from 1), then closes the first N connections with 1012
  (service restart) and echoes on the later ones.
  It records how each connection was closed by the client. It agrees to
  permessage-deflate when offered (``websockets``' default); keyword
  arguments go to ``serve`` (``compression=None`` declines it,
  ``extensions=[...]`` sets its parameters).
- ``RustServer``: the project's ``examples/echo_server.rs``.
- ``HangingServer``: accepts TCP and never answers, so a socket stays
  CONNECTING.
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import unquote

from websockets.asyncio.server import serve

DEADLINE = 30.0
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def _select_subprotocol(connection, offered):
    if connection.request.path != "/protocol":
        return None
    for protocol in ("chat", "superchat"):
        if protocol in offered:
            return protocol
    return None


class PythonServer:
    def __init__(self, ssl_context=None, **serve_options):
        self.restarts = 0
        self.closes = []
        self.closes_changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._ssl = ssl_context
        self._serve_options = serve_options
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(DEADLINE):
            raise RuntimeError("the websockets server did not start")

    def _run(self, ready):
        asyncio.set_event_loop(self._loop)

        async def main():
            self._stop = asyncio.Event()
            async with serve(
                self._handle,
                "127.0.0.1",
                0,
                max_size=None,
                ssl=self._ssl,
                select_subprotocol=_select_subprotocol,
                **self._serve_options,
            ) as server:
                self.port = server.sockets[0].getsockname()[1]
                ready.set()
                await self._stop.wait()

        self._loop.run_until_complete(main())

    async def _handle(self, ws):
        path = ws.request.path
        try:
            if path == "/stall":
                return
            if path.startswith("/close/"):
                # /close/CODE or /close/CODE/REASON (percent-encoded)
                _, _, code, *reason = path.split("/", 3)
                await ws.close(int(code), unquote(reason[0]) if reason else "bye")
                return
            if path.startswith("/restart/"):
                self.restarts += 1
                await ws.send("connection {}".format(self.restarts))
                if self.restarts <= int(path.rsplit("/", 1)[1]):
                    await ws.close(1012, "restarting")
                    return
            if path == "/headers":
                await ws.send(json.dumps(dict(ws.request.headers.raw_items())))
            if path.startswith("/late-echo/"):
                await asyncio.sleep(float(path.rsplit("/", 1)[1]))
            if path.startswith("/send/"):
                for i in range(int(path.rsplit("/", 1)[1])):
                    await ws.send(str(i))
            async for message in ws:
                await ws.send(message)
        except Exception:
            pass
        finally:
            await ws.wait_closed()
            with self.closes_changed:
                self.closes.append((path, ws.protocol.close_code))
                self.closes_changed.notify_all()

    def url(self, path="/"):
        scheme = "wss" if self._ssl else "ws"
        return "{}://127.0.0.1:{}{}".format(scheme, self.port, path)

    def wait_closes(self, predicate, timeout=DEADLINE):
        """Waits until ``predicate(closes)`` holds; closes is a list of
        (path, close code as the server saw it)."""
        with self.closes_changed:
            return self.closes_changed.wait_for(lambda: predicate(self.closes), timeout)

    def stop(self):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(DEADLINE)


def _echo_server_binary():
    """The echo server: $WSEMBED_ECHO_SERVER (tests/run-python.sh builds it)
    or built here with cargo."""
    path = os.environ.get("WSEMBED_ECHO_SERVER")
    if path:
        return path
    build = subprocess.run(
        ["cargo", "build", "--release", "--example", "echo_server", "--message-format=json"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        check=True,
        timeout=1800,
    )
    for line in build.stdout.decode().splitlines():
        message = json.loads(line)
        if message.get("target", {}).get("name") == "echo_server" and message.get("executable"):
            return message["executable"]
    raise RuntimeError("cargo built no echo_server executable")


class RustServer:
    def __init__(self):
        self._process = subprocess.Popen(
            [_echo_server_binary(), "0"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        # The server prints its address once it listens.
        timer = threading.Timer(DEADLINE, self._process.kill)
        timer.start()
        line = self._process.stdout.readline().decode()
        timer.cancel()
        if not line.startswith("listening on "):
            self._process.kill()
            raise RuntimeError("echo_server said {!r}".format(line))
        self._url = line.split()[-1]

    def url(self, path="/"):
        return self._url.rstrip("/") + path

    def stop(self):
        self._process.kill()
        self._process.wait(DEADLINE)


class HangingServer:
    """Accepts connections and never answers the opening handshake."""

    def __init__(self):
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._accepted = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                self._accepted.append(self._listener.accept()[0])
            except OSError:
                return

    def url(self, path="/"):
        return "ws://127.0.0.1:{}{}".format(self.port, path)

    def stop(self):
        self._listener.close()
        for connection in self._accepted:
            connection.close()


def late_echo_messages():
    """For ``/late-echo/``: more bytes than the loopback buffers and the
    server's own queue hold while it reads nothing (32 MiB), so a 512 KiB
    send queue fills."""
    return [bytes([i]) * (256 * 1024) for i in range(128)]


def free_port():
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=DEADLINE, interval=0.01):
    """Polls ``predicate`` until it holds or the deadline passes; for state
    that has no event to wait on (the garbage collector's work)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def run_python(script, *args):
    """Runs `script` in a fresh interpreter (`python -c`) with `args`; checks
    that it exits with status 0 and writes nothing to stderr, and returns
    what it printed."""
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=DEADLINE,
        env=dict(os.environ, PYTHONFAULTHANDLER="1"),
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr.decode() == ""
    return result.stdout.decode()
