"""The consumer's failure policy, dead-letter queues and replay, batched receipts with
multiple-acks, the consumer registry and the receipt signal — against the real broker.

The fault-injection suite (kills, broker restarts, database outages) is tests/faults/.
"""

from __future__ import annotations

import threading
import time

import pika
import pytest
from django.db import connection

from messaging import broker, publish
from messaging.consumer import Consumer
from messaging.consumer.inbox import default_batch_size
from messaging.consumer.replay import replay
from messaging.models import Consumer as ConsumerRow
from messaging.models import Message, Queue, Receipt
from messaging.signals import receipt_recorded
from tests.support.handlers import handled, record
from tests.support.rabbitmq import queue_depth
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def outcomes(queue: str) -> list[tuple[str, int]]:
    return list(
        Receipt.objects.filter(queue_name=queue).order_by("id").values_list("outcome", "attempt")
    )


def get_one(queue: str) -> tuple[pika.BasicProperties, bytes] | None:
    with broker.connection() as conn:
        method, props, body = conn.channel().basic_get(queue, auto_ack=True)
    return None if method is None else (props, body)


def consume(queue, handler, **kwargs) -> Consumer:
    consumer = Consumer([queue], {getattr(queue, "name", queue): handler}, **kwargs)
    consumer.run()
    return consumer


def failing(delivery):
    raise ValueError(f"bad {delivery.body!r}")


# --------------------------------------------------------------------------- failure policy


def test_poison_message_is_retried_then_dead_lettered(queue_name, settings):
    settings.MESSAGING = {**settings.MESSAGING, "MAX_ATTEMPTS": 3}
    message = publish(queue_name, b"poison", headers={"kind": "test"})
    consumer = consume(Queue.objects.get(name=queue_name), failing, max_messages=3)
    assert outcomes(queue_name) == [("requeued", 1), ("requeued", 2), ("dead_lettered", 3)]
    assert consumer.stats.dead_lettered == 1
    assert wait_for(lambda: queue_depth(f"{queue_name}.dlq") == 1)
    assert queue_depth(queue_name) == 0
    props, body = get_one(f"{queue_name}.dlq")
    assert body == b"poison"
    assert props.message_id == message.message_id
    assert props.headers["kind"] == "test"
    (death,) = props.headers["x-messaging-death"]
    assert death["queue"] == queue_name and death["reason"] == "max_attempts"
    assert death["attempts"] == 3 and "ValueError: bad b'poison'" in death["error"]


def test_queue_row_max_attempts_overrides_the_setting(queue_name):
    Queue.objects.create(name=queue_name, max_attempts=1)
    publish(queue_name, b"once")
    consume(Queue.objects.get(name=queue_name), failing, max_messages=1)
    assert outcomes(queue_name) == [("dead_lettered", 1)]
    assert wait_for(lambda: queue_depth(f"{queue_name}.dlq") == 1)


def test_replay_brings_dead_letters_back_and_counting_restarts(queue_name, settings, manage):
    settings.MESSAGING = {**settings.MESSAGING, "MAX_ATTEMPTS": 2}
    message = publish(queue_name, b"fix me")
    queue = Queue.objects.get(name=queue_name)
    consume(queue, failing, max_messages=2)
    assert wait_for(lambda: queue_depth(f"{queue_name}.dlq") == 1)

    r = manage("replaydlq", queue_name)
    assert r.returncode == 0, r.stderr
    assert f"moved 1 message(s) from {queue_name}.dlq to {queue_name}; 0 left" in r.stdout.decode()
    assert queue_depth(f"{queue_name}.dlq") == 0
    assert wait_for(lambda: queue_depth(queue_name) == 1)

    # Still failing: it gets MAX_ATTEMPTS fresh attempts, then goes back to the DLQ.
    consume(queue, failing, max_messages=2)
    assert [o for o, _ in outcomes(queue_name)][-2:] == ["requeued", "dead_lettered"]
    assert outcomes(queue_name)[-2][1] == 1
    replay(queue_name)
    consume(queue, record, max_messages=1)
    assert handled(message.message_id) == 1
    assert outcomes(queue_name)[-1] == ("acked", 1)
    props_history = Receipt.objects.filter(queue_name=queue_name, outcome="dead_lettered")
    assert props_history.count() == 2


def test_replay_keeps_death_history_and_honours_limit(queue_name, settings):
    Queue.objects.create(name=queue_name, max_attempts=1)
    for i in range(3):
        publish(queue_name, f"m{i}".encode())
    consume(Queue.objects.get(name=queue_name), failing, max_messages=3)
    assert wait_for(lambda: queue_depth(f"{queue_name}.dlq") == 3)
    result = replay(queue_name, limit=2)
    assert (result.moved, result.remaining) == (2, 1)
    props, _ = get_one(queue_name)
    assert props.headers["x-messaging-death"][0]["reason"] == "max_attempts"


