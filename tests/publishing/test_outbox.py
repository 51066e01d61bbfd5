"""The transactional outbox end to end: ``publish()`` in transactions, the broker's
answer stored on the row, a broker that is stopped and comes back, the relay and a real
``runconsumer``.

The broker-stop test stops the shared local RabbitMQ for a few seconds (other suites
running at the same time see it go away), so there is exactly one such test and it always
restarts the broker in ``finally``.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging import broker, conf, publish
from messaging.admin import publish_pks
from messaging.exceptions import PublishNacked, Unroutable
from messaging.models import Message, Queue, Receipt
from messaging.publishing import (
    build_message,
    flush,
    publish_ids,
    publish_messages,
    send_copies,
)
from messaging.publishing.outbox import outcome_fields, retry_delay
from messaging.publishing.statements import update_by_message_id
from tests.support.draining import drain
from tests.support.rabbitmq import queue_depth, rabbitmqctl
from tests.support.waiting import wait_for


class Boom(Exception):
    pass


# --------------------------------------------------------------------------- transactions


def test_rollback_leaves_nothing_on_the_broker(transactional_db, queue_name, channel):
    Queue.objects.create(name=queue_name)
    with broker.connection() as conn:
        broker.declare_queue(conn.channel(), queue_name)  # exists, so "nothing" is visible
    with pytest.raises(Boom), transaction.atomic():
        publish(queue_name, b"phantom")
        publish(queue_name, b"phantom 2")
        raise Boom
    assert not Message.objects.exists()
    assert queue_depth(queue_name) == 0


def test_commit_sends_exactly_one_message_with_the_exact_body(
    transactional_db, queue_name, channel
):
    body = "héllo ✓".encode() + b"\x00\xff" * 100
    with transaction.atomic():
        message = publish(queue_name, body, headers={"k": "v"})
        Queue.objects.filter(name=queue_name).update(arguments={})  # other work, same txn
    assert flush(10)
    assert drain(queue_name, channel) == [(message.message_id, body)]
    row = Message.objects.get(pk=message.pk)
    assert row.status == Message.Status.PUBLISHED
    assert row.attempts == 1
    assert row.published_at is not None


def test_message_id_on_the_broker_is_the_rows(transactional_db, queue_name, channel):
    messages = [publish(queue_name, f"m{i}".encode()) for i in range(5)]
    assert drain(queue_name, channel) == [
        (m.message_id, f"m{i}".encode()) for i, m in enumerate(messages)
    ]


# --------------------------------------------------------------------------- broker outcomes


def test_unroutable_is_failed_with_the_reason(transactional_db):
    key = f"nobody-{uuid.uuid4().hex[:8]}"
    with transaction.atomic():
        message = publish(exchange="amq.topic", routing_key=key, body=b"x")
    assert flush(10)
    row = Message.objects.get(pk=message.pk)
    assert row.status == Message.Status.FAILED
    assert row.last_error == f"unroutable: no queue bound for exchange amq.topic routing key {key}"
    assert row.attempts == 1
    assert row.next_attempt_at is None  # failed for good: the relay will not retry it


def test_nacked_message_stays_pending_and_is_retried(transactional_db, queue_name, channel):
    # A full queue with x-overflow=reject-publish makes the broker nack further publishes.
    queue = Queue.objects.create(
        name=queue_name, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    )
    first = publish(queue, b"fits")
    second = publish(queue, b"nacked")  # no exception: nacks are retried
    assert Message.objects.get(pk=first.pk).status == Message.Status.PUBLISHED
    row = Message.objects.get(pk=second.pk)
    assert row.status == Message.Status.PENDING
    assert "nack" in row.last_error
    assert row.attempts == 1
    assert row.next_attempt_at is not None

    assert drain(queue_name, channel) == [(first.message_id, b"fits")]  # room again
    result = publish_messages([row])
    assert result.published == [second.message_id]
    row.refresh_from_db()
    assert row.status == Message.Status.PUBLISHED
    assert row.attempts == 2
    assert drain(queue_name, channel) == [(second.message_id, b"nacked")]


def test_missing_exchange_fails_its_rows_and_not_the_others(transactional_db, queue_name, channel):
    exchange = f"no-such-{uuid.uuid4().hex[:8]}"
    lost = Message.objects.create(exchange=exchange, routing_key="rk", body=b"lost")
    kept = Message.objects.create(queue=Queue.objects.create(name=queue_name), body=b"kept")
    result = publish_messages([lost, kept])
    assert result.published == [kept.message_id]
    assert exchange in result.failed[lost.message_id]
    assert Message.objects.get(pk=lost.pk).status == Message.Status.FAILED
    assert drain(queue_name, channel) == [(kept.message_id, b"kept")]


def test_publish_messages_skips_published_rows(transactional_db, queue_name, channel):
    message = publish(queue_name, b"once")
    result = publish_messages([Message.objects.get(pk=message.pk)])
    assert result.busy == [message.message_id]
    assert result.published == []
    assert drain(queue_name, channel) == [(message.message_id, b"once")]


def test_each_outcome_writes_its_fields():
    now = timezone.now()
    assert outcome_fields(None, attempts=1, now=now, user_id=7) == {
        "status": Message.Status.PUBLISHED,
        "published_at": now,
        "published_by_id": 7,
        "last_error": "",
        "error_class": "",
        "next_attempt_at": None,
    }
    assert outcome_fields(PublishNacked("nacked"), attempts=3, now=now, user_id=7) == {
        "status": Message.Status.PENDING,
        "last_error": "nacked",
        "error_class": "PublishNacked",
        "next_attempt_at": now + retry_delay(3),
    }
    assert outcome_fields(Unroutable("unroutable"), attempts=3, now=now, user_id=7) == {
        "status": Message.Status.FAILED,
        "last_error": "unroutable",
        "error_class": "Unroutable",
        "next_attempt_at": None,
    }


@pytest.mark.parametrize("watched", [False, True], ids=["plain", "queries-captured"])
def test_the_outcome_update_writes_the_listed_rows_only(db, watched):
    queue = Queue.objects.create(name="orders")
    sent, other = (Message.objects.create(queue=queue, body=b"x") for _ in range(2))
    now = timezone.now()
    changes = outcome_fields(None, attempts=1, now=now, user_id=None)
    with CaptureQueriesContext(connection) if watched else nullcontext() as captured:
        assert update_by_message_id([sent.message_id], changes) == 1
    if watched:
        assert [q for q in captured.captured_queries if q["sql"].startswith("UPDATE")]
    sent.refresh_from_db()
    other.refresh_from_db()
    assert (sent.status, sent.attempts, sent.published_at) == ("published", 1, now)
    assert (other.status, other.attempts, other.published_at) == ("pending", 0, None)
    assert update_by_message_id([], changes) == 0


STORED = (
    "status",
    "attempts",
    "last_error",
    "error_class",
    "next_attempt_at",
    "published_at",
    "published_by",
)


def test_the_objects_hold_what_their_rows_got(transactional_db, queue_name):
    queue = Queue.objects.create(name=queue_name)
    sent = Message.objects.create(queue=queue, body=b"sent")
    lost = Message.objects.create(exchange=f"no-such-{uuid.uuid4().hex[:8]}", body=b"lost")
    waiting = Message.objects.create(queue=queue, body=b"waiting")
    publish_messages([sent, lost])
    with override_settings(
        MESSAGING={**settings.MESSAGING, "BROKER_URL": "amqp://guest:guest@127.0.0.1:1/%2F"}
    ):
        publish_messages([waiting])
    assert [sent.status, lost.status, waiting.status] == ["published", "failed", "pending"]
    for row in (sent, lost, waiting):
        stored = Message.objects.get(pk=row.pk)
        assert [getattr(row, name) for name in STORED] == [getattr(stored, name) for name in STORED]


def test_publish_ids_sends_in_the_order_given(db, captured_messages):
    queue = Queue.objects.create(name="orders")
    rows = [Message.objects.create(queue=queue, body=f"m{i}".encode()) for i in range(5)]
    done = Message.objects.create(queue=queue, body=b"done", status=Message.Status.PUBLISHED)
    order = [rows[3], rows[0], rows[4], done, rows[1]]
    result = publish_ids([row.pk for row in order], chunk_size=2)
    sent = [row.message_id for row in order if row is not done]
    assert [m.message_id for m in captured_messages] == sent == result.published
    assert result.busy == [done.message_id]  # not publishable: reported busy
    result = publish_pks([rows[2].pk, done.pk], statuses=(Message.Status.PENDING,))
    assert result.published == [rows[2].message_id] and result.busy == []  # left out


def test_pipelined_publisher_reports_each_outcome_in_order(queue_name, channel):
    key = f"nobody-{uuid.uuid4().hex[:8]}"
    items = [
        broker.Outgoing("", queue_name, f"m{i}".encode(), message_id=f"id-{i}") for i in range(2500)
    ]
    items.insert(1000, broker.Outgoing("amq.direct", key, b"returned", message_id="unroutable"))
    with broker.PipelinedPublisher(window=300) as publisher:
        publisher.ensure_declared(queue_name)
        outcomes = publisher.publish_many(items)
    assert len(outcomes) == 2501
    assert str(outcomes[1000]).startswith("unroutable: no queue bound for exchange amq.direct")
    assert all(outcome is None for i, outcome in enumerate(outcomes) if i != 1000)
    got = drain(queue_name, channel)
    assert [message_id for message_id, _ in got] == [f"id-{i}" for i in range(2500)]


def test_each_message_keeps_its_own_properties_in_a_batch(transactional_db, queue_name, channel):
    queue = Queue.objects.create(name=queue_name)
    rows = [
        Message.objects.create(
            queue=queue,
            body=f"m{i}".encode(),
            headers={"n": i} if i % 3 else {},
            content_type="text/plain" if i % 2 else "",
            persistent=bool(i % 4),
        )
        for i in range(40)
    ]
    with broker.PipelinedPublisher() as publisher:  # two batches on one connection
        assert publish_messages(rows[:20], publisher=publisher).ok
        assert publish_messages(rows[20:], publisher=publisher).ok
    got = {}
    while True:
        method, properties, body = channel.basic_get(queue_name, auto_ack=True)
        if method is None:
            break
        got[body] = properties
    assert len(got) == 40
    for i in range(40):
        properties = got[f"m{i}".encode()]
        assert properties.headers == ({"n": i} if i % 3 else None)
        assert properties.content_type == ("text/plain" if i % 2 else None)
        assert properties.delivery_mode == (2 if i % 4 else 1)


# --------------------------------------------------------------------------- broker down


@pytest.mark.broker_control
def test_broker_stopped_then_relay_delivers_once_to_a_consumer(
    transactional_db, manage, spawn, queue_name
):
    Queue.objects.create(name=queue_name)
    with broker.connection() as conn:
        broker.declare_queue(conn.channel(), queue_name)
    quick = {**settings.MESSAGING, "CONNECTION_TIMEOUT": 2}
    rabbitmqctl("stop_app", timeout=120)
    try:
        with override_settings(MESSAGING=quick):
            with transaction.atomic():
                message = publish(queue_name, b"kept safe")  # published on commit: no exception
            assert flush(30)
        row = Message.objects.get(pk=message.pk)
        assert row.status == Message.Status.PENDING
        assert row.attempts == 1
        assert row.last_error
        assert row.next_attempt_at is not None
    finally:
        rabbitmqctl("start_app", timeout=120)
        rabbitmqctl("await_startup", timeout=120)
    Message.objects.filter(pk=message.pk).update(next_attempt_at=None)  # due now

    relay = manage("relay", "--once")
    assert relay.returncode == 0, relay.stderr
    assert "1 published" in relay.stdout.decode()
    row = Message.objects.get(pk=message.pk)
    assert row.status == Message.Status.PUBLISHED
    assert row.attempts == 2

    consumer = spawn(
        "runconsumer",
        queue_name,
        "--handler",
        "tests.support.handlers.record",
        "--idle-timeout",
        "2",
    )
    assert consumer.wait(timeout=60) == 0, consumer.stderr.read()
    receipts = Receipt.objects.filter(queue_name=queue_name)
    assert [(r.message_id, r.outcome) for r in receipts] == [(message.message_id, "acked")]
    assert Message.objects.filter(exchange="handled", routing_key=message.message_id).count() == 1
    assert queue_depth(queue_name) == 0


# --------------------------------------------------------------------------- lost confirms


class StallingProxy:
    """A TCP proxy to the real broker whose broker→client direction can be stalled
    (``stall.set()``): publishes still reach the broker, its confirms never come back."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.stall = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = [self.server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            self.sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, stallable: bool) -> None:
        try:
            while data := source.recv(65536):
                while stallable and self.stall.is_set():
                    time.sleep(0.01)
                sink.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def proxy() -> Iterator[StallingProxy]:
    params = broker.connection_parameters(conf.broker_urls()[0])
    stalling = StallingProxy(params.host, params.port)
    yield stalling
    stalling.close()


