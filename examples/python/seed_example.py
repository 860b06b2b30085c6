"""The example of Brython's browser.websocket documentation as a console
program: open a socket, bind open/message/close, send what the user typed,
close. The page's buttons become the program's steps, its alerts prints.

    python seed_example.py URL [MESSAGE...]

Sends each MESSAGE (or "Hello from wsembed"), prints each message
received, then closes; exits with 0 when every message came back. Try it
against the project's echo server:

    cargo run --release --example echo_server -- 0     # prints its URL
    python examples/python/seed_example.py ws://127.0.0.1:PORT/ "Bonjour"
"""

import sys
import threading

import wsembed
from wsembed import websocket

DEADLINE = 30.0

# Set by open, or by close when the socket never opens.
settled = threading.Event()
closed = threading.Event()
received = threading.Semaphore(0)


def on_open(evt):
    print("Connection open", flush=True)
    settled.set()


def on_message(evt):
    # message received from server
    if isinstance(evt.data, bytes):
        print("Message received: %d bytes of binary" % len(evt.data), flush=True)
    else:
        print("Message received: %s" % evt.data, flush=True)
    received.release()


def on_error(evt):
    print("Error: %s" % evt.reason, flush=True)


def on_close(evt):
    # websocket is closed
    clean = "clean" if evt.wasClean else "not clean"
    reason = ": " + evt.reason if evt.reason else ""
    print("Connection closed (code %d, %s%s)" % (evt.code, clean, reason), flush=True)
    closed.set()
    settled.set()


ws = None


def _open(url):
    global ws
    try:
        # open a web socket
        ws = websocket.websocket(url)
    except NotImplementedError as e:
        # Where Brython's example says "WebSocket is not supported by
        # your browser".
        print("WebSocket is not supported here: %s (TLS: %s)" % (e, wsembed.has_tls()))
        return False
    # bind functions to web socket events
    ws.bind("open", on_open)
    ws.bind("message", on_message)
    ws.bind("error", on_error)
    ws.bind("close", on_close)
    return True


def send(data):
    if data:
        ws.send(data)


def close_connection():
    ws.close()


def main(argv):
    if len(argv) < 2:
        print("usage: %s ws://host:port/ [message...]" % argv[0], file=sys.stderr)
        return 2
    messages = argv[2:] or ["Hello from wsembed"]
    if not _open(argv[1]):
        return 1
    if not settled.wait(DEADLINE) or closed.is_set():
        close_connection()
        closed.wait(DEADLINE)
        return 1
    echoed = 0
    for message in messages:
        send(message)
        # One at a time, as a person clicking "send" would.
        if received.acquire(timeout=DEADLINE):
            echoed += 1
    close_connection()
    closed.wait(DEADLINE)
    return 0 if echoed == len(messages) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
