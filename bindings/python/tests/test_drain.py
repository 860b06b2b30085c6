"""The drain signal: the callback API's ``bufferedamountlow`` event and
``bufferedAmountLowThreshold``, and the blocking and asyncio sends that
wait for that event when the send queue is full.

The servers here are raw sockets (drain_reader.py) rather than
``websockets``: the tests decide when the peer reads, and the 256 MiB
producers need a reader that checks every message without being the
Python server's pace, in a process of its own.
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

import wsembed
import wsembed.aio
from drain_reader import accept_handshake, message
from servers import DEADLINE, wait_until
from wsembed import _drain, _ffi, errors, websocket

KiB = 1 << 10
MiB = 1 << 20

# The producers: 256 MiB in 64 KiB messages through a 1 MiB send queue.
VOLUME = 256 * MiB
SIZE = 64 * KiB
QUEUE = 1 * MiB
READER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "drain_reader.py")

# How long to wait for an event that must not come: it would follow the
# fall it reports within a write of the IO thread.
QUIET = 0.2


class GatedServer:
    """A raw WebSocket server (one connection) that reads, and discards,
    only while open: the test decides when bufferedAmount falls."""

    def __init__(self):
        self._listener = socket.socket()
        # A small window, so that a stalled peer fills the client's queue
        # after a little data rather than after the loopback's buffers.
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * KiB)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self.port = self._listener.getsockname()[1]
        self.read = 0
        # `wanted`: the test lets it read; `reading`: it may be inside a
        # recv. Both under `_changed`, so that stall() returns only once
        # no read can happen (one under way would let bufferedAmount fall
        # when the test means it to stay).
        self._changed = threading.Condition()
        self._wanted = False
        self._reading = False
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            connection, _ = self._listener.accept()
        except OSError:
            return
        with connection:
            try:
                accept_handshake(connection)
            except OSError:
                return  # the client left first: nothing to read
            # Short, so that a read parks soon after stall() asks.
            connection.settimeout(0.01)
            while True:
                with self._changed:
                    if not self._wanted:
                        self._reading = False
                        self._changed.notify_all()
                        self._changed.wait_for(lambda: self._wanted or self._stopped)
                    if self._stopped:
                        return
                    self._reading = True
                try:
                    chunk = connection.recv(MiB)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                self.read += len(chunk)

    def open(self):
        with self._changed:
            self._wanted = True
            self._changed.notify_all()

    def stall(self):
        with self._changed:
            self._wanted = False
            assert self._changed.wait_for(lambda: not self._reading, DEADLINE)

    def url(self):
        return "ws://127.0.0.1:{}/".format(self.port)

    def stop(self):
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        self._listener.close()
        self._thread.join(DEADLINE)


@pytest.fixture
def gated():
    server = GatedServer()
    yield server
    server.stop()


class Lows:
    """Records the ``bufferedamountlow`` events of a WebSocket."""

    def __init__(self):
        self.events = []
        self._changed = threading.Condition()

    def __call__(self, event):
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_count(self, count):
        with self._changed:
            return self._changed.wait_for(lambda: len(self.events) >= count, DEADLINE)


def open_websocket(url, **options):
    ws = websocket.WebSocket(url, **options)
    opened = threading.Event()
    ws.bind("open", opened.set)
    assert opened.wait(DEADLINE)
    return ws


def fill(ws, above, chunk, below=None):
    """Sends ``chunk`` until bufferedAmount is above ``above`` (the peer
    stalled: the kernel's buffers fill first, then the library's queue).
    With ``below``, also never lets a send take it past ``below``."""
    sent = 0
    while ws.bufferedAmount <= above:
        if below is not None and ws.bufferedAmount + len(chunk) > below:
            break
        ws.send(chunk)
        sent += len(chunk)
        assert sent < 512 * MiB, "the queue never filled"


def fill_and_settle(ws, above, chunk):
    """``fill``, again and again until a quiet pause leaves the level above
    ``above``: while the peer's window closes, and while the kernel's
    buffers keep growing (autotuning), the kernel may still take some of
    the queue, a fall that the event rightly reports; what follows must
    start from a steady level above ``above``."""
    for _ in range(50):
        fill(ws, above, chunk)
        time.sleep(QUIET)
        if ws.bufferedAmount > above:
            return
    raise AssertionError("bufferedAmount never settled above {}".format(above))


def drain(server, ws):
    server.open()
    assert wait_until(lambda: ws.bufferedAmount == 0, interval=0.001)
    time.sleep(QUIET)
    server.stall()


# ----- the callback API --------------------------------------------------------


def test_event_fires_once_per_fall_through_the_threshold(gated):
    threshold = 256 * KiB
    chunk = b"x" * (16 * KiB)
    ws = open_websocket(gated.url())
    try:
        lows = Lows()
        ws.bind("bufferedamountlow", lows)
        ws.bufferedAmountLowThreshold = threshold

        # Up to half the threshold and back to 0: never above it, no event.
        fill(ws, threshold // 2, chunk, below=threshold)
        drain(gated, ws)
        assert lows.events == []

        # Above it and back to 0: one event, at the crossing, not again on
        # the way down to 0.
        fill_and_settle(ws, 2 * threshold, chunk)
        before = len(lows.events)
        drain(gated, ws)
        assert len(lows.events) == before + 1
        event = lows.events[-1]
        assert event.type == "bufferedamountlow"
        assert 0 <= event.bufferedAmount <= threshold
        assert event.target is ws
        assert "bufferedAmount={}".format(event.bufferedAmount) in repr(event)

        # Each fall is reported.
        fill_and_settle(ws, 2 * threshold, chunk)
        before = len(lows.events)
        drain(gated, ws)
        assert len(lows.events) == before + 1
        assert lows.events[-1].bufferedAmount <= threshold
    finally:
        ws.free()


def test_default_threshold_reports_an_empty_queue(gated):
    gated.open()
    ws = open_websocket(gated.url())
    try:
        assert ws.bufferedAmountLowThreshold == 0
        lows = Lows()
        ws.bind("bufferedamountlow", lows)
        for count in (1, 2):
            ws.send(b"y" * (64 * KiB))
            assert lows.wait_count(count)
            assert lows.events[-1].bufferedAmount == 0
        time.sleep(QUIET)
        assert len(lows.events) == 2

        # Unbound: the library stops watching, and nothing more comes.
        ws.unbind("bufferedamountlow", lows)
        ws.send(b"y" * (64 * KiB))
        assert wait_until(lambda: ws.bufferedAmount == 0, interval=0.001)
        time.sleep(QUIET)
        assert len(lows.events) == 2
    finally:
        ws.free()


def test_event_callback_may_take_no_argument(gated):
    gated.open()
    ws = open_websocket(gated.url())
    try:
        fired = threading.Event()
        ws.bind("bufferedamountlow", fired.set)
        ws.send(b"z" * 1024)
        assert fired.wait(DEADLINE)
    finally:
        ws.free()


def test_threshold_property(gated):
    ws = open_websocket(gated.url())
    other = None
    try:
        assert ws.bufferedAmountLowThreshold == 0
        ws.bufferedAmountLowThreshold = 12345
        assert ws.bufferedAmountLowThreshold == 12345
        ws.bufferedAmountLowThreshold = 0
        assert ws.bufferedAmountLowThreshold == 0
        for bad, error in ((-1, ValueError), (2 ** 64, ValueError), (1.5, TypeError), (True, TypeError)):
            with pytest.raises(error):
                ws.bufferedAmountLowThreshold = bad
        assert ws.bufferedAmountLowThreshold == 0
        ws.bufferedAmountLowThreshold = 7
        # Per socket, not per class.
        other = websocket.WebSocket(gated.url())
        assert other.bufferedAmountLowThreshold == 0
    finally:
        ws.free()
        if other is not None:
            other.free()
    with pytest.raises(errors.InvalidStateError):
        ws.bufferedAmountLowThreshold = 1
    assert ws.bufferedAmountLowThreshold == 7


def test_unknown_event_name_lists_bufferedamountlow(gated):
    ws = websocket.WebSocket(gated.url())
    try:
        with pytest.raises(ValueError, match="bufferedamountlow"):
            ws.bind("drain", print)
    finally:
        ws.free()


# ----- the blocking and asyncio sends ----------------------------------------------


class FakeNative:
    """What a Room uses of a NativeSocket, to watch its thresholds."""

    def __init__(self):
        self.bound = []
        self.thresholds = []
        self.buffered_amount = 0
        self.ready_state = wsembed.OPEN

    def bind(self, kind, handler):
        self.bound.append(kind)

    def set_low_threshold(self, size):
        self.thresholds.append(size)


def test_room_threshold_is_the_lowest_need_of_those_waiting():
    native = FakeNative()
    room = _drain.Room(native, 1000, lambda event: None)
    assert native.bound == [_ffi.WS_EVENT_BUFFERED_AMOUNT_LOW]
    small = room.enter(100)
    assert (small, native.thresholds) == (900, [900])
    big = room.enter(700)
    assert (big, native.thresholds) == (300, [900, 300])
    # Another small one changes nothing: the big one still needs 300.
    other = room.enter(100)
    assert native.thresholds == [900, 300]
    assert room.leave(other) is False
    # The big one done: the threshold rises to what the rest need, and
    # they must look again (the queue may already be below it).
    assert room.leave(big) is True
    assert native.thresholds == [900, 300, 900]
    assert room.leave(small) is False
    # Left where it was: a later sender of the same size sets nothing.
    room.enter(100)
    assert native.thresholds == [900, 300, 900]
    # A message over the limit cannot need less than an empty queue.
    room.enter(5000)
    assert native.thresholds[-1] == 0

    native.buffered_amount = 250
    assert room.fits(300) and not room.fits(200)
    native.ready_state = wsembed.CLOSING
    assert room.fits(200)


def test_size_of_counts_bytes_as_the_library_does():
    assert _drain.size_of("abc") == 3
    assert _drain.size_of("é✓") == 5
    assert _drain.size_of(b"abcd") == 4
    assert _drain.size_of(bytearray(7)) == 7
    assert _drain.size_of(memoryview(bytes(12)).cast("I")) == 12


def test_blocking_send_binds_the_signal_only_once_the_queue_fills(gated):
    gated.open()
    with wsembed.connect(gated.url(), max_send_queue=256 * KiB, close_timeout=0.2) as ws:
        ws.send(b"a" * 1024)
        assert ws._room is None
        gated.stall()
        sender_error = []

        def flood():
            try:
                while True:
                    ws.send(b"b" * (32 * KiB))
            except Exception as error:
                sender_error.append(error)

        sender = threading.Thread(target=flood)
        sender.start()
        assert wait_until(lambda: ws._room is not None and ws._room.waits)
        # The waiting send gives up when the connection closes.
        ws.close()
        sender.join(DEADLINE)
        assert not sender.is_alive()
    assert len(sender_error) == 1
    assert isinstance(sender_error[0], errors.InvalidStateError)


def test_a_message_over_the_queue_limit_never_waits(gated):
    with wsembed.connect(gated.url(), max_send_queue=64 * KiB, close_timeout=0.2) as ws:
        with pytest.raises(wsembed.QueueFullError):
            while True:
                ws._native.send(b"c" * (16 * KiB))
        # It could never fit: the library refuses it as too large, not as
        # queue full, so it raises at once, full queue or not.
        with pytest.raises(errors.InvalidArgumentError) as info:
            ws.send(b"d" * (64 * KiB + 1))
        assert info.value.status == errors.WS_ERR_TOO_LARGE
        assert ws._room is None


def test_a_message_over_the_queue_limit_never_waits_in_asyncio(gated):
    async def main():
        async with wsembed.aio.connect(gated.url(), max_send_queue=64 * KiB, close_timeout=0.2) as ws:
            with pytest.raises(wsembed.QueueFullError):
                while True:
                    ws._native.send(b"c" * (16 * KiB))
            with pytest.raises(errors.InvalidArgumentError):
                await ws.send(b"d" * (64 * KiB + 1))
            assert ws._room is None

    asyncio.run(asyncio.wait_for(main(), DEADLINE))


def test_blocking_senders_of_different_sizes_all_get_through(gated):
    # The threshold serves the sender that needs the most room; a small
    # sender's success must not leave the big one waiting on a fall that
    # the threshold no longer reports.
    gated.open()
    big, small = 700 * KiB, 16 * KiB
    counts = {big: 40, small: 1500}
    with wsembed.connect(gated.url(), max_send_queue=QUEUE, close_timeout=1) as ws:
        done = []

        def produce(size):
            chunk = b"e" * size
            for _ in range(counts[size]):
                ws.send(chunk)
            done.append(size)

        threads = [threading.Thread(target=produce, args=(size,)) for size in counts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DEADLINE)
        assert sorted(done) == sorted(counts)
        assert ws._room.waits
    total = sum(size * count for size, count in counts.items())
    assert wait_until(lambda: gated.read >= total)


@pytest.mark.parametrize("delivery", ["dispatcher", "threadsafe"])
def test_aio_senders_of_different_sizes_all_get_through(gated, monkeypatch, delivery):
    if delivery == "threadsafe":
        # As on a loop without add_reader: events, the drain signal among
        # them, come from the IO thread through call_soon_threadsafe.
        monkeypatch.setattr(wsembed.aio._LoopDispatcher, "of", classmethod(lambda cls, loop: None))
    gated.open()
    big, small = 700 * KiB, 16 * KiB

    async def produce(ws, size, count):
        chunk = b"f" * size
        for _ in range(count):
            await ws.send(chunk)

    async def main():
        async with wsembed.aio.connect(gated.url(), max_send_queue=QUEUE, close_timeout=1) as ws:
            await asyncio.gather(produce(ws, big, 40), produce(ws, small, 1500))
            assert (ws._native.dispatcher is None) == (delivery == "threadsafe")
            return ws._room.waits

    assert asyncio.run(asyncio.wait_for(main(), DEADLINE))
    assert wait_until(lambda: gated.read >= 40 * big + 1500 * small)


def test_cli_waits_for_the_drain_signal(gated):
    # python -m wsembed sends each input line from its input thread; a
    # line that finds the queue full waits for the signal, then goes.
    from wsembed.__main__ import _Session, _send_line

    queue = 64 * KiB
    session = _Session(False, queue)
    ws = open_websocket(gated.url(), max_send_queue=queue)
    line = b"g" * (16 * KiB)
    # 32 MiB: more than the kernel's buffers take before the queue fills.
    lines = 2000
    sent = []
    try:
        sender = threading.Thread(
            target=lambda: sent.extend(_send_line(ws, session, line, True) for _ in range(lines))
        )
        sender.start()
        assert wait_until(lambda: session.draining)
        assert sender.is_alive()
        assert ws.bufferedAmountLowThreshold == queue - len(line)
        gated.open()
        sender.join(DEADLINE)
        assert sent == [True] * lines
        assert wait_until(lambda: gated.read >= lines * len(line))
    finally:
        session.update(closed=True)
        ws.free()


# ----- 256 MiB through a 1 MiB queue ---------------------------------------------


class Reader:
    """drain_reader.py in a process of its own: checks every message."""

    def __init__(self):
        self._process = subprocess.Popen(
            [sys.executable, READER, str(SIZE)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        line = self._process.stdout.readline().decode()
        assert line.startswith("port "), line
        self.url = "ws://127.0.0.1:{}/".format(int(line.split()[1]))

    def result(self):
        out, _ = self._process.communicate(timeout=DEADLINE)
        return json.loads(out.decode().strip().splitlines()[-1])

    def kill(self):
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait(DEADLINE)


@pytest.fixture
def reader():
    process = Reader()
    yield process
    process.kill()


@pytest.fixture(scope="module")
def throughput():
    """Producer throughput by client and way of waiting; printed at the end
    (visible with ``pytest -s``). Only reported: timing depends on the
    machine."""
    results = {}
    yield results
    if results:
        print("\n\n{} MiB through a {} MiB send queue, {} KiB messages, to a reader "
              "in another process:".format(VOLUME // MiB, QUEUE // MiB, SIZE // KiB))
        for name, rate in sorted(results.items()):
            print("  {:<18} {:8.1f} MiB/s".format(name, rate))


# The old send loop, kept only to compare: retries after pauses that
# double from 0.5 ms to 50 ms, as the clients did before the drain signal.
def _old_pauses():
    pause = 0.0005
    while True:
        yield pause
        pause = min(pause * 2, 0.05)


def _polling_send(ws, data):
    pauses = None
    while True:
        try:
            return ws._native.send(data)
        except wsembed.QueueFullError:
            pauses = pauses or _old_pauses()
            time.sleep(next(pauses))


async def _polling_send_aio(ws, data):
    pauses = None
    while True:
        try:
            return ws._native.send(data)
        except wsembed.QueueFullError:
            pauses = pauses or _old_pauses()
            await asyncio.sleep(next(pauses))


def _check(reader, elapsed, throughput, name):
    result = reader.result()
    assert result["error"] is None
    assert result["messages"] == VOLUME // SIZE
    assert result["bytes"] == VOLUME
    assert result["close"] == 1000
    throughput[name] = VOLUME / MiB / elapsed


@pytest.mark.parametrize("way", ["drain", "polling"])
def test_blocking_producer_through_a_small_queue(reader, throughput, way):
    send = wsembed.blocking.Connection.send if way == "drain" else _polling_send
    outcome = {}

    def produce():
        with wsembed.connect(reader.url, max_send_queue=QUEUE) as ws:
            start = time.perf_counter()
            for seq in range(VOLUME // SIZE):
                send(ws, message(seq, SIZE))
            # Done once the reader has all of it: it answers the close
            # after the last message.
            ws.close(1000)
            outcome["elapsed"] = time.perf_counter() - start

    producer = threading.Thread(target=produce)
    producer.start()
    producer.join(DEADLINE)
    if producer.is_alive():
        reader.kill()  # fails the connection, so the producer ends too
        producer.join(DEADLINE)
        pytest.fail("the producer hung")
    # Whether the sends had to wait depends on which side the scheduler
    # favoured; the gated tests above check the waiting itself. This one
    # checks that everything arrives, in order, through a small queue.
    _check(reader, outcome["elapsed"], throughput, "blocking, " + way)


@pytest.mark.parametrize("way", ["drain", "polling"])
def test_aio_producer_through_a_small_queue(reader, throughput, way):
    send = wsembed.aio.Connection.send if way == "drain" else _polling_send_aio

    async def produce():
        async with wsembed.aio.connect(reader.url, max_send_queue=QUEUE) as ws:
            start = time.perf_counter()
            for seq in range(VOLUME // SIZE):
                await send(ws, message(seq, SIZE))
            await ws.close(1000)
            elapsed = time.perf_counter() - start
            return elapsed

    # As above: whether the sends waited is the scheduler's choice.
    elapsed = asyncio.run(asyncio.wait_for(produce(), DEADLINE))
    _check(reader, elapsed, throughput, "asyncio, " + way)
