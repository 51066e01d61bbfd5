"""Emptying a queue to see what was on it: read from the broker (:func:`drain`), or
consumed by a last ``runconsumer`` run (:func:`drain_with_consumer`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from messaging import broker


def drain(
    queue: str,
    channel: Any = None,
    *,
    ids: bool = False,
    headers: bool = False,
    leave: bool = False,
) -> list[Any]:
    """Every message in ``queue``, in queue order, as ``(message_id, body)``; only the
    message_ids with ``ids=True``; ``(message_id, headers, body)`` with ``headers=True``.

    The messages are taken off the queue (auto-acked), on ``channel`` if given, else on a
    connection of its own. ``leave=True`` reads them unacked on a connection of its own
    instead: closing it puts them all back."""
    if leave and channel is not None:
        raise ValueError("leave=True reads on a connection of its own; pass no channel")

    def read(on: Any) -> list[Any]:
        found = []
        while True:
            method, props, body = on.basic_get(queue, auto_ack=not leave)
            if method is None:
                return found
            if ids:
                found.append(props.message_id)
            elif headers:
                found.append((props.message_id, dict(props.headers or {}), body))
            else:
                found.append((props.message_id, body))

    if channel is not None:
        return read(channel)
    with broker.connection() as conn:
        return read(conn.channel())


def drain_with_consumer(
    manage: Callable[..., Any],
    queue: str,
    *args: str,
    idle: float = 3,
    handler: str = "tests.support.handlers.record",
) -> None:
    """A final clean ``runconsumer`` run (through the ``manage`` fixture) that consumes
    whatever is left in ``queue`` with ``handler`` and exits on its own once idle."""
    r = manage(
        "runconsumer",
        queue,
        "--handler",
        handler,
        "--idle-timeout",
        str(idle),
        "-v",
        "0",
        *args,
        timeout=240,
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
