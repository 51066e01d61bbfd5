"""The process's long-lived publisher, on the real broker and database:
threads, fork, a connection the broker closes, a stopped broker, idle heartbeats,
``apublish``, and the messages of one transaction sent together after its commit."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection, connections, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging import apublish, broker, conf, publish
from messaging.admin.message_admin import publish_pks
from messaging.exceptions import InvalidMessage
from messaging.models import Message, Queue
from messaging.publishing import build_message, flush, relay, send_copies
from messaging.tasks import publish_messages_task
from tests.support.counting_proxy import counted_connections
from tests.support.draining import drain
from tests.support.outages import broker_stopped
from tests.support.rabbitmq import queue_depth, rabbitmqctl


class Boom(Exception):
    pass


def publisher_connections(pid: int | None = None) -> list[str]:
    """The broker's connections named as this process's publisher (of ``pid``): what
    ``rabbitmqctl list_connections name client_properties`` shows (the name RabbitMQ
    3.10 lists is the peer address; the client's name is its ``connection_name``)."""
    name = (
        f'{{"connection_name","messaging publisher {socket.gethostname()}:{pid or os.getpid()}"}}'
    )
    out = rabbitmqctl("-q", "list_connections", "name", "client_properties")
    found = [line.split("\t")[0] for line in out.splitlines() if name in line]
    return [peer for peer in found if peer not in _BEFORE]


#: Connections of this process's name open before the test (an earlier test's publisher
#: in this pytest process): not the test's to count.
_BEFORE: set[str] = set()


@pytest.fixture
def fresh_publisher() -> Iterator[broker.ProcessPublisher]:
    """This process's publisher, with no connection yet (closed again afterwards)."""
    broker.close_process_publisher()
    _BEFORE.clear()
    _BEFORE.update(publisher_connections())
    yield broker.process_publisher()
    broker.close_process_publisher()
    _BEFORE.clear()


@pytest.fixture
def publish_calls() -> Iterator[list[int]]:
    """The size of every batch the process's publisher hands to its real
    PipelinedPublisher (built through the publisher factory)."""
    sizes: list[int] = []

    class Counting(broker.PipelinedPublisher):
        def publish_many(self, items):  # noqa: ANN001
            items = list(items)
            sizes.append(len(items))
            return super().publish_many(items)

    previous = broker.set_publisher_factory(Counting)
    yield sizes
    broker.set_publisher_factory(previous)


# --------------------------------------------------------------------------- threads


def test_many_threads_share_one_connection(transactional_db, queue_name, fresh_publisher):
    threads, each = 8, 15
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(each):
                publish(queue_name, f"{n}-{i}".encode())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not errors
    assert len(publisher_connections()) == 1
    rows = Message.objects.filter(queue__name=queue_name)
    assert rows.count() == threads * each
    assert set(rows.values_list("status", flat=True)) == {Message.Status.PUBLISHED}
    on_broker = drain(queue_name)
    ids = [message_id for message_id, _ in on_broker]
    assert len(ids) == len(set(ids)) == threads * each
    assert set(ids) == set(rows.values_list("message_id", flat=True))


def test_idle_connection_is_kept_with_heartbeats(transactional_db, queue_name, fresh_publisher):
    with override_settings(MESSAGING={**settings.MESSAGING, "HEARTBEAT": 2}):
        publish(queue_name, b"first")
        first = fresh_publisher._connection
        time.sleep(5)  # 2.5 heartbeat intervals without a publish
        second = publish(queue_name, b"second")
        assert fresh_publisher._connection is first  # not replaced, not reconnected
        assert second.status == Message.Status.PUBLISHED
        assert len(publisher_connections()) == 1


# --------------------------------------------------------------------------- fork


def _child(queue: str, report: int, wait: int) -> None:
    """In the forked child: its own database connection, publish, report, wait."""
    inherited = [c.connection for c in connections.all()]  # never closed, never collected
    for conn in connections.all():
        conn.connection = None
    try:
        message = publish(queue, b"from the child")
        message.refresh_from_db()
        os.write(report, f"{message.status} {len(inherited)}\n".encode())
        os.read(wait, 1)  # the parent has looked at the broker's connections
        connection.close()
        code = 0
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        os.write(report, f"error {exc!r}\n".encode())
        code = 1
    os._exit(code)


def test_fork_child_publishes_on_its_own_connection(transactional_db, queue_name, fresh_publisher):
    publish(queue_name, b"before the fork")
    parent_connection = fresh_publisher._connection
    report_r, report_w = os.pipe()
    wait_r, wait_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(queue_name, report_w, wait_r)
    try:
        line = os.read(report_r, 1000).decode().strip()
        assert line.startswith("published"), line
        assert len(publisher_connections(pid)) == 1  # the child's own
        assert len(publisher_connections()) == 1  # the parent's, still there
    finally:
        os.write(wait_w, b"x")
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    after = publish(queue_name, b"after the fork")
    assert after.status == Message.Status.PUBLISHED
    assert fresh_publisher._connection is parent_connection
    assert sorted(body for _, body in drain(queue_name)) == [
        b"after the fork",
        b"before the fork",
        b"from the child",
    ]


# --------------------------------------------------------------------------- broker trouble


@pytest.mark.broker_control
@pytest.mark.parametrize("pause", [0.0, 1.5])
def test_next_call_succeeds_after_the_broker_closed_the_connection(
    transactional_db, queue_name, fresh_publisher, pause, caplog
):
    caplog.set_level(logging.INFO, logger="messaging.broker.process")
    publish(queue_name, b"one")
    before = fresh_publisher._connection
    rabbitmqctl("-q", "close_all_connections", "test")
    time.sleep(pause)  # 0: the close may still be in flight; 1.5: it arrived while idle
    second = publish(queue_name, b"two")
    assert second.status == Message.Status.PUBLISHED, second.last_error
    assert fresh_publisher._connection is not before
    assert [body for _, body in drain(queue_name)] == [b"one", b"two"]
    logged = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("publisher connected to amqp://") for line in logged), logged
    assert any(line.startswith("publisher reconnected to amqp://") for line in logged), logged
    password = broker.connection_parameters(conf.broker_urls()[0]).credentials.password
    assert not any(f":{password}@" in line for line in logged)


