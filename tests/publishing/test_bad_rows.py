"""Bad rows are isolated, against the real broker and database: a row
the broker layer cannot encode or must not be sent (saved behind the validators' back)
is ``failed`` with its own one-line reason while every other row of its relay batch,
bulk publish or ``send_copies`` run is published; a declaration the broker never
answers fails its destination alone, within the RPC timeout."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from django.test import override_settings

from messaging import broker
from messaging.broker import Outgoing, PipelinedPublisher, QueueSpec
from messaging.exceptions import BrokerUnavailable, MessageRefused
from messaging.models import Message, Queue
from messaging.publishing import publish_messages, send_copies
from messaging.publishing.relay import due, relay_once
from tests.support.draining import drain
from tests.support.ports import closed_port

pytestmark = pytest.mark.usefixtures("transactional_db")

LONG_KEY = "k" * 300  # a header key of 300 bytes
WIDE_TYPE = "é" * 200  # a content type of 200 characters, 400 bytes of UTF-8


def poisoned_batch(queue_name: str) -> tuple[list[Message], dict[str, Message]]:
    """Good rows around three bad ones, each made bad by a raw UPDATE (as rows saved
    before the validators existed would be): a 300-byte header key, a 400-byte content
    type, and a queue whose name contains a newline."""
    good_queue = Queue.objects.create(name=queue_name)
    bad_queue = Queue.objects.create(name=f"{queue_name}.nl")
    Queue.objects.filter(pk=bad_queue.pk).update(name=f"{queue_name}\nnl")
    rows = [Message.objects.create(queue=good_queue, body=f"m{i}".encode()) for i in range(6)]
    bad = {
        "header": Message.objects.create(queue=good_queue, body=b"bad header"),
        "content type": Message.objects.create(queue=good_queue, body=b"bad type"),
        "queue name": Message.objects.create(queue=bad_queue, body=b"bad queue"),
    }
    Message.objects.filter(pk=bad["header"].pk).update(headers={LONG_KEY: "v"})
    Message.objects.filter(pk=bad["content type"].pk).update(content_type=WIDE_TYPE)
    return rows, bad


def assert_isolated(good: list[Message], bad: dict[str, Message], channel, queue_name: str):
    assert drain(queue_name, channel, ids=True) == [row.message_id for row in good]
    for row in good:
        row.refresh_from_db()
        assert row.status == Message.Status.PUBLISHED
    reasons = {}
    for what, row in bad.items():
        row.refresh_from_db()
        assert row.status == Message.Status.FAILED, (what, row.last_error)
        assert row.next_attempt_at is None
        assert "\n" not in row.last_error
        reasons[what] = row.last_error
    assert "300 bytes" in reasons["header"] and "header" in reasons["header"]
    assert "Content type is 400 bytes" in reasons["content type"]
    assert "Queue name" in reasons["queue name"] and "U+000A" in reasons["queue name"]
    assert len(set(reasons.values())) == 3  # each its own reason


def test_relay_publishes_the_good_rows_and_fails_each_bad_one(queue_name, channel):
    good, bad = poisoned_batch(queue_name)
    # A good row after the bad ones too: nothing behind them may be held up.
    later = Message.objects.create(queue=Queue.objects.get(name=queue_name), body=b"after")
    good.append(later)

    started = time.monotonic()
    result = relay_once()
    elapsed = time.monotonic() - started

    assert (result.published, result.failed, result.retrying) == (7, 3, 0)
    assert result.batches == 1
    assert elapsed < 3, elapsed  # the newline name is refused before any declare
    assert_isolated(good, bad, channel, queue_name)
    assert not due().exists()  # nothing left to stall the next pass
    assert relay_once().batches == 0


def test_bulk_publish_isolates_bad_rows(queue_name, channel):
    good, bad = poisoned_batch(queue_name)
    rows = list(Message.objects.select_related("queue").order_by("pk"))

    result = publish_messages(rows)

    assert sorted(result.published) == sorted(row.message_id for row in good)
    assert set(result.failed) == {row.message_id for row in bad.values()}
    assert result.retrying == []
    assert_isolated(good, bad, channel, queue_name)


def test_bad_rows_fail_for_good_even_while_the_broker_is_down(queue_name, settings):
    good, bad = poisoned_batch(queue_name)
    down = {**settings.MESSAGING, "BROKER_URL": f"amqp://guest:guest@127.0.0.1:{closed_port()}/"}

    with override_settings(MESSAGING=down):
        result = relay_once()

    assert result.error is not None  # the pass could not connect: nothing was claimed
    rows = list(Message.objects.select_related("queue").order_by("pk"))
    with override_settings(MESSAGING=down):
        outcome = publish_messages(rows)
    assert set(outcome.retrying) == {row.message_id for row in good}  # an outage: pending
    for row in good:
        row.refresh_from_db()
        assert row.status == Message.Status.PENDING
        assert "cannot reach the broker" in row.last_error
    for row in bad.values():
        row.refresh_from_db()
        assert row.status == Message.Status.FAILED  # its own fault: failed, not retried


def test_send_copies_of_a_bad_template_fails_every_copy_with_the_reason(queue_name, channel):
    queue = Queue.objects.create(name=queue_name)
    template = Message(queue=queue, body=b"x", content_type=WIDE_TYPE)

    result = send_copies(template, 3)

    assert result.published == [] and result.retrying == []
    assert len(result.failed) == 3
    (reason,) = set(result.failed.values())
    assert "Content type is 400 bytes" in reason
    assert set(Message.objects.values_list("status", flat=True)) == {Message.Status.FAILED}
    assert broker.inspect_queue(channel, queue_name) is None  # not even declared


def test_send_copies_to_a_newline_queue_answers_at_once(queue_name):
    queue = Queue.objects.create(name=queue_name)
    Queue.objects.filter(pk=queue.pk).update(name=f"{queue_name}\nx")
    queue.refresh_from_db()

    started = time.monotonic()
    result = send_copies(Message(queue=queue, body=b"x"), 2)

    assert time.monotonic() - started < 3
    assert len(result.failed) == 2 and not result.retrying
    assert all("U+000A" in reason for reason in result.failed.values())


def test_send_copies_of_a_good_template_still_works(queue_name, channel):
    queue = Queue.objects.create(name=queue_name)
    result = send_copies(Message(queue=queue, body=b"ok", headers={"a": 1}), 5)
    assert len(result.published) == 5 and not result.failed
    assert len(drain(queue_name, channel, ids=True)) == 5


# --------------------------------------------------------------------------- the broker layer


def test_publish_many_refuses_only_the_items_it_cannot_encode(queue_name, channel):
    """Below the validators: the pipelined publisher itself settles an item pika cannot
    encode with its own MessageRefused and sends every other item."""
    channel.queue_declare(queue_name)
    items = [
        Outgoing("", queue_name, b"a", message_id="a"),
        Outgoing("", queue_name, b"b", message_id="b", headers={LONG_KEY: 1}),
        Outgoing("", queue_name, b"c", message_id="c", content_type=WIDE_TYPE),
        Outgoing("", queue_name, b"d", message_id="d", headers={"set": {1, 2}}),
        Outgoing("", queue_name, b"e", message_id="e"),
    ]
    with PipelinedPublisher(window=2) as publisher:
        outcomes = publisher.publish_many(items)
        again = publisher.publish_many([Outgoing("", queue_name, b"f", message_id="f")])

    assert outcomes[0] is None and outcomes[4] is None and again == [None]
    for index in (1, 2, 3):
        assert isinstance(outcomes[index], MessageRefused), outcomes[index]
    assert "the key is 300 bytes" in str(outcomes[1])
    assert "Content type is 400 bytes" in str(outcomes[2])
    assert "set values cannot be sent" in str(outcomes[3])
    assert drain(queue_name, channel, ids=True) == ["a", "e", "f"]


@pytest.fixture
def stuck_names(queue_name: str) -> Iterator[list[str]]:
    """Names with a newline: RabbitMQ never answers a queue.declare of one (it creates
    the queue under the name without the newline, which is deleted afterwards)."""
    names: list[str] = []
    yield names
    with broker.connection() as conn:
        for name in names:
            conn.channel().queue_delete(name.replace("\n", ""))
            conn.channel().queue_delete(name.replace("\n", "") + ".dlq")


def test_an_unanswered_declaration_fails_alone_within_the_timeout(queue_name, stuck_names):
    stuck = f"{queue_name}\nstuck"
    stuck_names.append(stuck)
    with PipelinedPublisher(rpc_timeout=1) as publisher:
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match=r"did not answer queue\.declare .* 1 s"):
            publisher.declare(QueueSpec(name=stuck))
        assert time.monotonic() - started < 2
        assert publisher.is_open  # the connection is fine; the stuck channel was dropped
        assert publisher.declare(QueueSpec(name=queue_name)) == 0  # on a fresh channel


def test_call_each_waits_once_for_all_and_fails_the_unanswered_call_alone(
    queue_name, stuck_names, channel
):
    channel.queue_declare(queue_name)
    stuck = f"{queue_name}\nstuck"
    stuck_names.append(stuck)
    missing = f"{queue_name}.missing-{uuid.uuid4().hex[:6]}"
    calls = [
        {"queue": queue_name, "passive": True},
        {"queue": stuck, "durable": True},
        {"queue": missing, "passive": True},
    ]
    with PipelinedPublisher() as publisher:
        started = time.monotonic()
        answers = publisher.call_each("queue_declare", calls, timeout=1)
        elapsed = time.monotonic() - started

    assert elapsed < 2
    assert answers[0].method.message_count == 0
    assert isinstance(answers[1], BrokerUnavailable) and "did not answer" in str(answers[1])
    assert answers[2].reply_code == 404
