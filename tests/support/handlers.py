"""Handlers the tests point runconsumer at (``--handler tests.support.handlers.NAME``)."""

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


def record(delivery: Delivery) -> None:
    """Database work the consumer must commit exactly once per message: one row (the
    suite has no model of its own, so a Message addressed to the exchange "handled" with
    the delivery's message_id as routing key; nothing unique about it)."""
    from messaging.models import Message

    Message.objects.create(exchange="handled", routing_key=delivery.message_id, body=delivery.body)


def handled(message_id: str | None = None) -> int:
    """How many times ``record`` ran (for one message_id, or in all)."""
    from messaging.models import Message

    rows = Message.objects.filter(exchange="handled")
    return (rows.filter(routing_key=message_id) if message_id is not None else rows).count()


def record_then_fail(delivery: Delivery) -> None:
    record(delivery)
    raise RuntimeError("after writing")


def record_paced(delivery: Delivery) -> None:
    """``record``, then: a body starting with b"slow" touches $MESSAGING_TEST_MARKER and
    sleeps $MESSAGING_TEST_SLEEP seconds; any other sleeps $MESSAGING_TEST_PACE (default 0)
    so a fault can land mid-stream. (Fault suite.)"""
    record(delivery)
    if delivery.body.startswith(b"slow"):
        marker = os.environ.get("MESSAGING_TEST_MARKER")
        if marker:
            Path(marker).write_bytes(delivery.body)
        time.sleep(float(os.environ.get("MESSAGING_TEST_SLEEP", "30")))
    else:
        time.sleep(float(os.environ.get("MESSAGING_TEST_PACE", "0")))


def record_unless_poison(delivery: Delivery) -> None:
    """Fails on a message with header ``poison``, rejects one with header ``reject``,
    records any other. (Fault suite.)"""
    if delivery.headers.get("poison"):
        raise RuntimeError("poison message")
    if delivery.headers.get("reject"):
        raise Reject("refused by the test")
    record(delivery)


def record_with_headers(delivery: Delivery) -> None:
    """``record``, keeping the delivery's headers (made JSON-safe) on the row."""
    import json

    from messaging.models import Message

    headers = json.loads(json.dumps(delivery.headers, default=str))
    Message.objects.create(
        exchange="handled", routing_key=delivery.message_id, body=delivery.body, headers=headers
    )