def test_replaydlq_of_an_unknown_queue_is_one_line(manage):
    r = manage("replaydlq", "no.such.queue.for.replay")
    assert r.returncode == 1
    assert r.stderr.decode().strip().splitlines()[-1].startswith("CommandError:")
    assert "does not exist" in r.stderr.decode()


def test_queue_with_its_own_dead_letter_exchange_lets_the_broker_dead_letter(
    queue_name, request, channel
):
    target = request.node.make_queue_name()
    channel.queue_declare(target, durable=True)
    channel.queue_bind(target, "amq.direct", routing_key=target)
    Queue.objects.create(
        name=queue_name,
        max_attempts=1,
        dead_letter_exchange="amq.direct",
        dead_letter_routing_key=target,
    )
    publish(queue_name, b"to the broker's DLX")
    consume(Queue.objects.get(name=queue_name), failing, max_messages=1)
    assert wait_for(lambda: queue_depth(target) == 1)
    props, _ = get_one(target)
    assert props.headers["x-death"][0]["queue"] == queue_name  # the broker's own history
    assert queue_depth(f"{queue_name}.dlq") is None  # the app made no DLQ for it


def test_quorum_queue_counts_attempts_from_x_delivery_count(queue_name, settings):
    settings.MESSAGING = {**settings.MESSAGING, "MAX_ATTEMPTS": 3}
    Queue.objects.create(name=queue_name, queue_type="quorum")
    publish(queue_name, b"quorum poison")
    consume(Queue.objects.get(name=queue_name), failing, max_messages=3)
    assert outcomes(queue_name) == [("requeued", 1), ("requeued", 2), ("dead_lettered", 3)]
    assert wait_for(lambda: queue_depth(f"{queue_name}.dlq") == 1)
    props, _ = get_one(f"{queue_name}.dlq")
    # Broker-managed: the source's count (2) is not copied; the DLQ, quorum like its
    # queue, counts its own deliveries (from 0).
    assert props.headers.get("x-delivery-count", 0) == 0


def test_messages_without_message_id_are_counted_too(queue_name, settings):
    settings.MESSAGING = {**settings.MESSAGING, "MAX_ATTEMPTS": 2}
    with broker.connection() as conn:
        ch = conn.channel()
        ch.queue_declare(queue_name, durable=True)
        ch.basic_publish("", queue_name, b"anonymous", pika.BasicProperties(delivery_mode=2))
    consume(queue_name, failing, max_messages=2)
    assert outcomes(queue_name) == [("requeued", 1), ("dead_lettered", 2)]
    assert wait_for(lambda: queue_depth(f"{queue_name}.dlq") == 1)


def test_retry_delay_backs_off(queue_name, settings):
    settings.MESSAGING = {**settings.MESSAGING, "MAX_ATTEMPTS": 3, "RETRY_DELAY": 0.3}
    publish(queue_name, b"slowly")
    started = time.monotonic()
    try:
        consume(queue_name, failing, max_messages=3)
    finally:  # the broker held the waits in <queue>.delay.300 and .delay.600
        with broker.connection() as conn:
            for delay_queue in (f"{queue_name}.delay.300", f"{queue_name}.delay.600"):
                conn.channel().queue_delete(delay_queue)
    # 0.3 s after attempt 1, 0.6 s after attempt 2: a behaviour, not a speed target.
    assert time.monotonic() - started >= 0.9
    assert [o for o, _ in outcomes(queue_name)] == ["requeued", "requeued", "dead_lettered"]


# --------------------------------------------------------------------------- batches


def test_default_batch_size_follows_prefetch():
    assert default_batch_size(1) == 1
    assert default_batch_size(3) == 1
    assert default_batch_size(300) == 100
    assert default_batch_size(10_000) == 500


def test_batch_commits_everything_and_drains_the_queue(queue_name):
    messages = [publish(queue_name, f"b{i}".encode()) for i in range(250)]
    consumer = consume(queue_name, record, prefetch=100, batch_size=50, max_messages=250)
    assert consumer.stats.acked == 250
    assert handled() == 250
    ids = set(Receipt.objects.filter(queue_name=queue_name).values_list("message_id", flat=True))
    assert ids == {m.message_id for m in messages}
    assert wait_for(lambda: queue_depth(queue_name) == 0)
    with broker.connection() as conn:  # nothing left unacked: a new consumer gets nothing
        assert conn.channel().basic_get(queue_name)[0] is None


def test_one_failing_handler_does_not_undo_the_rest_of_its_batch(queue_name, settings):
    settings.MESSAGING = {**settings.MESSAGING, "MAX_ATTEMPTS": 1}

    def record_unless_bad(delivery):
        record(delivery)
        if delivery.body == b"bad":
            raise RuntimeError("bad one")

    for body in (b"a", b"b", b"bad", b"c", b"d"):
        publish(queue_name, body)
    consume(queue_name, record_unless_bad, prefetch=30, batch_size=10, max_messages=5)
    assert handled() == 4  # the bad one's own row was rolled back, the others kept
    assert sorted(o for o, _ in outcomes(queue_name)) == ["acked"] * 4 + ["dead_lettered"]
    assert wait_for(lambda: queue_depth(f"{queue_name}.dlq") == 1)
    assert queue_depth(queue_name) == 0


