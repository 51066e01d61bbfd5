"""Handlers the ``messaging.testing`` tests deliver captured messages to, by dotted path
(``tests.support.capture_handlers.NAME``) or directly; each records the body it saw in
:data:`HANDLED`."""

from __future__ import annotations

from messaging import Reject, publish

#: Bodies handled so far, in order (the tests clear it before each test).
HANDLED: list[bytes] = []


def record(delivery) -> None:
    HANDLED.append(delivery.body)


def always_fails(delivery) -> None:
    HANDLED.append(delivery.body)
    raise RuntimeError("payment service down")


def fails_twice(delivery) -> None:
    HANDLED.append(delivery.body)
    if HANDLED.count(delivery.body) <= 2:
        raise RuntimeError("not yet")


def rejects(delivery) -> None:
    HANDLED.append(delivery.body)
    raise Reject("order 42 is malformed")


def forwards(delivery) -> None:
    """Handles ``orders`` by publishing to ``mail``."""
    HANDLED.append(delivery.body)
    publish("mail", b"mail for " + delivery.body)
