"""The hand-off to the process's publisher thread (issue 29): a commit never waits for the
broker, a stalled broker leaves rows ``pending`` and the relay sends each once, a process
killed before its confirms loses nothing, refusals are still ``failed`` with
``message_failed``, the backlog is bounded, one publisher thread per process (threads and
a fork), and the relay beside a busy publishing process sends no row twice.

The broker is stalled through :mod:`tests.support.pausable_proxy` (the shared RabbitMQ
keeps running)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import OperationalError, transaction
from django.utils import timezone

from messaging import conf, publish, signals
from messaging.exceptions import Unroutable
from messaging.models import Message, Queue
from messaging.observability import metrics
from messaging.publishing import flush
from messaging.publishing.handoff import ROW_OVERHEAD, process_handoff
from messaging.publishing.relay import relay_once
from tests.support.draining import drain
from tests.support.environment import ROOT, manage_env
from tests.support.exactly_once import check_exactly_once
from tests.support.pausable_proxy import PausableProxy, pausable

#: Short timeouts, so a stalled broker costs the publisher thread seconds, not minutes.
QUICK = {"CONFIRM_TIMEOUT": 2.0, "CONNECTION_TIMEOUT": 2, "PUBLISH_RETRY_DELAY": 0.0}


@pytest.fixture
def quick(settings: Any) -> Iterator[None]:
    settings.MESSAGING = {**settings.MESSAGING, **QUICK}
    yield
    assert flush(30), "the publisher thread did not drain"


@pytest.fixture
def stalled_broker(settings: Any, quick: None) -> Iterator[PausableProxy]:
    """BROKER_URL through a :class:`PausableProxy` (connected, then handed over)."""
    with pausable(conf.broker_urls()[0]) as (through, proxy):
        settings.MESSAGING = {**settings.MESSAGING, "BROKER_URL": through}
        yield proxy
        proxy.resume()
        assert flush(30), "the publisher thread did not drain"


def commit_one(queue: str, body: bytes) -> Message:
    with transaction.atomic():
        return publish(queue, body)


def commit_retrying(queue: str, body: bytes) -> Message:
    """:func:`commit_one`, again while SQLite answers "database is locked" (a deferred
    transaction that read first cannot wait for another writer: SQLite refuses at once)."""
    for _ in range(50):
        try:
            return commit_one(queue, body)
        except OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.05)
    raise AssertionError("SQLite stayed locked")


def due_now(ids: list[str]) -> None:
    """The relay may take these rows now (as when their backoff or lease ends)."""
    Message.objects.filter(message_id__in=ids).update(next_attempt_at=timezone.now())


# --------------------------------------------------------------------------- the request


def test_commit_returns_while_the_broker_is_stalled_and_the_relay_sends_each_once(
    transactional_db, queue_name, stalled_broker
):
    warm = commit_one(queue_name, b"warm")  # connect and declare through the proxy
    assert flush(10)
    assert Message.objects.get(pk=warm.pk).status == Message.Status.PUBLISHED
    stalled_broker.stall()
    started = time.monotonic()
    messages = [commit_one(queue_name, f"m{i}".encode()) for i in range(40)]
    # Waiting for one confirm would take CONFIRM_TIMEOUT (2 s) at least.
    assert time.monotonic() - started < 2.0
    assert flush(60)  # the thread gave up: confirm timeout, then no connection
    ids = [m.message_id for m in messages]
    rows = Message.objects.filter(message_id__in=ids)
    assert Counter(rows.values_list("status", flat=True)) == {Message.Status.PENDING: 40}
    assert all(row.attempts >= 1 and row.last_error for row in rows)

    stalled_broker.resume()
    due_now(ids)
    result = relay_once()
    assert result.published == 40, result
    assert Counter(drain(queue_name, ids=True)) == Counter(
        {warm.message_id: 1, **dict.fromkeys(ids, 1)}
    )


def test_unroutable_after_commit_is_failed_with_the_reason_and_signalled(transactional_db, quick):
    seen: list[dict[str, Any]] = []

    def on_failed(sender: Any, **kwargs: Any) -> None:
        seen.append({**kwargs, "thread": threading.current_thread().name})

    signals.message_failed.connect(on_failed)
    try:
        key = f"nobody-{uuid.uuid4().hex[:8]}"
        with transaction.atomic():
            message = publish(exchange="amq.direct", routing_key=key, body=b"x")
        assert flush(10)
    finally:
        signals.message_failed.disconnect(on_failed)
    row = Message.objects.get(pk=message.pk)
    assert row.status == Message.Status.FAILED
    assert row.last_error == f"unroutable: no queue bound for exchange amq.direct routing key {key}"
    assert row.next_attempt_at is None
    assert [(s["message"].message_id, type(s["error"]), s["will_retry"]) for s in seen] == [
        (message.message_id, Unroutable, False)
    ]
    assert seen[0]["thread"] == "messaging-publisher"


def test_outside_a_transaction_publish_still_raises_the_refusal(transactional_db, quick):
    with pytest.raises(Unroutable):
        publish(exchange="amq.direct", routing_key=f"nobody-{uuid.uuid4().hex[:8]}", body=b"x")
    assert process_handoff().depth == 0


# --------------------------------------------------------------------------- the bound


def test_the_backlog_is_bounded_by_count_and_the_rest_is_left_to_the_relay(
    transactional_db, queue_name, settings, stalled_broker
):
    settings.MESSAGING = {**settings.MESSAGING, "PUBLISH_BACKLOG_MAX": 5}
    commit_one(queue_name, b"warm")
    assert flush(10)
    stalled_broker.stall()
    depths = []
    messages = []
    for i in range(20):
        messages.append(commit_one(queue_name, f"m{i}".encode()))
        depths.append(process_handoff().depth)
    assert max(depths) == 5
    if metrics.available():
        assert metrics.PUBLISH_BACKLOG.child()._value.get() == depths[-1]
    ids = [m.message_id for m in messages]
    now = timezone.now()
    released = Message.objects.filter(message_id__in=ids, next_attempt_at__lte=now)
    assert released.count() == 15  # due for the relay at once, not after the lease
    assert set(released.values_list("message_id", flat=True)) == set(ids[5:])

    stalled_broker.resume()
    assert flush(60)
    due_now(ids)
    relay_once()
    assert Message.objects.filter(message_id__in=ids, status="published").count() == 20
    on_broker = Counter(drain(queue_name, ids=True))
    assert {i: on_broker[i] for i in ids} == dict.fromkeys(ids, 1)


def test_the_backlog_is_bounded_by_bytes(transactional_db, queue_name, settings, stalled_broker):
    body = b"x" * 1000
    settings.MESSAGING = {
        **settings.MESSAGING,
        "PUBLISH_BACKLOG_MAX_BYTES": 3 * (len(body) + ROW_OVERHEAD),
    }
    commit_one(queue_name, b"warm")
    assert flush(10)
    stalled_broker.stall()
    messages = [commit_one(queue_name, body) for _ in range(6)]
    assert process_handoff().depth == 3
    ids = [m.message_id for m in messages]
    leased = Message.objects.filter(message_id__in=ids, next_attempt_at__gt=timezone.now())
    assert set(leased.values_list("message_id", flat=True)) == set(ids[:3])
    stalled_broker.resume()


# --------------------------------------------------------------------------- processes


def shell(code: str, settings_json: dict[str, Any]) -> subprocess.Popen[str]:
    """``manage.py shell -c code`` against the test database, with MESSAGING overrides."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", textwrap.dedent(code)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=manage_env(MESSAGING_TEST_SETTINGS=json.dumps(settings_json)),
        cwd=ROOT,
    )


