#!/usr/bin/env python3
"""The independent permessage-deflate peer of figure 6 of benches/run: a
Python `websockets` echo server with compression as that library ships
it (`compression="deflate"`, its default: both windows 12 bits, memLevel
5), so wsembed's stream is also timed against someone else's codec.

    deflate_peer.py

Listens on 127.0.0.1 on a free port, prints "PORT <n>" once ready, echoes
every message (text as text, binary as binary) and exits when its stdin
closes, like `wsbench server`. Text comes back as the str the library
made of it (decoding and encoding 64 KiB of ASCII is a few percent of
inflating and deflating it).
"""

import asyncio
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main():
    # No size limit of its own (1 MiB by default): the harness picks the size.
    async with serve(echo, "127.0.0.1", 0, compression="deflate", max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        print("PORT {}".format(port), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
