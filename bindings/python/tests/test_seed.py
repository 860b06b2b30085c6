"""The example of Brython's browser.websocket documentation, ported: the
same functions bound the same way, with the page's buttons replaced by
calls and its alerts by a list."""

import os
import subprocess
import sys
import threading

from servers import DEADLINE, REPO
from wsembed import websocket


def test_seed_example_ported(echo_url):
    alerts = []
    doc = {"send_button": True, "closebtn": True, "openbtn": False}  # disabled flags
    opened, closed, received = threading.Event(), threading.Event(), threading.Event()

    def on_open(evt):
        doc["send_button"] = False
        doc["closebtn"] = False
        doc["openbtn"] = True
        opened.set()

    def on_message(evt):
        # message reçu du serveur
        alerts.append("Message reçu : %s" % evt.data)
        received.set()

    def on_close(evt):
        # la websocket est fermée
        alerts.append("La connexion est fermée")
        doc["openbtn"] = False
        doc["closebtn"] = True
        doc["send_button"] = True
        closed.set()

    ws = None

    def _open():
        nonlocal ws
        ws = websocket.websocket(echo_url)
        ws.bind("open", on_open)
        ws.bind("message", on_message)
        ws.bind("close", on_close)

    def send(data):
        if data:
            ws.send(data)

    def close_connection():
        ws.close()
        doc["openbtn"] = False

    _open()
    assert opened.wait(DEADLINE)
    assert ws.readyState == websocket.OPEN
    send("Bonjour, WebSocket ✓")
    assert received.wait(DEADLINE)
    close_connection()
    assert closed.wait(DEADLINE)
    assert alerts == ["Message reçu : Bonjour, WebSocket ✓", "La connexion est fermée"]
    assert doc == {"send_button": True, "closebtn": True, "openbtn": False}
    assert ws.readyState == websocket.CLOSED


def test_seed_callbacks_without_argument(echo_url):
    # The seed's table: open, error and close callbacks take no argument.
    calls = []
    closed = threading.Event()
    ws = websocket.WebSocket(echo_url)
    ws.bind("open", lambda: (calls.append("open"), ws.close()))
    ws.bind("close", lambda: (calls.append("close"), closed.set()))
    assert closed.wait(DEADLINE)
    assert calls == ["open", "close"]


def test_seed_example_program(echo_url):
    example = os.path.join(REPO, "examples", "python", "seed_example.py")
    result = subprocess.run(
        [sys.executable, example, echo_url, "Hello from wsembed", "¡Hola! ✓"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=DEADLINE,
    )
    out = result.stdout.decode("utf-8")
    assert result.returncode == 0, (out, result.stderr.decode())
    assert out.splitlines() == [
        "Connection open",
        "Message received: Hello from wsembed",
        "Message received: ¡Hola! ✓",
        "Connection closed (code 1005, clean)",
    ]
