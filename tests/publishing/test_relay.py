"""The outbox relay (``messaging.publishing.relay``, ``manage.py relay``) against the real broker
and database: due rows only, id order, backoff, unroutable rows, a broker that is down, the
loop's clean exit, and two relays at once publishing every message exactly once."""

from __future__ import annotations

import re
import signal
import time
import uuid
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from messaging.models import Message, Queue
from messaging.publishing.relay import due, relay_once
from tests.support.draining import drain
from tests.support.ports import closed_port
from tests.support.rabbitmq import queue_depth
from tests.support.waiting import wait_for


def pending(queue: Queue, n: int, **fields) -> list[Message]:
    """``n`` pending rows as PUBLISH_MODE="relay" writes them (due at once)."""
    return Message.objects.bulk_create(
        [Message(queue=queue, body=f"m{i}".encode(), **fields) for i in range(n)], batch_size=500
    )


def test_relay_publishes_due_rows_in_id_order_and_leaves_the_rest(
    transactional_db, queue_name, channel
):
    queue = Queue.objects.create(name=queue_name)
    rows = pending(queue, 7)
    later = Message.objects.create(
        queue=queue, body=b"later", next_attempt_at=timezone.now() + timedelta(hours=1)
    )
    failed = Message.objects.create(queue=queue, body=b"failed", status=Message.Status.FAILED)

    result = relay_once(batch_size=3)

    assert (result.published, result.failed, result.retrying, result.batches) == (7, 0, 0, 3)
    assert drain(queue_name, channel, ids=True) == [row.message_id for row in rows]
    assert set(Message.objects.published().values_list("pk", flat=True)) == {r.pk for r in rows}
    assert Message.objects.get(pk=later.pk).status == Message.Status.PENDING
    assert Message.objects.get(pk=failed.pk).status == Message.Status.FAILED
    assert not due().exists()
    assert relay_once().batches == 0  # nothing due: nothing to do


def test_relay_marks_unroutable_rows_failed(transactional_db, queue_name, channel):
    key = f"nobody-{uuid.uuid4().hex[:8]}"
    lost = Message.objects.create(exchange="amq.direct", routing_key=key, body=b"x")
    kept = pending(Queue.objects.create(name=queue_name), 1)[0]
    result = relay_once()
    assert (result.published, result.failed) == (1, 1)
    lost.refresh_from_db()
    assert lost.status == Message.Status.FAILED
    assert (
        lost.last_error == f"unroutable: no queue bound for exchange amq.direct routing key {key}"
    )
    assert drain(queue_name, channel, ids=True) == [kept.message_id]


def test_relay_with_the_broker_down_touches_nothing(transactional_db, queue_name):
    rows = pending(Queue.objects.create(name=queue_name), 3)
    url = f"amqp://guest:guest@127.0.0.1:{closed_port()}/%2F"
    with override_settings(MESSAGING={**settings.MESSAGING, "BROKER_URL": url}):
        result = relay_once()
    assert "connection refused" in str(result.error)
    assert result.batches == 0
    assert set(due().values_list("pk", flat=True)) == {r.pk for r in rows}
    assert set(Message.objects.values_list("attempts", flat=True)) == {0}


def test_failed_try_backs_off_then_the_relay_retries(transactional_db, queue_name, channel):
    # The queue is full and refuses publishes (nack): the row backs off, then goes out.
    queue = Queue.objects.create(
        name=queue_name, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    )
    first, second = pending(queue, 2)
    with override_settings(MESSAGING={**settings.MESSAGING, "PUBLISH_RETRY_DELAY": 0.5}):
        result = relay_once()
        assert (result.published, result.retrying) == (1, 1)
        row = Message.objects.get(pk=second.pk)
        assert row.status == Message.Status.PENDING
        assert "nack" in row.last_error
        assert row.next_attempt_at > timezone.now()
        assert relay_once().batches == 0  # not due yet
        assert drain(queue_name, channel, ids=True) == [first.message_id]
        time.sleep(0.6)
        assert relay_once().published == 1
    assert drain(queue_name, channel, ids=True) == [second.message_id]
    assert Message.objects.get(pk=second.pk).attempts == 2


def test_relay_command_once(manage, queue_name, channel):
    rows = pending(Queue.objects.create(name=queue_name), 5)
    proc = manage("relay", "--once")
    assert proc.returncode == 0, proc.stderr
    assert "Relayed: 5 published, 0 failed" in proc.stdout.decode()
    assert drain(queue_name, channel, ids=True) == [r.message_id for r in rows]


def test_relay_command_once_with_the_broker_down_fails_in_one_line(manage, queue_name):
    pending(Queue.objects.create(name=queue_name), 1)
    url = f"amqp://guest:s3cret@127.0.0.1:{closed_port()}/%2F"
    proc = manage("relay", "--once", env={"MESSAGING_BROKER_URL": url})
    assert proc.returncode != 0
    lines = proc.stderr.decode().strip().splitlines()
    assert "connection refused" in lines[-1]
    assert "s3cret" not in proc.stderr.decode()
    assert Message.objects.get().status == Message.Status.PENDING


def test_relay_loop_publishes_new_rows_and_stops_cleanly_on_sigterm(spawn, queue_name, channel):
    queue = Queue.objects.create(name=queue_name)
    proc = spawn("relay", "--interval", "0.2")
    row = pending(queue, 1)[0]
    wait_for(lambda: Message.objects.get(pk=row.pk).status == Message.Status.PUBLISHED, 30)
    later = pending(queue, 1)[0]  # a second pass picks up rows written later
    wait_for(lambda: Message.objects.get(pk=later.pk).status == Message.Status.PUBLISHED, 30)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Relay stopped: 2 published" in out.decode()
    assert drain(queue_name, channel, ids=True) == [row.message_id, later.message_id]


def test_two_relays_publish_every_message_exactly_once(spawn, queue_name, channel):
    rows = pending(Queue.objects.create(name=queue_name), 5000)
    relays = [spawn("relay", "--once", "--batch-size", "100") for _ in range(2)]
    outputs = []
    for proc in relays:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        outputs.append(out.decode())
    counts = Counter(drain(queue_name, channel, ids=True))
    assert len(counts) == 5000
    assert set(counts) == {row.message_id for row in rows}
    assert max(counts.values()) == 1  # nobody got a message twice
    assert Message.objects.published().count() == 5000
    assert set(Message.objects.values_list("attempts", flat=True)) == {1}
    assert queue_depth(queue_name) == 0
    # What the two relays say they published adds up (neither counted a row twice). On
    # SQLite the claims take turns on the write lock, so one may end up doing it all.
    said = [int(m) for out in outputs for m in re.findall(r"Relayed: (\d+) published", out)]
    assert sum(said) == 5000, outputs
