"""The ``tasks`` phase's no-op tasks (this app's backend, ``django-tasks-db``, Celery) and
the subcommands the phase runs in a process of their own (settings
``bench.tasks_settings``)::

    python -m bench.tasks_jobs enqueue rabbitmq|db|celery N   # N no-op tasks, no atomic()
    python -m bench.tasks_jobs percall rabbitmq|db|celery N   # seconds per enqueue in atomic()
    python -m bench.tasks_jobs latency N                      # enqueue→finished, idle worker

Celery's worker writes its first-start and last-finish times (``task_prerun`` /
``task_postrun``) to ``BENCH_TASKS_TIMES`` once it has run ``BENCH_TASKS_N`` tasks."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.tasks_settings")
django.setup()

from celery import Celery, signals  # noqa: E402
from django.db import transaction  # noqa: E402

try:  # noqa: E402
    from django.tasks import task
except ImportError:
    from django_tasks import task

CELERY_QUEUE = os.environ.get("BENCH_TASKS_CELERY_QUEUE", "bench.tasks.celery")


@task
def noop() -> None:
    return None


@task(backend="db")
def noop_db() -> None:
    return None


celery_app = Celery("bench_tasks", broker=os.environ.get("MESSAGING_BROKER_URL", ""))
celery_app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=int(os.environ.get("BENCH_TASKS_PREFETCH", "1")),
    task_serializer="json",
    task_default_queue=CELERY_QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    broker_transport_options={"confirm_publish": True},
)


@celery_app.task(name="bench.tasks_noop")
def noop_celery() -> None:
    return None


_times: dict[str, float] = {"count": 0}


@signals.task_prerun.connect
def _first_start(**_kwargs: Any) -> None:
    _times.setdefault("first", time.time())


@signals.task_postrun.connect
def _last_finish(**_kwargs: Any) -> None:
    _times["last"] = time.time()
    _times["count"] += 1
    if _times["count"] == int(os.environ.get("BENCH_TASKS_N", "0")):
        with open(os.environ["BENCH_TASKS_TIMES"], "w") as out:
            json.dump(_times, out)


ENQUEUE = {
    "rabbitmq": lambda: noop.enqueue(),
    "db": lambda: noop_db.enqueue(),
    "celery": lambda: noop_celery.delay(),
}


def enqueue(kind: str, count: int) -> None:
    for _ in range(count):
        ENQUEUE[kind]()
    _flush()


def percall(kind: str, count: int) -> None:
    """One task per transaction: the caller's time per call (publishing after the
    commit happens on the publisher thread for this app); then the time until every
    message is confirmed."""
    call = ENQUEUE[kind]
    for _ in range(min(50, count)):  # warm up: connections, queue rows
        with transaction.atomic():
            call()
    _flush()
    start = time.perf_counter()
    for _ in range(count):
        with transaction.atomic():
            call()
    calls = time.perf_counter() - start
    _flush()
    total = time.perf_counter() - start
    print(json.dumps({"per_call": calls / count, "with_confirms": total / count}))


def latency(count: int) -> None:
    """Enqueue one task, wait for it to finish, ``count`` times: finished_at - enqueued_at."""
    from messaging.models import TaskRecord

    samples = []
    for _ in range(count):
        result = noop.enqueue()
        deadline = time.monotonic() + 30
        while True:
            row = TaskRecord.objects.filter(result_id=result.id, status="SUCCESSFUL").first()
            if row is not None:
                samples.append((row.finished_at - row.enqueued_at).total_seconds())
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"task {result.id} not finished in 30 s")
            time.sleep(0.001)
    quantiles = statistics.quantiles(samples, n=100)
    print(json.dumps({"p50": statistics.median(samples), "p99": quantiles[98], "n": count}))


def _flush() -> None:
    from messaging import publishing

    flush = getattr(publishing, "flush", None)
    if flush is not None:
        flush(60)


def main(argv: list[str]) -> None:
    command, *rest = argv
    if command == "enqueue":
        enqueue(rest[0], int(rest[1]))
    elif command == "percall":
        percall(rest[0], int(rest[1]))
    elif command == "latency":
        latency(int(rest[0]))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    # The tasks' module path must be bench.tasks_jobs (the worker refuses __main__.noop).
    from bench.tasks_jobs import main as module_main

    module_main(sys.argv[1:])
