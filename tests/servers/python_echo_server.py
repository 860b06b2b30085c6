"""An independent WebSocket echo server (Python `websockets`, not written by
this project), for testing wsembed against someone else's implementation.

Listens on 127.0.0.1 on a free port, prints "PORT <n>" once ready, echoes
every message, and exits when its standard input closes.
"""
import asyncio
import sys

import websockets


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
