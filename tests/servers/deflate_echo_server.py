"""An independent permessage-deflate echo server (Python `websockets`, not
written by this project), for testing wsembed's compression against someone
else's implementation.

Listens on 127.0.0.1 on a free port, prints "PORT <n>" once ready, echoes
every message (text as text, binary as binary), and exits when its standard
input closes. The options set the server's side of the negotiation:

    --client-max-window-bits N     limit the client's window (needs the
                                   client to offer the parameter)
    --server-max-window-bits N     compress with at most this window
    --client-no-context-takeover   require the client to reset its context
    --server-no-context-takeover   reset our context after each message
"""
import argparse
import asyncio
import sys

import websockets
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--client-max-window-bits", type=int)
    parser.add_argument("--server-max-window-bits", type=int)
    parser.add_argument("--client-no-context-takeover", action="store_true")
    parser.add_argument("--server-no-context-takeover", action="store_true")
    args = parser.parse_args()
    factory = ServerPerMessageDeflateFactory(
        server_no_context_takeover=args.server_no_context_takeover,
        client_no_context_takeover=args.client_no_context_takeover,
        server_max_window_bits=args.server_max_window_bits,
        client_max_window_bits=args.client_max_window_bits,
    )
    async with websockets.serve(
        echo, "127.0.0.1", 0, max_size=None, compression=None, extensions=[factory]
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
