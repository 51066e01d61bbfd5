"""The I/O-bound work of the ``io`` phase, the same for every worker: wait
:data:`IO_WAIT` seconds (a stand-in for an HTTP call), then one INSERT into
``bench_io_effect`` (whose ``done_at`` the driver reads), acked after the work.

* ``runconsumer``: :func:`io_wait_insert` and the ``async def`` :func:`aio_wait_insert`
  (``--handler bench.io_workers.NAME``), the INSERT on Django's connection, inside the
  receipt's transaction;
* Celery: the task ``bench.io_task`` of :func:`make_celery` (acks_late, prefetch
  multiplier 1; the worker runs ``celery -A bench.io_celery``), the INSERT by psycopg on
  a connection per worker thread (autocommit);
* dramatiq: the actor of :func:`dramatiq_actor` (``dramatiq bench.io_dramatiq``, its
  queue from ``BENCH_IO_QUEUE``), the same INSERT.

``python -m bench.io_workers enqueue celery|dramatiq QUEUE N`` puts N jobs in QUEUE."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from typing import Any

#: Seconds each job waits before its INSERT.
IO_WAIT = 0.02
INSERT = "INSERT INTO bench_io_effect (message_id) VALUES (%s)"
_local = threading.local()


def io_wait_insert(delivery: Any) -> None:
    from django.db import connection

    time.sleep(IO_WAIT)
    with connection.cursor() as cursor:
        cursor.execute(INSERT, [delivery.message_id or ""])


def _insert(message_id: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(INSERT, [message_id])


async def aio_wait_insert(delivery: Any) -> None:
    """The async twin: ``await asyncio.sleep``, then the INSERT on Django's connection
    through ``sync_to_async`` (thread-sensitive: the receipt's transaction)."""
    from asgiref.sync import sync_to_async

    await asyncio.sleep(IO_WAIT)
    await sync_to_async(_insert)(delivery.message_id or "")


def _psycopg() -> Any:
    conn = getattr(_local, "conn", None)
    if conn is None:
        import psycopg

        conn = _local.conn = psycopg.connect(os.environ["BENCH_POSTGRES_URL"], autocommit=True)
    return conn


def _work(job: int) -> None:
    time.sleep(IO_WAIT)
    _psycopg().execute(INSERT, (str(job),))


def make_celery() -> Any:
    from celery import Celery

    app = Celery("bench_io", broker=os.environ["MESSAGING_BROKER_URL"])
    app.conf.update(
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    app.task(name="bench.io_task")(_work)
    return app


def dramatiq_actor() -> Any:
    import dramatiq
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    dramatiq.set_broker(RabbitmqBroker(url=os.environ["MESSAGING_BROKER_URL"]))
    queue = os.environ["BENCH_IO_QUEUE"]
    return dramatiq.actor(_work, actor_name="bench_io", queue_name=queue, max_retries=0)


def enqueue(peer: str, queue: str, count: int) -> None:
    if peer == "celery":
        app = make_celery()
        for job in range(count):
            app.send_task("bench.io_task", args=[job], queue=queue)
        app.close()
    else:
        os.environ["BENCH_IO_QUEUE"] = queue
        actor = dramatiq_actor()
        for job in range(count):
            actor.send(job)
        actor.broker.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["enqueue"]:
        enqueue(sys.argv[2], sys.argv[3], int(sys.argv[4]))
