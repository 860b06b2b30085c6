"""A raw WebSocket server for test_drain.py: the opening handshake by hand,
then frames read straight off the socket, with no WebSocket library.

Run as a program (``python drain_reader.py SIZE``), it is the reader of
the 256 MiB producer tests: it listens on 127.0.0.1, prints ``port N``,
accepts one connection, reads nothing for a moment (``STALL``), then
checks that each message is the producer's next one (``message(seq, SIZE)``, byte for byte, sequence numbers from 0),
answers the close, then prints one JSON line: the messages and bytes it
got and the first mismatch, if any. A separate process, so that its work
does not share a GIL with the producer it measures.
"""

import base64
import functools
import hashlib
import json
import socket
import struct
import sys
import time

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_SEQ = struct.Struct(">Q")

# The reader's own pace is the test's "slow reader" with a release build
# of the library; with a debug build the producer is slower than that, so
# a pause at the start, with a small window, makes sure its queue fills
# (and its sends wait) whatever the build.
STALL = 0.1
RCVBUF = 256 * 1024


def message(seq, size):
    """The producer's message number ``seq``: its number at both ends, so
    that a lost, repeated, reordered or cut message shows, and a pattern
    between that moves with it, so that bytes taken from a neighbour do."""
    head = _SEQ.pack(seq)
    return head + _body(seq & 0xFF, size) + head


@functools.lru_cache(maxsize=256)
def _body(start, size):
    # Cached: making it anew for each message would slow both the
    # producer and the reader, whose pace the tests measure.
    filler = bytes((start + i) & 0xFF for i in range(256))
    return (filler * ((size - 16) // 256 + 1))[: size - 16]


def accept_handshake(connection):
    """Reads the opening handshake from ``connection`` and answers 101."""
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = connection.recv(4096)
        if not chunk:
            raise ConnectionError("the client left during the handshake")
        request += chunk
    key = None
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    connection.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def _unmask(payload, mask):
    # One big-integer XOR: orders of magnitude faster than a loop over the
    # bytes in Python, which would make the reader what is measured.
    n = len(payload)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def read_frames(stream):
    """Yields ``(opcode, payload)`` for each frame (client frames are
    masked) until the stream ends."""
    while True:
        head = stream.read(2)
        if len(head) < 2:
            return
        opcode = head[0] & 0x0F
        length = head[1] & 0x7F
        if length == 126:
            length = struct.unpack(">H", stream.read(2))[0]
        elif length == 127:
            length = struct.unpack(">Q", stream.read(8))[0]
        mask = stream.read(4) if head[1] & 0x80 else b""
        payload = stream.read(length)
        if len(payload) < length:
            return
        yield head[0], opcode, _unmask(payload, mask) if mask else payload


def _serve(size):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    print("port {}".format(listener.getsockname()[1]), flush=True)
    connection, _ = listener.accept()
    listener.close()
    accept_handshake(connection)
    time.sleep(STALL)
    stream = connection.makefile("rb", buffering=1 << 20)
    result = {"messages": 0, "bytes": 0, "error": None, "close": None}
    for first, opcode, payload in read_frames(stream):
        if opcode == 0x8:
            result["close"] = struct.unpack(">H", payload[:2])[0] if payload else 1005
            connection.sendall(b"\x88" + bytes([len(payload)]) + payload)
            break
        if opcode != 0x2 or not first & 0x80:
            result["error"] = result["error"] or "frame {:#04x} after {} messages".format(
                first, result["messages"]
            )
            continue
        seq = result["messages"]
        if result["error"] is None and payload != message(seq, size):
            got = _SEQ.unpack(payload[:8])[0] if len(payload) >= 8 else None
            result["error"] = "message {}: {} bytes, numbered {}".format(seq, len(payload), got)
        result["messages"] += 1
        result["bytes"] += len(payload)
    connection.close()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
