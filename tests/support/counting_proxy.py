"""Counting the connections a test opens, without patching the app: a setting
(``BROKER_URL``, ``MANAGEMENT_URL``) points at a TCP proxy to the real service for the
test, and the proxy notes every connection it forwards (blocking or asynchronous,
whoever opened it) and the first line each one sent (for HTTP, the request line)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from messaging import conf

#: Port of a URL that names none, by scheme.
DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671, "http": 80, "https": 443}
#: Bytes of a connection's start read at most for its first line.
FIRST_LINE_MAX = 8192


class CountingProxy:
    """Forwards each connection to ``host:port``; :attr:`opened` holds the client address
    of every connection accepted, :attr:`first_lines` the first line each sent (for HTTP,
    whose client — urllib — opens one connection per request: one request line per
    request, as ``GET /api/queues/%2F?columns=… HTTP/1.1``), noted before it is
    forwarded. A test may clear either."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.opened: list[tuple[str, int]] = []
        self.first_lines: list[str] = []
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
            for source, sink, first in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(source, sink, first), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, note_first_line: bool) -> None:
        start = b""
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if note_first_line:
                    start += data
                    if b"\n" in start or len(start) >= FIRST_LINE_MAX:
                        line = start.split(b"\n", 1)[0][:FIRST_LINE_MAX]
                        self.first_lines.append(line.rstrip(b"\r").decode("latin-1"))
                        note_first_line = False
                sink.sendall(data)
        for sock in (source, sink):  # one side ended: so does the connection
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for sock in [self.server, *self._sockets]:
            sock.close()


@contextlib.contextmanager
def proxied(url: str) -> Iterator[tuple[str, CountingProxy]]:
    """A :class:`CountingProxy` to ``url``'s host and port while the block runs; yields
    ``url`` leading through it (scheme, credentials, path and query kept) and the
    proxy."""
    parts = urlsplit(url)
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    proxy = CountingProxy(parts.hostname or "localhost", port)
    credentials, at, _ = parts.netloc.rpartition("@")
    through = parts._replace(netloc=f"{credentials}{at}127.0.0.1:{proxy.port}").geturl()
    try:
        yield through, proxy
    finally:
        proxy.close()


@contextlib.contextmanager
def counted_connections(settings: Any) -> Iterator[list[tuple[str, int]]]:
    """While the block runs, ``BROKER_URL`` (set through pytest-django's ``settings``)
    leads through a :class:`CountingProxy`; yields its list of connections opened."""
    with proxied(conf.broker_urls()[0]) as (through, proxy):
        settings.MESSAGING = {**settings.MESSAGING, "BROKER_URL": through}
        yield proxy.opened
