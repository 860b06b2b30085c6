"""Proxies from Python: a SOCKS5 proxy written here (no authentication,
names resolved to 127.0.0.1 whatever they are) between the socket and the
project's echo server, chosen by ``proxy=`` or by the environment."""

import socket
import struct
import threading

import pytest

import wsembed
from recorder import Recorder
from servers import free_port
from wsembed import errors, websocket


class SocksProxy:
    def __init__(self):
        self.asked = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            client, _ = self._listener.accept()
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        def take(n):
            data = b""
            while len(data) < n:
                data += client.recv(n - len(data))
            return data

        _, count = take(2)
        take(count)
        client.sendall(b"\x05\x00")
        _, _, _, atyp = take(4)
        if atyp == 3:
            host = take(take(1)[0]).decode()
        else:
            host = socket.inet_ntop(socket.AF_INET if atyp == 1 else socket.AF_INET6, take(4 if atyp == 1 else 16))
        (port,) = struct.unpack("!H", take(2))
        self.asked.append((atyp, host, port))
        upstream = socket.create_connection(("127.0.0.1", port))
        client.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00")

        def pipe(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    b.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)


def test_socks5h_sends_the_name_to_the_proxy(echo_url):
    proxy = SocksProxy()
    port = int(echo_url.rsplit(":", 1)[1].strip("/"))
    url = "ws://echo.invalid:{}/".format(port)
    with wsembed.connect(url, proxy="socks5h://127.0.0.1:{}".format(proxy.port)) as ws:
        ws.send("through SOCKS")
        assert ws.recv(timeout=10) == "through SOCKS"
    assert proxy.asked == [(3, "echo.invalid", port)]


def test_environment_proxy_skips_loopback_unless_no_proxy_says_otherwise(echo_url, monkeypatch):
    proxy = SocksProxy()
    monkeypatch.setenv("ws_proxy", "socks5://127.0.0.1:{}".format(proxy.port))
    with wsembed.connect(echo_url) as ws:
        ws.send("direct")
        assert ws.recv(timeout=10) == "direct"
    assert proxy.asked == []
    with wsembed.connect(echo_url, no_proxy="") as ws:
        ws.send("proxied")
        assert ws.recv(timeout=10) == "proxied"
    assert [a[0] for a in proxy.asked] == [1]
    with wsembed.connect(echo_url, no_proxy="", proxy_env=False) as ws:
        ws.send("direct again")
        assert ws.recv(timeout=10) == "direct again"
    assert len(proxy.asked) == 1


def test_a_proxy_that_is_not_there_and_bad_proxy_urls():
    ws = websocket.WebSocket("ws://127.0.0.1:9/", proxy="socks5://127.0.0.1:{}".format(free_port()))
    rec = Recorder(ws)
    rec.wait_closed()
    assert rec.of("error")[0].error_code == errors.WS_ERR_CONNECT
    ws.free()
    with pytest.raises(ValueError):
        websocket.WebSocket("ws://127.0.0.1:9/", proxy="ftp://127.0.0.1:21")
    with pytest.raises(ValueError):
        websocket.WebSocket("ws://127.0.0.1:9/", proxy="gopher://127.0.0.1:70")