@pytest.fixture
def opened(settings) -> Iterator[list[tuple[str, int]]]:  # noqa: ANN001
    """Every broker connection opened during the test (through a counting proxy)."""
    with counted_connections(settings) as connections_opened:
        yield connections_opened


def test_publish_send_admin_relay_and_celery_share_the_connection(
    transactional_db, queue_name, opened, fresh_publisher
):
    publish(queue_name, b"publish()")
    template = build_message(queue_name, b"send")
    assert len(send_copies(template, 3).published) == 3  # manage.py send
    failed = Message.objects.create(
        queue=Queue.objects.get(name=queue_name), body=b"admin", status=Message.Status.FAILED
    )
    assert publish_pks([failed.pk]).published == [failed.message_id]  # the admin action
    pending = Message.objects.create(queue=failed.queue, body=b"relay")
    assert relay.relay_once().published == 1
    again = Message.objects.create(queue=failed.queue, body=b"task", status="failed")
    assert publish_messages_task([again.pk])["published"] == 1  # the Celery task
    assert len(opened) == 1
    assert len(publisher_connections()) == 1
    pending.refresh_from_db()
    assert pending.status == Message.Status.PUBLISHED
    assert queue_depth(queue_name) == 7


@pytest.mark.broker_control
def test_stopped_broker_leaves_rows_pending_and_the_relay_sends_them_once(
    transactional_db, queue_name, fresh_publisher
):
    publish(queue_name, b"warm-up")  # a connection that the stop will close
    with broker_stopped():
        alone = [publish(queue_name, f"alone {i}".encode()) for i in range(3)]
        with transaction.atomic():
            together = [publish(queue_name, f"together {i}".encode()) for i in range(2)]
        assert flush(30)  # the publisher thread has tried them
        for message in alone + together:
            message.refresh_from_db()
            assert message.status == Message.Status.PENDING
            assert message.last_error and message.attempts == 1
    Message.objects.filter(status=Message.Status.PENDING).update(next_attempt_at=timezone.now())
    result = relay.relay_once()
    assert result.published == 5 and result.error is None
    assert relay.relay_once().published == 0
    bodies = [body for _, body in drain(queue_name)]
    assert sorted(bodies) == sorted(
        [b"warm-up"] + [f"alone {i}".encode() for i in range(3)] + [b"together 0", b"together 1"]
    )
    assert len(publisher_connections()) == 1


# --------------------------------------------------------------------------- apublish


