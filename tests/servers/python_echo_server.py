"""An independent WebSocket echo server (Python `websockets`, not written by
this project), for testing wsembed against someone else's implementation.

Listens on 127.0.0.1 on a free port, prints "PORT <n>" once ready, echoes
every message, and exits when its standard input closes. With
`--tls CERT KEY` it serves wss:// with that certificate chain and key.
"""
import asyncio
import ssl
import sys

import websockets


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main():
    context = None
    if len(sys.argv) == 4 and sys.argv[1] == "--tls":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=None, ssl=context) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