def test_confirm_timeout_keeps_rows_pending_and_the_copy_is_deduplicated(
    transactional_db, manage, queue_name, proxy
):
    params = broker.connection_parameters(conf.broker_urls()[0])
    vhost = "%2F" if params.virtual_host == "/" else params.virtual_host
    user, password = params.credentials.username, params.credentials.password
    url = f"amqp://{user}:{password}@127.0.0.1:{proxy.port}/{vhost}"
    queue = Queue.objects.create(name=queue_name)
    rows = [Message.objects.create(queue=queue, body=f"m{i}".encode()) for i in range(3)]
    via_proxy = {**settings.MESSAGING, "BROKER_URL": url, "CONFIRM_TIMEOUT": 1}
    with override_settings(MESSAGING=via_proxy), broker.PipelinedPublisher() as publisher:
        publisher.ensure_declared(queue)  # answered: the proxy is not stalled yet
        proxy.stall.set()
        result = publish_messages(rows, publisher=publisher)
    proxy.stall.clear()
    assert sorted(result.retrying) == sorted(r.message_id for r in rows)
    for row in rows:
        row.refresh_from_db()
        assert row.status == Message.Status.PENDING
        assert row.last_error == "no publisher confirm from the broker within 1 s"
        assert row.attempts == 1
    # The broker did get them. The relay sends them again, with the same message_ids.
    wait_for(lambda: queue_depth(queue_name) == 3)
    Message.objects.update(next_attempt_at=None)
    assert manage("relay", "--once").returncode == 0
    assert queue_depth(queue_name) == 6
    assert Message.objects.published().count() == 3
    # The consumer's receipts recognise the copies: each message is handled once.
    consumer = manage(
        "runconsumer",
        queue_name,
        "--handler",
        "tests.support.handlers.record",
        "--idle-timeout",
        "2",
    )
    assert consumer.returncode == 0, consumer.stderr
    outcomes = Counter(Receipt.objects.values_list("outcome", flat=True))
    assert outcomes == {"acked": 3, "duplicate": 3}
    for row in rows:
        assert Message.objects.filter(exchange="handled", routing_key=row.message_id).count() == 1


