"""Handlers for the observability tests
(``--handler tests.support.observability_handlers.NAME``)."""

from __future__ import annotations

from messaging import Delivery, Reject


def mixed(delivery: Delivery) -> None:
    """``bad…`` bodies fail (requeued, then dead-lettered), ``no…`` ones are rejected,
    the rest succeed."""
    if delivery.body.startswith(b"bad"):
        raise RuntimeError("bad body")
    if delivery.body.startswith(b"no"):
        raise Reject("not for us")
