"""Handlers for the request/reply, subscription and stream tests
(``--handler tests.support.rpc_handlers.NAME``). Importing this module in a ``runconsumer``
started with ``MESSAGING_TEST_KILL_AFTER_COMMIT=<path>`` SIGKILLs that consumer right
after its first receipt commits — before the reply and the ack — once (the path is
created first, so a restarted consumer runs normally)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from messaging import Delivery, signals
from messaging.models import Receipt


def fib_number(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def _effect(delivery: Delivery, kind: str) -> None:
    """One row per handler run (the suite has no model of its own)."""
    from messaging.models import Message

    key = delivery.message_id or delivery.correlation_id
    Message.objects.create(exchange=kind, routing_key=key, body=delivery.body)


def effects(kind: str, key: str | None = None) -> int:
    from messaging.models import Message

    rows = Message.objects.filter(exchange=kind)
    return (rows.filter(routing_key=key) if key is not None else rows).count()


def fib(delivery: Delivery) -> str:
    """The RPC tutorial's server as a handler: the return value is the reply."""
    _effect(delivery, "fib-handled")
    return str(fib_number(int(delivery.body)))


def fib_json(delivery: Delivery) -> dict:
    n = delivery.json()["n"]
    return {"n": n, "fib": fib_number(n)}


def fib_pika(ch, method, props, body):
    """The tutorial's own on_request, unchanged: publishes its reply through ``ch``."""
    import pika

    response = fib_number(int(body))
    ch.basic_publish(
        exchange="",
        routing_key=props.reply_to,
        properties=pika.BasicProperties(correlation_id=props.correlation_id),
        body=str(response),
    )
    ch.basic_ack(delivery_tag=method.delivery_tag)


def record_properties(delivery: Delivery) -> None:
    """Keeps what the handler saw of the delivery's properties (as JSON in a row)."""
    from messaging.models import Message

    seen = {
        "correlation_id": delivery.correlation_id,
        "reply_to": delivery.reply_to,
        "priority": delivery.priority,
        "expiration": delivery.expiration,
        "type": delivery.type,
        "app_id": delivery.app_id,
        "timestamp": delivery.timestamp.isoformat() if delivery.timestamp else None,
        "stream_offset": delivery.stream_offset,
    }
    Message.objects.create(
        exchange="seen", routing_key=delivery.message_id, body=json.dumps(seen).encode()
    )


def _kill_after_commit(sender, receipt=None, delivery=None, **kwargs) -> None:
    marker = os.environ.get("MESSAGING_TEST_KILL_AFTER_COMMIT")
    if not marker or receipt is None or receipt.outcome != Receipt.Outcome.ACKED:
        return
    path = Path(marker)
    if path.exists():
        return
    path.write_text(receipt.message_id)
    os.kill(os.getpid(), signal.SIGKILL)


if os.environ.get("MESSAGING_TEST_KILL_AFTER_COMMIT"):
    signals.receipt_recorded.connect(_kill_after_commit, sender=Receipt)
