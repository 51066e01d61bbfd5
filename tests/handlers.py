"""Handlers the tests point runconsumer at (``--handler tests.handlers.NAME``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from messaging import Delivery, Reject


def ok(delivery: Delivery) -> None:
    """Succeeds; writes nothing."""


def fail(delivery: Delivery) -> None:
    raise RuntimeError(f"handler failed on {delivery.body!r}")


def reject(delivery: Delivery) -> None:
    raise Reject("not for us")


def slow(delivery: Delivery) -> None:
    """Touches $MESSAGING_TEST_MARKER (so the test knows it is inside), then sleeps
    $MESSAGING_TEST_SLEEP seconds."""
    marker = os.environ.get("MESSAGING_TEST_MARKER")
    if marker:
        Path(marker).write_bytes(delivery.body)
    time.sleep(float(os.environ.get("MESSAGING_TEST_SLEEP", "30")))


def tutorial_callback(ch, method, properties, body):
    """The tutorial's callback, acking itself."""
    print(f" [x] Received {body}")
    ch.basic_ack(delivery_tag=method.delivery_tag)


def tutorial_nack(ch, method, properties, body):
    ch.basic_nack(delivery_tag=method.delivery_tag, requeue=False)
