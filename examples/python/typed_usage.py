"""wsembed's three styles with type annotations: callbacks, blocking calls
and asyncio, each sending two messages to an echo server and reading them
back. ``mypy --strict`` checks it with the package (tests/run-python.sh,
bindings/python/tests/test_typing.py), which ships ``py.typed``:

    mypy --config-file bindings/python/pyproject.toml \\
        bindings/python/wsembed examples/python/typed_usage.py

Run it against the project's echo server:

    cargo run --release --example echo_server -- 0     # prints its URL
    python examples/python/typed_usage.py ws://127.0.0.1:PORT/

Exits with 0 when every message came back in each style.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import List, Optional, Union

import wsembed
import wsembed.aio
from wsembed import Event, websocket

# What a message is, received: str for text, bytes for binary.
Message = Union[str, bytes]

TIMEOUT = 10.0


def with_callbacks(url: str, messages: List[Message]) -> List[Message]:
    """As in the browser: the callbacks run on wsembed's IO thread."""
    received: List[Message] = []
    done = threading.Event()

    def on_open(evt: Event) -> None:
        for message in messages:
            ws.send(message)

    def on_message(evt: Event) -> None:
        # Only a 'message' event has data: str or bytes, never None.
        if evt.data is not None:
            received.append(evt.data)
        if len(received) == len(messages):
            ws.close(1000, "done")

    def on_error(evt: Event) -> None:
        print("error: {} ({})".format(evt.reason, evt.error_code), file=sys.stderr)

    def on_close() -> None:  # a callback may also take no event
        done.set()

    # The `with` block frees the socket at its end, after its close event.
    with websocket.WebSocket(url, connect_timeout=TIMEOUT) as ws:
        ws.bind("open", on_open)
        ws.bind("message", on_message)
        ws.bind("error", on_error)
        ws.bind("close", on_close)
        done.wait(TIMEOUT)
    return received


def with_blocking_calls(url: str, messages: List[Message]) -> List[Message]:
    """For scripts: each call waits."""
    received: List[Message] = []
    with wsembed.connect(url, connect_timeout=TIMEOUT) as ws:
        for message in messages:
            ws.send(message)
        for _ in messages:
            received.append(ws.recv(timeout=TIMEOUT))
        rtt: float = ws.ping(timeout=TIMEOUT)
        stats: wsembed.Stats = ws.stats
        print("blocking: round trip {:.6f} s, {} bytes sent".format(rtt, stats.bytes_sent))
    return received


async def with_asyncio(url: str, messages: List[Message]) -> List[Message]:
    """In a coroutine: the socket's events run on the event loop."""
    received: List[Message] = []
    async with wsembed.aio.connect(url, connect_timeout=TIMEOUT) as ws:
        for message in messages:
            await ws.send(message)
        for _ in messages:
            received.append(await asyncio.wait_for(ws.recv(), TIMEOUT))
        close_code: Optional[int] = ws.close_code  # None: still open
        assert close_code is None
    return received


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print("usage: {} ws://host:port/".format(argv[0]), file=sys.stderr)
        return 2
    url = argv[1]
    messages: List[Message] = ["Hello from wsembed", b"\x00\x01\xfe\xff"]
    ok = True
    try:
        for name, received in (
            ("callbacks", with_callbacks(url, messages)),
            ("blocking", with_blocking_calls(url, messages)),
            ("asyncio", asyncio.run(with_asyncio(url, messages))),
        ):
            echoed = received == messages
            print("{}: {}".format(name, "echoed" if echoed else "got {!r}".format(received)))
            ok = ok and echoed
    except wsembed.InvalidStatus as e:
        # The server answered the handshake with an HTTP status, not 101.
        retry_after: Optional[str] = e.headers.get("Retry-After")
        print("refused: HTTP {} (Retry-After: {})".format(e.status, retry_after), file=sys.stderr)
        return 1
    except wsembed.ConnectionClosed as e:
        print("connection closed: {} ({})".format(e.code, e.status_name), file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
