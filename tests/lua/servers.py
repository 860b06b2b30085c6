"""Test servers for the Lua binding's tests: the Python binding's own
(bindings/python/tests/servers.py), run as a process. Prints "PORT <n> <m>"
once ready and runs until it is terminated (tests/run-lua.sh kills it).

Port n is `PythonServer`, Python `websockets` (an implementation independent
of wsembed's), routing on the path: / echoes; /close/CODE[/REASON] closes at
once with CODE and REASON (percent-encoded; default "bye"); /send/N sends
"0".."N-1", then echoes; /protocol echoes with the subprotocol "chat" or
"superchat"; /headers sends the request's headers as JSON, then echoes.
Port m is `HangingServer`: it accepts and never answers, so a socket stays
CONNECTING.
"""
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bindings", "python", "tests"))
from servers import HangingServer, PythonServer  # noqa: E402

if __name__ == "__main__":
    websocket, hanging = PythonServer(), HangingServer()
    print("PORT %d %d" % (websocket.port, hanging.port), flush=True)
    threading.Event().wait()  # until killed
