"""permessage-deflate (RFC 7692) against Python ``websockets``, an
implementation that is not wsembed's: the offer (``deflate=True`` and its
parameters) as the server sees it, what was agreed (``extensions``), and
large messages that come back exact through the callback, blocking and
asyncio clients. In a build without deflate, the options must raise
NotImplementedError."""

import asyncio
import json
import random

import pytest
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Opcode

import wsembed
import wsembed.aio
from recorder import Recorder
from servers import DEADLINE, PythonServer
from wsembed import errors, websocket

needs_deflate = pytest.mark.skipif(
    not wsembed.has_deflate(), reason="this build of wsembed has no deflate"
)


def _json_text(size):
    # An API's answer: the same keys over and over, values that vary, and
    # some non-ASCII text, so the window matters and UTF-8 must survive.
    rng = random.Random(7692)
    records = []
    length = 2
    while length < size:
        record = {
            "id": len(records),
            "name": "user-{:06d}".format(rng.randrange(10**6)),
            "city": rng.choice(["Zürich", "Kraków", "São Paulo", "東京", "Montréal"]),
            "score": round(rng.random() * 1000, 3),
            "active": rng.random() < 0.5,
        }
        records.append(record)
        length += len(json.dumps(record)) + 2
    return json.dumps(records, ensure_ascii=False)


