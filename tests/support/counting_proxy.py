"""Counting the broker connections a test opens, without patching the app: ``BROKER_URL``
points at a TCP proxy to the real broker for the test, and the proxy notes every
connection it forwards (blocking or asynchronous, whoever opened it)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from messaging import conf


class CountingProxy:
    """Forwards each connection to ``host:port``; :attr:`opened` holds the client address
    of every connection accepted (a test may clear it)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.opened: list[tuple[str, int]] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="counting-proxy", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, address = self.server.accept()
            except OSError:
                return  # closed
            self.opened.append(address)
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):  # one side ended: so does the connection
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for sock in [self.server, *self._sockets]:
            sock.close()


@contextlib.contextmanager
def counted_connections(settings: Any) -> Iterator[list[tuple[str, int]]]:
    """While the block runs, ``BROKER_URL`` (set through pytest-django's ``settings``)
    leads through a :class:`CountingProxy`; yields its list of connections opened."""
    url = urlsplit(conf.broker_urls()[0])
    proxy = CountingProxy(url.hostname or "localhost", url.port or 5672)
    credentials, at, _ = url.netloc.rpartition("@")
    through = url._replace(netloc=f"{credentials}{at}127.0.0.1:{proxy.port}").geturl()
    settings.MESSAGING = {**settings.MESSAGING, "BROKER_URL": through}
    try:
        yield proxy.opened
    finally:
        proxy.close()