def test_a_quiet_queue_is_flushed_without_waiting_for_a_full_batch(queue_name):
    publish(queue_name, b"alone")
    consumer = Consumer([queue_name], {queue_name: record}, prefetch=300, batch_size=100)

    def run() -> None:
        try:
            consumer.run()
        finally:
            connection.close()  # this thread's own database connection

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert wait_for(lambda: Receipt.objects.filter(queue_name=queue_name).exists(), 10)
        assert wait_for(lambda: unacked(queue_name) == 0, 10)
    finally:
        consumer.stop()
        thread.join(15)
    assert not thread.is_alive()


def unacked(queue: str) -> int:
    import subprocess

    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name", "messages_unacknowledged"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        name, _, count = line.rpartition("\t")
        if name == queue:
            return int(count)
    return -1


def test_duplicate_in_a_batch_is_sorted_out_one_by_one(queue_name):
    message = publish(queue_name, b"twice")
    with broker.connection() as conn:  # a second copy of the same message_id
        conn.channel().basic_publish(
            "",
            queue_name,
            b"twice",
            pika.BasicProperties(message_id=message.message_id, delivery_mode=2),
        )
    publish(queue_name, b"other")
    consume(queue_name, record, prefetch=30, batch_size=10, max_messages=3)
    assert handled(message.message_id) == 1
    assert sorted(o for o, _ in outcomes(queue_name)) == ["acked", "acked", "duplicate"]
    assert wait_for(lambda: queue_depth(queue_name) == 0)


# --------------------------------------------------------------------------- signal


def test_receipt_recorded_is_sent_after_commit(queue_name):
    seen: list[tuple[str, bool]] = []

    def receiver(sender, receipt, delivery, **kwargs):
        seen.append((receipt.outcome, Receipt.objects.filter(pk=receipt.pk).exists()))
        raise RuntimeError("a broken receiver must not break the consumer")

    receipt_recorded.connect(receiver)
    try:
        publish(queue_name, b"x")
        publish(queue_name, b"y")
        consume(queue_name, record, prefetch=10, batch_size=5, max_messages=2)
    finally:
        receipt_recorded.disconnect(receiver)
    assert seen == [("acked", True), ("acked", True)]
    assert wait_for(lambda: queue_depth(queue_name) == 0)


# --------------------------------------------------------------------------- registry


def test_runconsumer_registers_itself_and_marks_stopped(manage, queue_name):
    publish(queue_name, b"x")
    r = manage("runconsumer", queue_name, "--idle-timeout", "1", "--name", "registry-test")
    assert r.returncode == 0, r.stderr
    row = ConsumerRow.objects.get(name="registry-test")
    assert row.state == "stopped" and row.stopped_at is not None
    assert row.queues == [queue_name] and row.prefetch == 1 and row.processed == 1
    assert row.status == "stopped" and not row.is_lost


def test_a_silent_running_consumer_shows_as_lost(settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.MESSAGING = {**settings.MESSAGING, "CONSUMER_HEARTBEAT_INTERVAL": 2}
    now = timezone.now()
    fresh = ConsumerRow.objects.create(
        name="fresh", host="h", pid=1, started_at=now, last_heartbeat=now
    )
    silent = ConsumerRow.objects.create(
        name="silent", host="h", pid=2, started_at=now, last_heartbeat=now - timedelta(seconds=7)
    )
    assert fresh.status == "running" and silent.status == "lost"
    assert list(ConsumerRow.objects.lost()) == [silent]
    assert list(ConsumerRow.objects.live()) == [fresh]


def test_consumer_timeout_warning(queue_name, settings, caplog):
    settings.MESSAGING = {**settings.MESSAGING, "BROKER_CONSUMER_TIMEOUT": 1}

    def slow(delivery):
        time.sleep(1.5)

    publish(queue_name, b"slow")
    with caplog.at_level("WARNING", logger="messaging.consumer"):
        consume(queue_name, slow, max_messages=1)
    assert any("consumer_timeout" in r.getMessage() for r in caplog.records)


def test_publish_inside_handler_is_part_of_its_transaction(queue_name, request):
    """A handler's own publish() is an outbox write: it commits with the receipt."""
    downstream = request.node.make_queue_name()

    def forward(delivery):
        publish(downstream, delivery.body)

    publish(queue_name, b"chain")
    consume(queue_name, forward, max_messages=1)
    assert Message.objects.filter(queue__name=downstream).count() == 1
    assert wait_for(lambda: queue_depth(downstream) == 1)
