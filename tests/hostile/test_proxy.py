"""The fault proxy itself: traffic passes, then hangs, drops and is refused."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.hostile.proxy import TcpProxy


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield port
    server.close()


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data)


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=1)


def test_passes_hangs_drops_and_refuses(echo_port: int) -> None:
    with TcpProxy("127.0.0.1", echo_port) as proxy:
        client = _connect(proxy.port)
        client.sendall(b"ping")
        assert client.recv(4) == b"ping"

        proxy.hang()
        client.sendall(b"lost")
        with pytest.raises(TimeoutError):
            client.recv(4)

        proxy.pass_through()
        assert client.recv(4) == b"lost"  # held bytes flow once the hang ends

        proxy.drop()
        assert client.recv(4) == b""  # closed by the proxy

        proxy.refuse()
        with _connect(proxy.port) as refused:
            assert refused.recv(4) == b""
        client.close()
