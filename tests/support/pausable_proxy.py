"""A broker that stops answering, without stopping the shared one: a TCP proxy to the real
RabbitMQ that a test can stall (connections stay open, nothing is forwarded either way:
a broker that hangs) and resume.

On :meth:`PausableProxy.resume` the stalled connections are cut and whatever they held
is dropped, so nothing sent while stalled reaches the broker late: a message is on the
broker only if it got there before the stall (its confirm then never came back) or is
sent again after."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

from tests.support.counting_proxy import DEFAULT_PORTS


class PausableProxy:
    """Forwards each connection to ``host:port`` until :meth:`stall`; :meth:`resume`
    forwards again (new connections; the stalled ones are cut). ``stall(replies_only=
    True)`` still forwards what clients send, but nothing comes back (a publish reaches
    the broker, its confirm never arrives)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._running = threading.Event()  # the broker's side answers
        self._running.set()
        self._sending = threading.Event()  # the clients' side is forwarded
        self._sending.set()
        self._lock = threading.Lock()
        self._links: list[tuple[socket.socket, socket.socket]] = []
        self.accepted = 0
        threading.Thread(target=self._accept, name="pausable-proxy", daemon=True).start()

    @property
    def stalled(self) -> bool:
        return not self._running.is_set()

    def stall(self, *, replies_only: bool = False) -> None:
        """Stop forwarding: every connection (open or new) hangs, as a stuck broker;
        ``replies_only``: what clients send still reaches the broker."""
        self._running.clear()
        if not replies_only:
            self._sending.clear()

    def resume(self) -> None:
        """Cut the connections open now (dropping what they held) and forward again."""
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            for sock in link:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self._running.set()
        self._sending.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            self.accepted += 1
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._links.append((client, upstream))
            for source, sink, gate in (
                (client, upstream, self._sending),
                (upstream, client, self._running),
            ):
                threading.Thread(target=self._pipe, args=(source, sink, gate), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, gate: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while True:
                gate.wait()
                data = source.recv(65536)
                if not data:
                    break
                if not gate.is_set():
                    gate.wait()
                    raise OSError("cut while stalled")  # resume() dropped this connection
                sink.sendall(data)
        for sock in (source, sink):  # one side ended: so does the connection
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()
        self.resume()


@contextlib.contextmanager
def pausable(url: str) -> Iterator[tuple[str, PausableProxy]]:
    """A :class:`PausableProxy` to ``url``'s host and port while the block runs; yields
    ``url`` leading through it and the proxy."""
    parts = urlsplit(url)
    proxy = PausableProxy(parts.hostname or "localhost", parts.port or DEFAULT_PORTS[parts.scheme])
    credentials, at, _ = parts.netloc.rpartition("@")
    through = parts._replace(netloc=f"{credentials}{at}127.0.0.1:{proxy.port}").geturl()
    try:
        yield through, proxy
    finally:
        proxy.close()
