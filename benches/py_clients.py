#!/usr/bin/env python3
"""Python round-trip clients for figure 4 of benches/run.

    py_clients.py STYLE PORT SIZE COUNT WARMUP

STYLE: wsembed-callback, wsembed-blocking, wsembed-asyncio (the wsembed
binding), websocket-client (blocking) or websockets (asyncio), all on
ws://127.0.0.1:PORT/; or asyncio-minimal, a reference: a pure-Python
asyncio client that speaks only what the echo needs. Sends a SIZE-byte
text message, waits for its echo, sends the next: WARMUP untimed round
trips, then COUNT timed ones. Prints one JSON line like the Rust clients.
Stops by itself (a watchdog ends a run that hangs).
"""

import json
import os
import resource
import sys
import threading
import time

LIMIT = 300


def watchdog():
    def fire():
        sys.stderr.write("py_clients: still running after {} s; giving up\n".format(LIMIT))
        os._exit(3)

    t = threading.Timer(LIMIT, fire)
    t.daemon = True
    t.start()


def usage():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_nvcsw


class Marks:
    def __init__(self, count, warmup):
        self.count, self.warmup = count, warmup
        self.start = self.end = None

    def at(self, received):
        """Call with the number of echoes received so far."""
        if received == self.warmup:
            self.start = (time.perf_counter(), usage())
        if received == self.warmup + self.count:
            self.end = (time.perf_counter(), usage())
            return True
        return False


def check(payload, echo):
    if echo != payload:
        raise SystemExit("py_clients: bad echo of {} bytes".format(len(echo)))


def wsembed_callback(url, payload, marks):
    from wsembed import websocket

    done = threading.Event()
    state = {"received": 0, "failure": None}

    def on_open(evt):
        marks.at(0)
        ws.send(payload)

    def on_message(evt):
        check(payload, evt.data)
        state["received"] += 1
        if marks.at(state["received"]):
            done.set()
            return
        ws.send(payload)

    def on_error(evt):
        state["failure"] = evt.reason
        done.set()

    def on_close(evt):
        done.set()

    ws = websocket.WebSocket(url)
    ws.bind("open", on_open)
    ws.bind("message", on_message)
    ws.bind("error", on_error)
    ws.bind("close", on_close)
    if not done.wait(LIMIT) or marks.end is None:
        raise SystemExit("py_clients: did not finish: {}".format(state["failure"]))
    with ws:
        pass


def wsembed_blocking(url, payload, marks):
    import wsembed

    with wsembed.connect(url) as ws:
        marks.at(0)
        received = 0
        while True:
            ws.send(payload)
            check(payload, ws.recv(timeout=30))
            received += 1
            if marks.at(received):
                break


def wsembed_asyncio(url, payload, marks):
    import asyncio

    import wsembed.aio

    async def main():
        async with wsembed.aio.connect(url) as ws:
            marks.at(0)
            received = 0
            while True:
                await ws.send(payload)
                check(payload, await ws.recv())
                received += 1
                if marks.at(received):
                    break

    asyncio.run(main())


def websocket_client(url, payload, marks):
    import websocket  # websocket-client; sets TCP_NODELAY by default

    ws = websocket.create_connection(url)
    marks.at(0)
    received = 0
    while True:
        ws.send(payload)
        check(payload, ws.recv())
        received += 1
        if marks.at(received):
            break
    ws.close()


def websockets_asyncio(url, payload, marks):
    import asyncio

    from websockets.asyncio.client import connect

    async def main():
        async with connect(url, compression=None) as ws:
            marks.at(0)
            received = 0
            while True:
                await ws.send(payload)
                check(payload, await ws.recv())
                received += 1
                if marks.at(received):
                    break

    asyncio.run(main())


def asyncio_minimal(url, payload, marks):
    """Not a client to use: a reference for what asyncio itself costs. An
    asyncio Protocol on the loop's own socket (no IO thread, no library),
    speaking only what this echo needs: one unfragmented text frame each
    way, masked with the all-zero key (valid, and it skips the XOR), none
    of the checks a real client makes."""
    import asyncio
    import base64
    import socket
    import struct

    port = int(url.rstrip("/").rsplit(":", 1)[1])
    data = payload.encode()
    if len(data) < 126:
        head = struct.pack("!BB", 0x81, 0x80 | len(data))
    else:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, len(data))
    frame = head + bytes(4) + data

    class Echo(asyncio.Protocol):
        def __init__(self, loop):
            self.buffer = b""
            self.waiter = None
            self.upgraded = loop.create_future()

        def data_received(self, chunk):
            self.buffer += chunk
            if not self.upgraded.done():
                end = self.buffer.find(b"\r\n\r\n")
                if end >= 0:
                    self.buffer = self.buffer[end + 4 :]
                    self.upgraded.set_result(None)
                return
            b = self.buffer
            if len(b) < 4:
                return
            n, start = b[1] & 0x7F, 2
            if n == 126:
                n, start = struct.unpack("!H", b[2:4])[0], 4
            if len(b) < start + n:
                return
            self.buffer = b[start + n :]
            waiter, self.waiter = self.waiter, None
            waiter.set_result(b[start : start + n].decode())

    async def main():
        loop = asyncio.get_running_loop()
        transport, echo = await loop.create_connection(lambda: Echo(loop), "127.0.0.1", port)
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n".format(port, key).encode()
        )
        await echo.upgraded
        marks.at(0)
        received = 0
        while True:
            echo.waiter = loop.create_future()
            transport.write(frame)
            check(payload, await echo.waiter)
            received += 1
            if marks.at(received):
                break
        transport.close()

    asyncio.run(main())


STYLES = {
    "wsembed-callback": wsembed_callback,
    "wsembed-blocking": wsembed_blocking,
    "wsembed-asyncio": wsembed_asyncio,
    "websocket-client": websocket_client,
    "websockets": websockets_asyncio,
    "asyncio-minimal": asyncio_minimal,
}


def main():
    if len(sys.argv) != 6 or sys.argv[1] not in STYLES:
        raise SystemExit(__doc__)
    style, port, size, count, warmup = sys.argv[1], *map(int, sys.argv[2:])
    watchdog()
    payload = "".join(chr(ord("a") + i % 26) for i in range(size))
    marks = Marks(max(1, count), warmup)
    STYLES[style]("ws://127.0.0.1:{}/".format(port), payload, marks)
    (t0, (c0, v0)), (t1, (c1, v1)) = marks.start, marks.end
    secs = t1 - t0
    print(
        json.dumps(
            {
                "bench": "python",
                "impl": style,
                "size": size,
                "count": marks.count,
                "secs": secs,
                "per_sec": marks.count / secs,
                "cpu_secs": c1 - c0,
                "cpu_util": (c1 - c0) / secs,
                "vcsw_per_msg": (v1 - v0) / marks.count,
            }
        )
    )


if __name__ == "__main__":
    main()
