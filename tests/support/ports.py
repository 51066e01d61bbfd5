"""Local TCP ports nothing listens on."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A local TCP port nothing listens on (bound, then released): free to listen on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port() -> int:
    """A local TCP port nothing listens on: a connection to it is refused."""
    return free_port()
