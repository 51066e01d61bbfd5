"""``runconsumer --threads N`` and ``async def`` handlers against the real broker and the
test database: handlers overlap, each message's work and receipt commit once before its
ack, a slow handler does not hold the others up, and an async handler's ORM writes land
in its receipt's transaction."""

from __future__ import annotations

import json

import pika
import pytest

from messaging.management.commands.runconsumer import default_prefetch
from messaging.models import Consumer, Message, Receipt
from messaging.publishing import build_message, get_queue, publish_messages
from tests.support.consumers import wait_running
from tests.support.environment import settings_env
from tests.support.exactly_once import acked_ids, check_exactly_once, publish_many
from tests.support.rabbitmq import consumers_on, queue_depth
from tests.support.waiting import wait_for


def max_overlap(rows: list[dict]) -> int:
    """Most handler runs in progress at one moment (from their start/end stamps)."""
    events = sorted([(r["start"], 1) for r in rows] + [(r["end"], -1) for r in rows])
    running = most = 0
    for _when, step in events:
        running += step
        most = max(most, running)
    return most


def stamps(queue: str) -> list[dict]:
    ids = set(Receipt.objects.filter(queue_name=queue).values_list("message_id", flat=True))
    return [
        json.loads(json.dumps(h))
        for h in Message.objects.filter(exchange="handled", routing_key__in=ids).values_list(
            "headers", flat=True
        )
    ]


@pytest.mark.unit
def test_prefetch_follows_the_threads_unless_given():
    assert default_prefetch(None, 1) == 1
    assert default_prefetch(None, 8) == 16
    assert default_prefetch(5, 8) == 5
    assert default_prefetch(None, 40000) == 65535


def test_threads_run_handlers_at_once_and_each_commits_once(start_consumer, queue_name):
    ids = publish_many(queue_name, 16)
    consumer = start_consumer(
        queue_name,
        "--threads",
        "4",
        "--idle-timeout",
        "3",
        handler="tests.support.thread_handlers.timed_record",
        env={"MESSAGING_TEST_PACE": "0.3"},
    )
    assert consumer.wait(timeout=120) == 0, consumer.describe()
    check_exactly_once(queue_name, ids, context="--threads 4")
    rows = stamps(queue_name)
    assert len({r["thread"] for r in rows}) >= 2, rows
    assert max_overlap(rows) >= 2, "no two handlers ever ran at once"
    row = Consumer.objects.get(name=consumer.name)
    assert (row.threads, row.prefetch, row.state, row.in_flight) == (4, 8, "stopped", 0)
    assert "4 threads" in consumer.stderr


def test_a_slow_handler_does_not_hold_up_the_fast_ones(start_consumer, queue_name, tmp_path):
    marker = tmp_path / "inside"
    (slow_id,) = publish_many(queue_name, 1, prefix="slow")
    fast = publish_many(queue_name, 30, prefix="fast")
    consumer = start_consumer(
        queue_name,
        "--threads",
        "4",
        handler="tests.support.thread_handlers.timed_record",
        env={
            "MESSAGING_TEST_MARKER": str(marker),
            "MESSAGING_TEST_SLEEP": "10",
            "MESSAGING_TEST_PACE": "0.05",
        },
    )
    wait_running(consumer, marker.exists, timeout=60)
    # Every fast message is acked while the slow one still runs: no ack waits behind it.
    wait_running(consumer, lambda: set(fast) <= acked_ids(queue_name), timeout=9)
    assert slow_id not in acked_ids(queue_name)
    assert consumers_on(queue_name) == 1  # the connection (heartbeats) held
    wait_running(consumer, lambda: slow_id in acked_ids(queue_name), timeout=30)
    consumer.terminate()
    assert consumer.wait(timeout=30) == 0, consumer.describe()
    check_exactly_once(queue_name, [slow_id, *fast], context="slow among fast")


