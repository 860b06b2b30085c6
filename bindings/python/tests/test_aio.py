"""wsembed.aio: the asyncio client. Each test runs its own event loop."""

import asyncio
import gc
import threading

import pytest

import wsembed
import wsembed._native
import wsembed.aio
from servers import DEADLINE, free_port, late_echo_messages
from wsembed import errors
from wsembed._ffi import lib


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, DEADLINE))


def test_send_recv_and_close(echo_url):
    async def main():
        async with wsembed.aio.connect(echo_url) as ws:
            await ws.send("text ✓")
            await ws.send(bytearray(b"\x00binary"))
            first = await ws.recv()
            second = await ws.recv()
        return first, second, ws.readyState

    assert run(main()) == ("text ✓", b"\x00binary", wsembed.CLOSED)


def test_events_arrive_on_the_loop_thread(python_server):
    async def main():
        loop_thread = threading.get_ident()
        seen = []
        ws = await wsembed.aio.connect(python_server.url())
        original = ws._inbox.record_message

        def record(data):
            seen.append(threading.get_ident())
            original(data)

        ws._inbox.record_message = record
        await ws.send("x")
        await ws.recv()
        await ws.close()
        return seen == [loop_thread]

    assert run(main())


def test_async_for_ends_at_a_clean_close(python_server):
    async def main():
        received = []
        async with wsembed.aio.connect(python_server.url("/send/3")) as ws:
            async for message in ws:
                received.append(message)
                if len(received) == 3:
                    await ws.close()
        return received, ws.close_code

    assert run(main()) == (["0", "1", "2"], 1005)


def test_server_close_raises_on_recv(python_server):
    async def main():
        ws = await wsembed.aio.connect(python_server.url("/close/4002"))
        await ws.wait_closed()
        with pytest.raises(wsembed.ConnectionClosed) as info:
            await ws.recv()
        await ws.close()
        return info.value.code, info.value.reason

    assert run(main()) == (4002, "bye")


def test_connect_failure_raises_connection_closed():
    async def main():
        with pytest.raises(wsembed.ConnectionClosed) as info:
            await wsembed.aio.connect("ws://127.0.0.1:{}/".format(free_port()))
        return info.value.status

    assert run(main()) == errors.WS_ERR_CONNECT


def test_recv_can_be_bounded_and_cancelled(python_server):
    async def main():
        async with wsembed.aio.connect(python_server.url()) as ws:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.2)
            # A cancelled recv leaves the next one working.
            await ws.send("after the timeout")
            return await ws.recv()

    assert run(main()) == "after the timeout"


def test_many_concurrent_connections(echo_url):
    async def one(i):
        async with wsembed.aio.connect(echo_url) as ws:
            await ws.send("n{}".format(i))
            return await ws.recv()

    async def main():
        return await asyncio.gather(*(one(i) for i in range(50)))

    assert run(main()) == ["n{}".format(i) for i in range(50)]


def test_connection_dropped_with_its_loop(python_server):
    # The loop ends with the socket still open: events that come later
    # find the loop closed and are dropped quietly.
    async def main():
        return await wsembed.aio.connect(python_server.url("/send/5"))

    ws = run(main())
    del ws


def test_send_waits_for_room_in_a_full_queue(python_server):
    # The server reads nothing for half a second: sends wait for the queue
    # to drain instead of raising QueueFullError, and every message is
    # echoed, whole and in order.
    messages = late_echo_messages()

    async def main():
        url = python_server.url("/late-echo/0.5")
        async with wsembed.aio.connect(url, max_send_queue=512 * 1024) as ws:
            for message in messages:
                await ws.send(message)
            assert ws._room.waits
            return [await ws.recv() for _ in messages]

    assert run(main()) == messages


def test_a_waiting_send_raises_when_the_connection_closes(python_server):
    async def main():
        url = python_server.url("/stall")
        ws = await wsembed.aio.connect(url, max_send_queue=64 * 1024, close_timeout=0.2)
        chunk = b"x" * (64 * 1024)

        async def flood():
            while True:
                await ws.send(chunk)

        sender = asyncio.ensure_future(flood())
        while ws._room is None or not ws._room.waits:
            # Until a send found the queue full and sleeps.
            await asyncio.sleep(0.01)
        assert not sender.done()
        await ws.close()
        with pytest.raises(wsembed.InvalidStateError):
            await sender

    run(main())


# ----- the loop's dispatcher -------------------------------------------------


