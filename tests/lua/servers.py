"""Test server for the Lua binding's tests (Python `websockets`, an
implementation independent of wsembed's). Listens on 127.0.0.1 on a free
port, prints "PORT <n> <m>" once ready, and runs until it is terminated
(tests/run-lua.sh kills it). On port m a plain TCP server accepts
connections and never answers, so a socket stays CONNECTING. On port n
the WebSocket server routes on the path:

  /                      echoes every message
  /close/CODE[/REASON]   closes at once with CODE and REASON
                         (percent-encoded; default "bye")
  /send/N                sends the text messages "0".."N-1", then echoes
  /protocol              echoes, with the subprotocol "chat" or "superchat"
  /headers               sends the request's headers as JSON, then echoes
"""
import asyncio
import json
from urllib.parse import unquote

from websockets.asyncio.server import serve


def select_subprotocol(connection, offered):
    if connection.request.path != "/protocol":
        return None
    for protocol in ("chat", "superchat"):
        if protocol in offered:
            return protocol
    return None


async def handle(ws):
    path = ws.request.path
    try:
        if path.startswith("/close/"):
            _, _, code, *reason = path.split("/", 3)
            await ws.close(int(code), unquote(reason[0]) if reason else "bye")
            return
        if path == "/headers":
            await ws.send(json.dumps(dict(ws.request.headers.raw_items())))
        if path.startswith("/send/"):
            for i in range(int(path.rsplit("/", 1)[1])):
                await ws.send(str(i))
        async for message in ws:
            await ws.send(message)
    except Exception:
        pass


async def hang(reader, writer):
    await asyncio.Future()  # never answers the opening handshake


async def main():
    hanging = await asyncio.start_server(hang, "127.0.0.1", 0)
    async with serve(
        handle, "127.0.0.1", 0, max_size=None, select_subprotocol=select_subprotocol
    ) as server:
        ports = (server.sockets[0].getsockname()[1], hanging.sockets[0].getsockname()[1])
        print("PORT %d %d" % ports, flush=True)
        await asyncio.Future()  # until killed


if __name__ == "__main__":
    asyncio.run(main())