def publish_bodies(queue: str, bodies: list[bytes]) -> list[str]:
    row = get_queue(queue)
    messages = [build_message(row, body) for body in bodies]
    Message.objects.bulk_create(messages)
    assert publish_messages(messages).ok
    return [m.message_id for m in messages]


@pytest.mark.parametrize("threads", ["1", "4"])
def test_async_handler_writes_commit_with_the_receipt_or_roll_back(
    start_consumer, channel, queue_name, threads
):
    (ok_id,) = publish_bodies(queue_name, [b"ok"])
    (fail_id,) = publish_bodies(queue_name, [b"fail"])
    (reject_id,) = publish_bodies(queue_name, [b"reject"])
    twice_id = "same-id-" + queue_name[-8:]
    for _ in range(2):  # one message published twice (a producer's retry)
        channel.basic_publish(
            exchange="",
            routing_key=queue_name,
            body=b"twice",
            properties=pika.BasicProperties(message_id=twice_id, delivery_mode=2),
        )
    consumer = start_consumer(
        queue_name,
        "--threads",
        threads,
        "--idle-timeout",
        "3",
        handler="tests.support.thread_handlers.arecord",
        env=settings_env(MAX_ATTEMPTS=1),
    )
    assert consumer.wait(timeout=120) == 0, consumer.describe()
    written = dict(Message.objects.filter(exchange="handled").values_list("routing_key", "body"))
    assert bytes(written[ok_id]) == b"ok"
    assert bytes(written[twice_id]) == b"twice"
    assert fail_id not in written, "a failed async handler's write was committed"
    assert reject_id not in written, "a rejected async handler's write was committed"
    assert Message.objects.filter(exchange="handled", routing_key=twice_id).count() == 1
    outcomes = dict(
        Receipt.objects.filter(queue_name=queue_name)
        .values_list("message_id", "outcome")
        .exclude(outcome="duplicate")
    )
    assert outcomes[ok_id] == "acked"
    assert outcomes[reject_id] == "rejected"
    assert outcomes[fail_id] in ("failed", "dead_lettered")
    assert Receipt.objects.filter(message_id=twice_id, outcome="duplicate").count() == 1
    assert Receipt.objects.filter(message_id=twice_id, outcome="acked").count() == 1


def test_rpc_replies_and_broker_held_retries_work_with_threads(start_consumer, queue_name):
    from concurrent.futures import ThreadPoolExecutor

    from messaging import call
    from messaging.broker import declare_queues
    from messaging.models import Queue
    from tests.support.rpc_handlers import fib_number

    declare_queues([Queue.objects.create(name=queue_name)])
    server = start_consumer(queue_name, "--threads", "4", handler="tests.support.rpc_handlers.fib")
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda n: call(queue_name, str(n).encode(), timeout=60), range(8)))
    assert [r.body for r in replies] == [str(fib_number(n)).encode() for n in range(8)]
    server.terminate()
    assert server.wait(timeout=30) == 0, server.describe()


def test_failures_are_delayed_then_dead_lettered_with_threads(start_consumer, queue_name):
    ids = publish_many(queue_name, 6)
    consumer = start_consumer(
        queue_name,
        "--threads",
        "4",
        handler="tests.support.handlers.fail",
        env=settings_env(MAX_ATTEMPTS=2, RETRY_DELAY=0.5),
    )
    dead = Receipt.objects.filter(queue_name=queue_name, outcome="dead_lettered")
    wait_running(consumer, lambda: dead.count() == len(ids), timeout=60)
    consumer.terminate()
    assert consumer.wait(timeout=30) == 0, consumer.describe()
    rows = Receipt.objects.filter(queue_name=queue_name)
    assert sorted(rows.filter(outcome="dead_lettered").values_list("attempt", flat=True)) == [2] * 6
    assert rows.exclude(outcome="dead_lettered").count() == 6  # attempt 1 of each, delayed
    assert wait_for(lambda: queue_depth(f"{queue_name}.dlq") == len(ids))