def test_callbacks_run_on_the_loop_thread_without_a_hop(python_server, monkeypatch):
    # The C callback itself (the trampoline calling the socket's handler)
    # runs on the loop's thread, inside the loop's reader: no event is
    # passed from the IO thread with call_soon_threadsafe.
    seen = []
    deliver = wsembed._native.NativeSocket._deliver

    def recording_deliver(self, key, event):
        seen.append(threading.get_ident())
        deliver(self, key, event)

    monkeypatch.setattr(wsembed._native.NativeSocket, "_deliver", recording_deliver)

    async def main():
        loop = asyncio.get_running_loop()
        hops = []
        call_soon_threadsafe = loop.call_soon_threadsafe

        def counting(*args, **kwargs):
            hops.append(args)
            return call_soon_threadsafe(*args, **kwargs)

        loop.call_soon_threadsafe = counting
        try:
            async with wsembed.aio.connect(python_server.url()) as ws:
                for i in range(5):
                    await ws.send("n{}".format(i))
                    assert await ws.recv() == "n{}".format(i)
        finally:
            del loop.call_soon_threadsafe
        return threading.get_ident(), hops

    loop_thread, hops = run(main())
    assert hops == []
    # open, five messages, close.
    assert len(seen) == 7
    assert set(seen) == {loop_thread}


def test_one_dispatcher_per_loop_freed_with_its_last_connection(python_server):
    async def main():
        loop = asyncio.get_running_loop()
        a = await wsembed.aio.connect(python_server.url())
        hub = wsembed.aio._loop_dispatchers[loop]
        b = await wsembed.aio.connect(python_server.url())
        assert wsembed.aio._loop_dispatchers[loop] is hub
        assert a._native.dispatcher is b._native.dispatcher is hub.dispatcher
        handle, fd = hub.dispatcher.handle, hub.dispatcher.fileno()
        await a.close()
        assert not hub.freed
        await b.send("still served")
        assert await b.recv() == "still served"
        await b.close()
        # Freed with its last socket, its reader removed first.
        assert hub.freed and loop not in wsembed.aio._loop_dispatchers
        assert lib.ws_dispatcher_fd(handle) == errors.WS_ERR_INVALID_HANDLE
        assert loop.remove_reader(fd) is False
        # The next connection gets a new one.
        async with wsembed.aio.connect(python_server.url()) as c:
            assert c._native.dispatcher.handle != handle
            await c.send("again")
            return await c.recv()

    assert run(main()) == "again"


def test_loops_on_two_threads_have_their_own_dispatchers(echo_url, monkeypatch):
    seen = []
    deliver = wsembed._native.NativeSocket._deliver

    def recording_deliver(self, key, event):
        seen.append((self.dispatcher.handle, threading.get_ident()))
        deliver(self, key, event)

    monkeypatch.setattr(wsembed._native.NativeSocket, "_deliver", recording_deliver)
    results = {}
    barrier = threading.Barrier(2)

    async def client(name):
        async with wsembed.aio.connect(echo_url) as ws:
            # Both connections open at once, one on each loop.
            await asyncio.get_running_loop().run_in_executor(None, barrier.wait, DEADLINE)
            for i in range(20):
                await ws.send("{} {}".format(name, i))
                assert await ws.recv() == "{} {}".format(name, i)
            results[name] = (threading.get_ident(), ws._native.dispatcher.handle)

    threads = [threading.Thread(target=run, args=(client(n),)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    assert sorted(results) == ["a", "b"]
    (thread_a, handle_a), (thread_b, handle_b) = results["a"], results["b"]
    assert handle_a != handle_b
    assert set(seen) == {(handle_a, thread_a), (handle_b, thread_b)}


def test_a_connection_outliving_its_loop_frees_the_dispatcher(python_server):
    async def main():
        return await wsembed.aio.connect(python_server.url("/send/5"))

    ws = run(main())
    handle = ws._native.dispatcher.handle
    assert lib.ws_dispatcher_fd(handle) >= 0
    del ws
    gc.collect()
    assert lib.ws_dispatcher_fd(handle) == errors.WS_ERR_INVALID_HANDLE


def test_a_failed_open_leaves_no_dispatcher():
    async def main():
        loop = asyncio.get_running_loop()
        with pytest.raises(ValueError):
            await wsembed.aio.connect("http://127.0.0.1/")
        with pytest.raises(TypeError):
            await wsembed.aio.connect("ws://127.0.0.1/", no_such_option=1)
        with pytest.raises(wsembed.ConnectionClosed):
            await wsembed.aio.connect("ws://127.0.0.1:{}/".format(free_port()))
        return loop in wsembed.aio._loop_dispatchers

    assert run(main()) is False
