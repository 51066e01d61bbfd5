"""Handlers of the bench's ``runconsumer`` runs (``--handler bench.handlers.NAME``)."""

from __future__ import annotations

from messaging import Delivery


def discard_unless_poison(delivery: Delivery) -> None:
    """Does nothing, except for a message with header ``poison``: always raises."""
    if delivery.headers.get("poison"):
        raise RuntimeError("bench poison message")