def test_connection_lost_mid_send_loses_nothing(transactional_db, queue_name, proxy):
    params = broker.connection_parameters(conf.broker_urls()[0])
    vhost = "%2F" if params.virtual_host == "/" else params.virtual_host
    user, password = params.credentials.username, params.credentials.password
    url = f"amqp://{user}:{password}@127.0.0.1:{proxy.port}/{vhost}"
    queue = Queue.objects.create(name=queue_name)
    chunks = []

    def cut_after_the_first_chunk(n: int) -> None:
        chunks.append(n)
        if len(chunks) == 1:
            proxy.close()  # while the next chunk is on its way: the connection is lost

    with override_settings(MESSAGING={**settings.MESSAGING, "BROKER_URL": url}):
        result = send_copies(
            build_message(queue, b"x"), 50_000, chunk_size=5000, progress=cut_after_the_first_chunk
        )
    assert len(result.published) >= 5000
    assert result.retrying
    # Every recorded row is published (confirmed) or pending with the reason: none is lost.
    assert set(result.failed) == set(result.retrying)
    assert Message.objects.published().count() == len(result.published)
    pending = Message.objects.pending()
    assert pending.count() == len(result.retrying)
    assert all(row.last_error and row.next_attempt_at for row in pending[:50])
    # The broker holds every confirmed message (and maybe some it could not confirm).
    assert queue_depth(queue_name) >= len(result.published)
