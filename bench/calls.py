"""Publishing the way a web view does: one ``messaging.publish()`` call at a time, and the
baselines it is measured against, each run as ``python -m bench.calls '<json spec>'`` in
a process of its own (settings ``bench.settings`` on ``BENCH_DATABASE_URL``).

Modes (``spec["mode"]``):

- ``publish``: ``publish()`` outside a transaction (``per_txn`` 0) or ``per_txn`` calls in
  each ``transaction.atomic()``; ``threads`` threads share the ``count`` calls;
- ``floor``: the same work by hand on a kept channel: ORM INSERT of the row, a confirmed
  publish, ORM UPDATE;
- ``insert``: the ceiling of ``publish()`` inside ``atomic()``: ``per_txn`` rows (1 if
  unset) written in each ``transaction.atomic()`` and nothing published — by
  ``Message.objects.create`` (``how`` ``"orm"``) or by one hand-written INSERT on
  Django's cursor (``how`` ``"sql"``, the default); the rows are deleted after the
  check;
- ``celery``: Celery ``send_task`` on its pooled connection with ``confirm_publish``;
- ``latency``: ``publish()`` 1 per ``atomic()`` at a steady ``rate`` per second shared by
  ``threads`` threads; reports the commit-to-confirm wait of each message (from the
  ``atomic()`` block's exit to its ``message_published`` signal, sent once the confirmed
  row is stored: an upper bound of the broker's confirm) as ``p50`` / ``p99`` seconds.

Inside ``atomic()`` the rows go to the process's publisher thread: ``seconds`` is what
the callers paid (until the last call returned); ``drain_seconds`` the wait after it
until every row was confirmed and stored (:func:`messaging.publishing.flush`).

One warm-up call first (connect, declare, read the Queue row), outside the timing. Prints
one JSON line: ``{"messages", "seconds", "connections"}`` — broker connections opened
(warm-up included) — after checking every row is ``published`` and every message is on
the broker.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import django

from bench import raw

#: Broker connections opened in this process (see :func:`_count_connections`).
_opened = [0]


def _count_connections() -> list[int]:
    """Counts every broker connection the app's publisher or py-amqp (Celery) opens: the
    app's through the publisher factory (:func:`messaging.broker.set_publisher_factory`,
    a :class:`~messaging.broker.PipelinedPublisher` that counts each connection it
    opens), Celery's by wrapping py-amqp's ``Connection.connect``."""
    import amqp

    from messaging import broker

    opened = _opened

    class CountingPublisher(broker.PipelinedPublisher):
        def open(self) -> None:
            before = self.connection
            super().open()
            if self.connection is not None and self.connection is not before:
                opened[0] += 1

    real_amqp = amqp.Connection.connect

    def amqp_connect(self: Any, *args: Any, **kwargs: Any) -> Any:
        opened[0] += 1
        return real_amqp(self, *args, **kwargs)

    broker.set_publisher_factory(CountingPublisher)
    amqp.Connection.connect = amqp_connect  # type: ignore[method-assign]
    _opened[:] = [0]
    return _opened


def _timed(calls: Callable[[int], object], count: int, threads: int) -> float:
    """Seconds for ``count`` calls of ``calls(i)`` shared by ``threads`` threads."""
    from django.db import connection

    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        barrier.wait()
        try:
            for i in range(n, count, threads):
                calls(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    return seconds


def run_publish(
    queue: str, count: int, body: bytes, per_txn: int, threads: int
) -> tuple[float, float]:
    """Seconds of the calls, then of the publisher thread's drain after them."""
    from django.db import transaction

    from messaging import publish
    from messaging.publishing import flush

    publish(queue, body)  # warm-up
    if not per_txn:
        return _timed(lambda i: publish(queue, body), count, threads), 0.0

    def one_transaction(i: int) -> None:
        with transaction.atomic():
            for _ in range(per_txn):
                publish(queue, body)

    seconds = _timed(one_transaction, count // per_txn, threads) if count >= per_txn else 0.0
    started = time.perf_counter()
    if not flush(120):
        raise SystemExit("the publisher thread did not drain in 120 s")
    return seconds, time.perf_counter() - started


def run_latency(queue: str, count: int, body: bytes, rate: float, threads: int) -> dict:
    """``count`` calls of ``publish()`` 1 per ``atomic()``, ``rate`` per second in all
    from ``threads`` threads; commit-to-confirm percentiles (seconds)."""
    from django.db import transaction

    from messaging import publish, signals
    from messaging.publishing import flush

    committed: dict[str, float] = {}
    confirmed: dict[str, float] = {}

    def on_published(sender: Any, message: Any, **kwargs: Any) -> None:
        confirmed[message.message_id] = time.perf_counter()

    signals.message_published.connect(on_published, weak=False)
    with transaction.atomic():
        publish(queue, body)  # warm-up
    flush(30)
    start = time.perf_counter() + 0.1

    def one(i: int) -> None:
        pause = start + i / rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        with transaction.atomic():
            message = publish(queue, body)
        committed[message.message_id] = time.perf_counter()

    seconds = _timed(one, count, threads)
    flush(120)
    signals.message_published.disconnect(on_published)
    waits = sorted(confirmed[m] - t for m, t in committed.items() if m in confirmed)
    if len(waits) != count:
        raise SystemExit(f"{len(waits)} of {count} confirms seen")
    return {
        "seconds": seconds,
        "p50": waits[len(waits) // 2],
        "p99": waits[min(len(waits) - 1, int(len(waits) * 0.99))],
    }


def run_floor(queue: str, count: int, body: bytes) -> float:
    """INSERT + confirmed publish on a kept channel + UPDATE, per message, by hand."""
    import pika
    from django.utils import timezone

    from messaging.broker.pika_properties import properties
    from messaging.models import Message, Queue

    row = Queue.objects.get_or_create(name=queue)[0]
    _opened[0] += 1  # this one, opened by hand
    conn = pika.BlockingConnection(pika.URLParameters(os.environ["MESSAGING_BROKER_URL"]))
    channel = conn.channel()
    channel.queue_declare(queue=queue, durable=True)
    channel.confirm_delivery()

    def one(_i: int) -> None:
        message = Message.objects.create(queue=row, body=body, next_attempt_at=timezone.now())
        props = properties(content_type="", headers=None, persistent=True)
        props.message_id = message.message_id
        channel.basic_publish("", queue, body, props, mandatory=True)
        Message.objects.filter(pk=message.pk).update(
            status=Message.Status.PUBLISHED, published_at=timezone.now(), attempts=1
        )

    one(-1)  # warm-up
    try:
        return _timed(one, count, 1)
    finally:
        conn.close()


def run_insert(queue: str, count: int, body: bytes, per_txn: int, how: str) -> float:
    """``count`` rows, ``per_txn`` per ``atomic()``, written and never published."""
    from django.db import connection, transaction
    from django.utils import timezone

    from messaging.models import Message, Queue

    row = Queue.objects.get_or_create(name=queue)[0]
    quote = connection.ops.quote_name
    table, pk = quote(Message._meta.db_table), quote(Message._meta.pk.attname)
    sql = (
        f"INSERT INTO {table} (message_id, queue_id, exchange, routing_key, body, "
        "content_type, headers, persistent, correlation_id, reply_to, type, app_id, status, "
        "attempts, last_error, error_class, next_attempt_at, created_at, traceparent, "
        f"tracestate) VALUES (%s, %s, '', '', %s, '', '{{}}', TRUE, '', '', '', '', "
        f"'pending', 0, '', '', %s, %s, '', '') RETURNING {pk}"
    )

    def by_sql() -> None:
        now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute(sql, [str(uuid.uuid4()), row.pk, body, now, now])
            cursor.fetchone()

    def by_orm() -> None:
        Message.objects.create(queue=row, body=body, next_attempt_at=timezone.now())

    write = by_orm if how == "orm" else by_sql

    def one_transaction(_i: int) -> None:
        with transaction.atomic():
            for _ in range(per_txn):
                write()

    one_transaction(-1)  # warm-up
    return _timed(one_transaction, count // per_txn, 1)


def run_celery(queue: str, count: int) -> float:
    from celery import Celery

    app = Celery("bench", broker=os.environ["MESSAGING_BROKER_URL"])
    app.conf.broker_transport_options = {"confirm_publish": True}
    app.conf.task_serializer = "json"
    app.send_task("bench.noop", queue=queue)  # warm-up: connect, declare
    try:
        return _timed(lambda i: app.send_task("bench.noop", queue=queue), count, 1)
    finally:
        app.close()


def check(spec: dict[str, Any], expected: int) -> None:
    """Every row published (modes with rows) and ``expected`` messages on the broker."""
    from messaging.models import Message

    if spec["mode"] == "insert":
        written = Message.objects.filter(queue__name=spec["queue"]).count()
        if written != expected - 1 + (spec.get("per_txn") or 1):  # the warm-up transaction's
            raise SystemExit(f"{written} rows written, {expected} expected")
        return
    if spec["mode"] != "celery":
        rows = Message.objects.filter(queue__name=spec["queue"])
        published = rows.filter(status=Message.Status.PUBLISHED).count()
        if published != rows.count() or published != expected:
            raise SystemExit(f"{published} of {rows.count()} rows published, {expected} expected")
    ready = raw.depth(os.environ["MESSAGING_BROKER_URL"], spec["queue"])
    if ready != expected:
        raise SystemExit(f"{ready} messages on the broker, {expected} expected")


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    django.setup()
    opened = _count_connections()
    queue, count, body = spec["queue"], int(spec["count"]), raw.body_of(spec["size"])
    mode, threads, per_txn = spec["mode"], int(spec.get("threads", 1)), spec.get("per_txn", 0)
    extra: dict[str, Any] = {}
    if mode == "publish":
        if per_txn:
            count -= count % per_txn
        seconds, extra["drain_seconds"] = run_publish(queue, count, body, per_txn, threads)
    elif mode == "latency":
        extra = run_latency(queue, count, body, float(spec["rate"]), threads)
        seconds = extra.pop("seconds")
    elif mode == "floor":
        seconds = run_floor(queue, count, body)
    elif mode == "insert":
        per_txn = per_txn or 1
        count -= count % per_txn
        seconds = run_insert(queue, count, body, per_txn, spec.get("how", "sql"))
    elif mode == "celery":
        seconds = run_celery(queue, count)
    else:
        raise SystemExit(f"bench.calls: unknown mode {mode!r}")
    check(spec, count + 1)
    if mode == "insert":  # never to be published by a relay
        from messaging.models import Message

        Message.objects.filter(queue__name=queue).delete()
    result = {"messages": count, "seconds": seconds, "connections": opened[0], **extra}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
