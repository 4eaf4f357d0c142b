"""A TCP proxy on 127.0.0.1 that breaks a database connection on purpose.

    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = postgres_url_with_port(proxy.port)
        ...                      # traffic passes
        proxy.hang()             # connections stay open, nothing is forwarded
        proxy.drop()             # every open connection is closed at once
        proxy.refuse()           # new connections are closed as soon as they open
        proxy.pass_through()     # back to normal

A hung server is the case a refused connection does not test: the client waits for
bytes that never come, so only its own timeouts (connect, keepalive, statement)
end the wait.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from types import TracebackType

PASS, HANG, REFUSE = "pass", "hang", "refuse"


class TcpProxy:
    """Forward 127.0.0.1:<port> to (`host`, `target_port`), in a daemon thread."""

    def __init__(self, host: str, target_port: int) -> None:
        self.target = (host, target_port)
        self.mode = PASS
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._peers: dict[socket.socket, socket.socket] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tcp-proxy", daemon=True)

    # -------------------------------------------------------------- control

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    def pass_through(self) -> None:
        self.mode = PASS

    def hang(self) -> None:
        """Keep every connection open but forward nothing, either way."""
        self.mode = HANG

    def refuse(self) -> None:
        """Close new connections at once and drop the open ones."""
        self.mode = REFUSE
        self.drop()

    def drop(self) -> None:
        """Close every open connection (new ones are accepted as the mode says)."""
        with self._lock:
            for sock in list(self._peers):
                self._close(sock)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self.drop()
        self._listener.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -------------------------------------------------------------- the loop

    def _serve(self) -> None:
        while not self._stopped.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    self._accept()
                elif self.mode == PASS:
                    self._forward(sock)
            if self.mode != PASS:
                # Sockets stay readable while nothing is read: don't spin on them.
                self._stopped.wait(0.05)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        if self.mode == REFUSE:
            client.close()
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.setblocking(False)
        with self._lock:
            self._peers[client] = upstream
            self._peers[upstream] = client
            self._selector.register(client, selectors.EVENT_READ, None)
            self._selector.register(upstream, selectors.EVENT_READ, None)

    def _forward(self, sock: socket.socket) -> None:
        with self._lock:
            peer = self._peers.get(sock)
            if peer is None:
                return
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._close(sock)
                return
            try:
                peer.setblocking(True)
                peer.sendall(data)
                peer.setblocking(False)
            except OSError:
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        """Close `sock` and its peer (the lock is held)."""
        peer = self._peers.pop(sock, None)
        for each in (sock, peer):
            if each is None:
                continue
            self._peers.pop(each, None)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(each)
            each.close()
