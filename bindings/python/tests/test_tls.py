"""wss:// against a Python server whose certificate comes from a private CA
made here (trustme). Runs when the library has TLS (``ws_has_tls()``);
without it, wss:// must raise NotImplementedError (test_errors.py)."""

import ssl

import pytest

import wsembed
from recorder import Recorder
from servers import PythonServer
from wsembed import errors, websocket

pytestmark = pytest.mark.skipif(not wsembed.has_tls(), reason="this build of wsembed has no TLS")


@pytest.fixture(scope="module")
def ca():
    trustme = pytest.importorskip("trustme")
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_server(ca):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server = PythonServer(ssl_context=context)
    yield server
    server.stop()


def test_wss_with_the_ca_as_pem_text(ca, tls_server):
    ws = websocket.WebSocket(tls_server.url(), ca_pem=ca.cert_pem.bytes().decode())
    recorder = Recorder(ws)
    recorder.wait_type("open")
    ws.send("over TLS ✓")
    ws.send(b"\x00\x01")
    recorder.wait_type("message", 2)
    assert recorder.data() == ["over TLS ✓", b"\x00\x01"]
    ws.close()
    recorder.wait_closed()
    assert recorder.events[-1].wasClean


def test_wss_with_the_ca_as_a_file(ca, tls_server, tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with wsembed.connect(tls_server.url(), ca_file=ca_file) as ws:
        ws.send("file CA")
        assert ws.recv(timeout=30) == "file CA"


def test_wss_asyncio(ca, tls_server):
    import asyncio

    import wsembed.aio

    async def main():
        async with wsembed.aio.connect(tls_server.url(), ca_pem=ca.cert_pem.bytes()) as ws:
            await ws.send("aio over TLS")
            return await ws.recv()

    assert asyncio.run(main()) == "aio over TLS"


def test_unknown_ca_fails_with_a_tls_error(tls_server):
    with pytest.raises(wsembed.ConnectionClosed) as info:
        wsembed.connect(tls_server.url())
    assert info.value.error_code == errors.WS_ERR_TLS


def test_insecure_skip_verify_accepts_any_certificate(tls_server):
    with wsembed.connect(tls_server.url(), insecure_skip_verify=True) as ws:
        ws.send("unverified")
        assert ws.recv(timeout=30) == "unverified"