def read_json(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The next JSON line the process prints (``shell`` may print others first)."""
    while line := proc.stdout.readline():
        if line.startswith("{"):
            return json.loads(line)
    proc.kill()
    raise AssertionError(f"no report; stderr: {proc.stderr.read()[-3000:]}")


def test_sigkill_after_commit_before_the_confirms_the_relay_sends_each_once(
    transactional_db, queue_name, quick, start_consumer
):
    Queue.objects.create(name=queue_name)
    with pausable(conf.broker_urls()[0]) as (through, proxy):
        proc = shell(
            f"from tests.support.handoff_scripts import commit_then_wait; "
            f"commit_then_wait({queue_name!r}, 30)",
            {**QUICK, "BROKER_URL": through, "CONFIRM_TIMEOUT": 30.0},
        )
        try:
            assert read_json(proc) == {"ready": True}
            proxy.stall(replies_only=True)  # the messages reach the broker, no confirm comes
            proc.stdin.write("go\n")
            proc.stdin.flush()
            ids = read_json(proc)["committed"]
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
            proxy.resume()
    rows = Message.objects.filter(message_id__in=ids)
    # Committed, never confirmed: pending, untried, still leased to the dead process.
    assert Counter(rows.values_list("status", "attempts")) == {("pending", 0): 30}
    assert all(row.next_attempt_at > timezone.now() for row in rows)
    due_now(ids)  # the lease ran out
    assert relay_once().published == 30
    warm = Message.objects.filter(queue__name=queue_name).exclude(message_id__in=ids)
    all_ids = ids + list(warm.values_list("message_id", flat=True))
    consumer = start_consumer(queue_name, "--idle-timeout", "3")
    assert consumer.wait(timeout=120) == 0, consumer.describe()
    check_exactly_once(queue_name, all_ids, context="sigkill before confirms")


def test_threads_and_a_fork_one_publisher_per_process_nothing_lost(
    transactional_db, queue_name, quick
):
    Queue.objects.create(name=queue_name)
    proc = shell(
        f"from tests.support.handoff_scripts import threads_and_fork; "
        f"threads_and_fork({queue_name!r}, 8, 10)",
        QUICK,
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    reports = [line for line in lines if "pid" in line]
    assert [line["child_status"] for line in lines if "child_status" in line] == [0]
    assert len(reports) == 2 and reports[0]["pid"] != reports[1]["pid"]
    assert [r["publisher_threads"] for r in reports] == [1, 1]
    assert all(r["drained"] for r in reports)
    ids = reports[0]["ids"] + reports[1]["ids"]
    assert len(set(ids)) == 160
    rows = Message.objects.filter(queue__name=queue_name)
    assert Counter(rows.values_list("status", flat=True)) == {"published": 161}
    on_broker = Counter(drain(queue_name, ids=True))
    assert len(on_broker) == 161 and set(on_broker.values()) == {1}


def test_the_relay_beside_a_busy_publishing_process_sends_no_row_twice(
    transactional_db, queue_name, quick, spawn
):
    Queue.objects.create(name=queue_name)
    relay = spawn("relay", env={"MESSAGING_TEST_SETTINGS": json.dumps({"RELAY_INTERVAL": 0.1})})
    ids: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        from django.db import connections

        try:
            for i in range(50):
                message_id = commit_retrying(queue_name, f"{n}-{i}".encode()).message_id
                with lock:
                    ids.append(message_id)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert flush(60)
    assert relay.poll() is None, relay.stderr.read()  # it ran the whole time
    relay.send_signal(signal.SIGTERM)
    relay.wait(timeout=30)
    rows = Message.objects.filter(message_id__in=ids)
    assert Counter(rows.values_list("status", "attempts")) == {("published", 1): 200}
    on_broker = Counter(drain(queue_name, ids=True))
    assert on_broker == Counter(dict.fromkeys(ids, 1))