@pytest.fixture
def silent_broker() -> Iterator[str]:
    """A URL whose server accepts TCP connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield f"amqp://guest:guest@127.0.0.1:{server.getsockname()[1]}/%2F"
    server.close()


def test_apublish_from_async_code(transactional_db, queue_name, fresh_publisher, silent_broker):
    async def main() -> tuple[Message, Message, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.02)

        async def slow() -> Message:
            try:
                with override_settings(
                    MESSAGING={
                        **settings.MESSAGING,
                        "BROKER_URL": silent_broker,
                        "CONNECTION_TIMEOUT": 1,
                    }
                ):
                    return await apublish(queue_name, b"while the broker is silent")
            finally:
                done.set()

        pending, _ = await asyncio.gather(slow(), ticker())
        published = await apublish(queue_name, json={"n": 1}, headers={"k": "v"})
        return pending, published, ticks

    pending, published, ticks = async_to_sync(main)()
    assert ticks >= 10  # the event loop ran while the publish waited for the broker
    pending.refresh_from_db()
    assert pending.status == Message.Status.PENDING and pending.last_error
    assert published.status == Message.Status.PUBLISHED
    assert drain(queue_name) == [(published.message_id, b'{"n":1}')]


# --------------------------------------------------------------------------- transactions


def test_messages_of_a_transaction_go_out_together_in_order(
    transactional_db, queue_name, fresh_publisher, publish_calls
):
    with transaction.atomic():
        sent = [publish(queue_name, f"m{i}".encode()) for i in range(20)]
        assert queue_depth(queue_name) is None and publish_calls == []
    assert flush(10)  # the publisher thread has them
    assert publish_calls == [20]  # one pipelined flush
    assert [m.status for m in sent] == [Message.Status.PUBLISHED] * 20
    assert [body for _, body in drain(queue_name)] == [f"m{i}".encode() for i in range(20)]


def test_nothing_goes_out_for_a_rolled_back_transaction(
    transactional_db, queue_name, fresh_publisher, publish_calls
):
    with pytest.raises(Boom), transaction.atomic():
        for i in range(5):
            publish(queue_name, f"m{i}".encode())
        raise Boom
    assert flush(10)
    assert publish_calls == []
    assert not Message.objects.exists()
    with transaction.atomic():  # the next transaction is not mixed up with it
        publish(queue_name, b"next")
    assert flush(10)
    assert publish_calls == [1]
    assert [body for _, body in drain(queue_name)] == [b"next"]


def test_savepoints_rolled_back_or_released(
    transactional_db, queue_name, fresh_publisher, publish_calls
):
    with transaction.atomic():
        publish(queue_name, b"a")
        with pytest.raises(Boom), transaction.atomic():
            publish(queue_name, b"rolled back")
            raise Boom
        with transaction.atomic():
            publish(queue_name, b"b")  # a savepoint released into the transaction
        publish(queue_name, b"c")
    assert flush(10)
    assert publish_calls == [3]
    assert [body for _, body in drain(queue_name)] == [b"a", b"b", b"c"]
    assert Message.objects.count() == 3


def test_first_publish_in_a_rolled_back_savepoint(
    transactional_db, queue_name, fresh_publisher, publish_calls
):
    with transaction.atomic():
        with pytest.raises(Boom), transaction.atomic():
            publish(queue_name, b"rolled back")
            raise Boom
        publish(queue_name, b"kept")
    assert flush(10)
    assert publish_calls == [1]
    assert [body for _, body in drain(queue_name)] == [b"kept"]


# --------------------------------------------------------------------------- lean DB work


def statements(context: CaptureQueriesContext) -> list[str]:
    """The first word of each query run (BEGIN / COMMIT left out: SQLite lists them)."""
    words = [q["sql"].split()[0].upper() for q in context.captured_queries]
    return [w for w in words if w not in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")]


def test_a_queue_already_seen_costs_one_insert_and_one_update(
    transactional_db, queue_name, fresh_publisher
):
    publish(queue_name, b"first")  # reads (creates) the Queue row
    with CaptureQueriesContext(connection) as one:
        publish(queue_name, b"second")
    assert statements(one) == ["INSERT", "UPDATE"]
    with CaptureQueriesContext(connection) as ten, transaction.atomic():
        for i in range(10):
            publish(queue_name, f"t{i}".encode())
    # One INSERT each: the publisher thread sends them and stores them with one UPDATE.
    assert statements(ten) == ["INSERT"] * 10
    assert flush(10)
    assert queue_depth(queue_name) == 12
    assert Message.objects.filter(status=Message.Status.PUBLISHED).count() == 12


def test_the_queue_cache_follows_changes_to_the_row(transactional_db, queue_name, fresh_publisher):
    publish(queue_name, b"1")
    row = Queue.objects.get(name=queue_name)
    row.schema = {"type": "object"}
    row.save()
    with pytest.raises(InvalidMessage):
        publish(queue_name, b"[1]")
    Message.objects.filter(queue=row).delete()
    row.delete()
    recreated = publish(queue_name, b"2")
    assert recreated.queue_id != row.pk
    assert Queue.objects.get(name=queue_name).pk == recreated.queue_id