def _binary(size):
    # Half noise, which deflate cannot shrink (stored blocks), half a
    # counting pattern, which it can.
    rng = random.Random(1951)
    noise = rng.getrandbits(8 * (size // 2)).to_bytes(size // 2, "little")
    pattern = b"".join(i.to_bytes(4, "big") for i in range(size // 8))
    return noise + pattern


JSON_TEXT = _json_text(1 << 20)
BINARY = _binary(1 << 20)
# Large and small (under the 1024-byte threshold), text and binary, empty.
MESSAGES = [JSON_TEXT, BINARY, "", b"", "small ✓", bytes(10), JSON_TEXT[:3000], BINARY[-3000:]]


def assert_same(received, sent):
    """Compares messages without pytest printing megabytes on a failure."""
    assert [(type(m).__name__, len(m)) for m in received] == [
        (type(m).__name__, len(m)) for m in sent
    ]
    for i, (got, expected) in enumerate(zip(received, sent)):
        if got != expected:
            first = next(j for j, (a, b) in enumerate(zip(got, expected)) if a != b)
            pytest.fail("message {} differs from offset {}".format(i, first))


def parse(extensions):
    """("permessage-deflate", {"client_max_window_bits=10", ...}) from an
    extensions string; ("", set()) for ""."""
    name, *params = [part.strip() for part in extensions.split(";")]
    return name, set(params)


def echo_blocking(url, messages, **options):
    """Sends every message on a new blocking connection and returns what
    came back, and the agreed extensions."""
    with wsembed.connect(url, **options) as ws:
        for message in messages:
            ws.send(message)
        return [ws.recv(timeout=DEADLINE) for _ in messages], ws.extensions


@pytest.fixture
def compressed(monkeypatch):
    """For each message the servers receive meanwhile, in order, whether it
    came compressed (RSV1 on its first frame): the extensions string only
    says what was agreed, not that we compress."""
    seen = []
    decode = PerMessageDeflate.decode

    def recording(self, frame, *args, **kwargs):
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            seen.append(frame.rsv1)
        return decode(self, frame, *args, **kwargs)

    monkeypatch.setattr(PerMessageDeflate, "decode", recording)
    return seen


@pytest.fixture(scope="module")
def declining_server():
    server = PythonServer(compression=None)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def accepting_server():
    """Grants whatever parameters the client asks for (and no more)."""
    server = PythonServer(compression=None, extensions=[ServerPerMessageDeflateFactory()])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def capped_server():
    """Limits the client's window to 10 bits."""
    server = PythonServer(
        compression=None, extensions=[ServerPerMessageDeflateFactory(client_max_window_bits=10)]
    )
    yield server
    server.stop()


# ----- what was agreed ------------------------------------------------------


def test_not_offered_by_default(python_server):
    # python_server agrees to permessage-deflate when it is offered.
    with wsembed.connect(python_server.url()) as ws:
        assert ws.extensions == ""
        ws.send(JSON_TEXT)
        assert ws.recv(timeout=DEADLINE) == JSON_TEXT


def test_false_options_are_always_accepted(python_server):
    # As insecure_skip_verify=False: the defaults, said out loud, never
    # fail, even in a build without deflate.
    websocket.WebSocket(
        python_server.url(),
        deflate=False,
        deflate_client_no_context_takeover=False,
        deflate_server_no_context_takeover=False,
    ).free()


@needs_deflate
def test_extensions_when_agreed(python_server):
    ws = websocket.WebSocket(python_server.url(), deflate=True)
    recorder = Recorder(ws)
    recorder.wait_type("open")
    name, _ = parse(ws.extensions)
    assert name == "permessage-deflate"
    agreed = ws.extensions
    ws.close()
    recorder.wait_closed()
    assert ws.extensions == agreed
    ws.free()
    # Still readable once the native socket is gone, as protocol is.
    assert ws.extensions == agreed


@needs_deflate
def test_extensions_empty_before_open(hanging_server):
    ws = websocket.WebSocket(hanging_server.url(), deflate=True)
    assert ws.readyState == websocket.CONNECTING
    assert ws.extensions == ""
    ws.free()


@needs_deflate
def test_declined_offer_works_uncompressed(declining_server):
    received, extensions = echo_blocking(declining_server.url(), MESSAGES, deflate=True)
    assert extensions == ""
    assert_same(received, MESSAGES)


# ----- exact echoes, three ways ---------------------------------------------


@needs_deflate
def test_callback_echo_is_exact(python_server):
    ws = websocket.WebSocket(python_server.url(), deflate=True)
    recorder = Recorder(ws)
    recorder.wait_type("open")
    assert parse(ws.extensions)[0] == "permessage-deflate"
    for message in MESSAGES:
        ws.send(message)
    recorder.wait_type("message", len(MESSAGES))
    assert_same(recorder.data(), MESSAGES)
    ws.close()
    recorder.wait_closed()
    assert recorder.events[-1].wasClean
    assert recorder.types() == ["open"] + ["message"] * len(MESSAGES) + ["close"]
    ws.free()


@needs_deflate
def test_blocking_echo_is_exact(python_server, compressed):
    received, extensions = echo_blocking(python_server.url(), MESSAGES, deflate=True)
    assert parse(extensions)[0] == "permessage-deflate"
    assert_same(received, MESSAGES)
    # With context takeover (the default) even small messages shrink
    # against the window, so all are compressed (an empty one may or may
    # not be: either is allowed).
    assert len(compressed) == len(MESSAGES)
    assert all(c for c, m in zip(compressed, MESSAGES) if m)


@needs_deflate
def test_asyncio_echo_is_exact(python_server):
    async def main():
        async with wsembed.aio.connect(python_server.url(), deflate=True) as ws:
            extensions = ws.extensions
            for message in MESSAGES:
                await ws.send(message)
            received = [await ws.recv() for _ in MESSAGES]
        return received, extensions

    received, extensions = asyncio.run(asyncio.wait_for(main(), DEADLINE))
    assert parse(extensions)[0] == "permessage-deflate"
    assert_same(received, MESSAGES)


# ----- the offer's parameters -----------------------------------------------


@needs_deflate
@pytest.mark.parametrize(
    "options, agreed",
    [
        ({}, set()),
        ({"deflate_client_max_window_bits": 10}, {"client_max_window_bits=10"}),
        ({"deflate_server_max_window_bits": 9}, {"server_max_window_bits=9"}),
        ({"deflate_client_no_context_takeover": True}, {"client_no_context_takeover"}),
        ({"deflate_server_no_context_takeover": True}, {"server_no_context_takeover"}),
        (
            {
                "deflate_client_max_window_bits": 9,
                "deflate_server_max_window_bits": 15,
                "deflate_client_no_context_takeover": True,
                "deflate_server_no_context_takeover": True,
            },
            {
                "client_max_window_bits=9",
                "server_max_window_bits=15",
                "client_no_context_takeover",
                "server_no_context_takeover",
            },
        ),
    ],
)
def test_parameters_reach_the_server(accepting_server, options, agreed):
    received, extensions = echo_blocking(
        accepting_server.url(), MESSAGES, deflate=True, **options
    )
    assert parse(extensions) == ("permessage-deflate", agreed)
    assert_same(received, MESSAGES)


@needs_deflate
@pytest.mark.parametrize("client_bits", [None, 10, 12, 15])
def test_server_caps_our_window(capped_server, client_bits):
    # Whatever we offer, the server allows us 10 bits, and its inflater
    # fails on a message compressed with a larger window.
    received, extensions = echo_blocking(
        capped_server.url(),
        MESSAGES,
        deflate=True,
        deflate_client_max_window_bits=client_bits,
    )
    assert "client_max_window_bits=10" in parse(extensions)[1]
    assert_same(received, MESSAGES)


@needs_deflate
@pytest.mark.parametrize("level", [0, 1, 9])
def test_levels(python_server, compressed, level):
    received, extensions = echo_blocking(
        python_server.url(), MESSAGES, deflate=True, deflate_level=level
    )
    assert parse(extensions)[0] == "permessage-deflate"
    assert_same(received, MESSAGES)
    # Level 0 stores, still in the compressed format.
    assert len(compressed) == len(MESSAGES)
    assert all(c for c, m in zip(compressed, MESSAGES) if m)


@needs_deflate
@pytest.mark.parametrize("threshold", [None, 0, 2**40])
def test_threshold_without_context_takeover(python_server, compressed, threshold):
    received, extensions = echo_blocking(
        python_server.url(),
        MESSAGES,
        deflate=True,
        deflate_client_no_context_takeover=True,
        deflate_threshold=threshold,
    )
    assert "client_no_context_takeover" in parse(extensions)[1]
    assert_same(received, MESSAGES)
    limit = 1024 if threshold is None else threshold
    assert compressed == [len(m.encode() if isinstance(m, str) else m) >= limit for m in MESSAGES]


@needs_deflate
def test_parameters_without_deflate_offer_nothing(accepting_server, compressed):
    # They shape an offer that is not made, as pong_timeout without
    # ping_interval.
    received, extensions = echo_blocking(
        accepting_server.url(),
        MESSAGES[:2],
        deflate_client_max_window_bits=10,
        deflate_level=9,
        deflate_threshold=0,
    )
    assert extensions == ""
    assert_same(received, MESSAGES[:2])
    assert compressed == []


# ----- bad values -----------------------------------------------------------


@needs_deflate
@pytest.mark.parametrize(
    "options",
    [
        {"deflate_client_max_window_bits": 8},  # raw deflate cannot honour it
        {"deflate_client_max_window_bits": 1},
        {"deflate_client_max_window_bits": 16},
        {"deflate_server_max_window_bits": 7},
        {"deflate_server_max_window_bits": 16},
        {"deflate_level": 10},
        {"deflate_level": -1},
    ],
)
def test_bad_values_raise_invalid_argument(python_server, options):
    with pytest.raises(wsembed.InvalidArgumentError) as info:
        websocket.WebSocket(python_server.url(), deflate=True, **options)
    assert info.value.status == errors.WS_ERR_INVALID_ARGUMENT
    assert str(info.value)


@needs_deflate
@pytest.mark.parametrize(
    "options, error",
    [
        # What ctypes would wrap into a valid value is refused in Python.
        ({"deflate_client_max_window_bits": 256 + 10}, ValueError),
        ({"deflate_server_max_window_bits": -1}, ValueError),
        ({"deflate_level": 2**32 + 6}, ValueError),
        ({"deflate_threshold": -1}, ValueError),
        ({"deflate_client_max_window_bits": "10"}, TypeError),
        ({"deflate_server_max_window_bits": 10.0}, TypeError),
        ({"deflate_level": True}, TypeError),
        ({"deflate_threshold": 1.5}, TypeError),
        ({"deflate_window_bits": 10}, TypeError),  # no such option
    ],
)
def test_bad_types_and_ranges(python_server, options, error):
    with pytest.raises(error):
        websocket.WebSocket(python_server.url(), deflate=True, **options)


@needs_deflate
def test_bad_values_in_the_blocking_and_asyncio_clients(python_server):
    with pytest.raises(wsembed.InvalidArgumentError):
        wsembed.connect(python_server.url(), deflate=True, deflate_level=10)

    async def main():
        with pytest.raises(wsembed.InvalidArgumentError):
            await wsembed.aio.connect(
                python_server.url(), deflate=True, deflate_client_max_window_bits=8
            )

    asyncio.run(main())


# ----- a build without deflate ----------------------------------------------


@pytest.mark.skipif(wsembed.has_deflate(), reason="this build has deflate")
@pytest.mark.parametrize(
    "option",
    [
        {"deflate": True},
        {"deflate_client_max_window_bits": 10},
        {"deflate_server_no_context_takeover": True},
        {"deflate_threshold": 0},
        {"deflate_level": 6},
    ],
)
def test_deflate_options_without_deflate_are_not_implemented(python_server, option):
    with pytest.raises(NotImplementedError) as info:
        websocket.WebSocket(python_server.url(), **option)
    assert info.value.status == errors.WS_ERR_UNSUPPORTED
    with pytest.raises(NotImplementedError):
        wsembed.connect(python_server.url(), **option)
