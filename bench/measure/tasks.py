"""The ``tasks`` phase (issue 26), PostgreSQL: Django tasks on RabbitMQ
(``messaging.task_backend``) against ``django-tasks-db`` and Celery.

- ``tasks-rabbitmq`` / ``tasks-db`` / ``tasks-celery``: N no-op tasks enqueued first, then
  one worker process — ``runconsumer --tasks --prefetch P``, ``db_worker --batch``, a
  Celery worker ``--pool solo`` (acks_late, prefetch P) — from the first task's start to
  the last one's finish (the results' ``started_at`` / ``finished_at``; Celery's
  ``task_prerun`` / ``task_postrun``). This app's worker runs a batch of P/3 tasks in one
  transaction and writes their results as one statement with the batch's receipts; a
  no-op task ends before its RUNNING stamp is due, so none is written (a task still
  running after ``messaging.task_backend.stamps.RUNNING_AFTER`` gets one).
- ``tasks-enqueue-*``: one task per ``atomic()``, the caller's time per call (Celery's
  ``delay()`` with ``confirm_publish``); also per call until every message is confirmed.
- ``tasks-latency``: enqueue → finished on an idle ``runconsumer --tasks --prefetch 1``,
  p50 and p99 of one task at a time.

The enqueuers and workers run as subprocesses with ``bench.tasks_settings``."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import raw
from bench.measure.base import Context
from bench.process import BenchError, command_env, log, manage, run, started
from bench.report import Row

N = int(os.environ.get("BENCH_TASKS_N", "2000"))
PERCALL_N = int(os.environ.get("BENCH_TASKS_PERCALL_N", "1000"))
LATENCY_N = int(os.environ.get("BENCH_TASKS_LATENCY_N", "200"))


def _env(ctx: Context, **extra: str) -> dict[str, str]:
    env = command_env("postgres")
    env.update(
        DJANGO_SETTINGS_MODULE="bench.tasks_settings",
        BENCH_TASKS_PREFIX=f"{ctx.queues.prefix}.tasks.",
        BENCH_TASKS_CELERY_QUEUE=f"{ctx.queues.prefix}.tasks.celery",
        BENCH_TASKS_PREFETCH=str(ctx.args.prefetch),
        **extra,
    )
    return env


def _jobs(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    done = run([sys.executable, "-m", "bench.tasks_jobs", *args], env, timeout)
    if done.returncode != 0:
        raise BenchError(f"tasks_jobs {args[0]}: {done.failure()}")
    return done.stdout


def _sql(statement: str) -> list[tuple]:
    import psycopg

    from bench import config

    with psycopg.connect(config.postgres_url(), autocommit=True) as conn:
        cursor = conn.execute(statement)
        return cursor.fetchall() if cursor.description else []


def _span(table: str) -> tuple[int, float]:
    ((count, span),) = _sql(
        f"SELECT count(*), COALESCE(EXTRACT(EPOCH FROM max(finished_at) - min(started_at)), 0) "
        f"FROM {table} WHERE status = 'SUCCESSFUL'"
    )
    return int(count), float(span)


def migrate(ctx: Context) -> None:
    done = run(manage("migrate", "-v", "0"), _env(ctx), 300)
    if done.returncode != 0:
        raise BenchError(f"migrate for tasks: {done.failure()}")


def rabbitmq(ctx: Context, row: Row) -> None:
    _sql("TRUNCATE messaging_taskrecord")
    env = _env(ctx)
    _jobs(env, "enqueue", "rabbitmq", str(N))
    cmd = manage("runconsumer", "--tasks", "--prefetch", str(ctx.args.prefetch),
                 "--idle-timeout", "3", "-v", "0")  # fmt: skip
    done = run(cmd, env, 120 + N * 0.05)
    if done.returncode != 0:
        raise BenchError(done.failure())
    count, span = _span("messaging_taskrecord")
    if count != N:
        raise BenchError(f"{count} of {N} tasks successful")
    ctx.sample(row, span)


def database(ctx: Context, row: Row) -> None:
    _sql("TRUNCATE django_tasks_database_dbtaskresult")
    env = _env(ctx)
    _jobs(env, "enqueue", "db", str(N))
    cmd = manage("db_worker", "--backend", "db", "--batch", "--no-startup-delay",
                 "--interval", "0.1")  # fmt: skip
    done = run(cmd, env, 120 + N * 0.1)
    if done.returncode != 0:
        raise BenchError(done.failure())
    count, span = _span("django_tasks_database_dbtaskresult")
    if count != N:
        raise BenchError(f"{count} of {N} tasks successful")
    ctx.sample(row, span)


def celery(ctx: Context, row: Row) -> None:
    times = Path(tempfile.mkdtemp()) / "celery-times.json"
    env = _env(ctx, BENCH_TASKS_N=str(N), BENCH_TASKS_TIMES=str(times))
    _jobs(env, "enqueue", "celery", str(N))
    cmd = [sys.executable, "-m", "celery", "-A", "bench.tasks_jobs:celery_app", "worker",
           "-Q", env["BENCH_TASKS_CELERY_QUEUE"], "--pool", "solo", "--without-gossip",
           "--without-mingle", "--without-heartbeat", "-l", "warning"]  # fmt: skip
    deadline = time.monotonic() + 120 + N * 0.05
    try:
        with started(cmd, env) as (proc, _out, err):
            while not times.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    err.seek(0)
                    raise BenchError(f"celery: {(err.read().strip().splitlines() or ['?'])[-1]}")
                time.sleep(0.1)
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        raw.delete_queues(ctx.url, [env["BENCH_TASKS_CELERY_QUEUE"]])
    data = json.loads(times.read_text())
    ctx.sample(row, data["last"] - data["first"])


def percall(ctx: Context, row: Row, kind: str) -> None:
    _sql("TRUNCATE messaging_taskrecord, django_tasks_database_dbtaskresult")
    env = _env(ctx)
    data = json.loads(_jobs(env, "percall", kind, str(PERCALL_N)).strip().splitlines()[-1])
    if kind == "celery":
        raw.delete_queues(ctx.url, [env["BENCH_TASKS_CELERY_QUEUE"]])
    row.samples.append(data["per_call"])
    confirmed = getattr(row, "confirmed", [])
    confirmed.append(data["with_confirms"])
    row.confirmed = confirmed  # type: ignore[attr-defined]
    row.value = f"{statistics.median(row.samples) * 1000:.3f} ms per call"
    if kind == "rabbitmq":
        row.value += f" ({statistics.median(confirmed) * 1000:.3f} ms until confirmed)"
    if len(row.samples) > 1:
        row.value += f", median of {len(row.samples)}"
    log(f"{row.key}: {data['per_call'] * 1000:.3f} ms per call this round")


def latency(ctx: Context, row: Row) -> None:
    _sql("TRUNCATE messaging_taskrecord")
    env = _env(ctx)
    cmd = manage("runconsumer", "--tasks", "--prefetch", "1", "-v", "0")
    with started(cmd, env) as (proc, _out, _err):
        time.sleep(3)  # connected and consuming
        data = json.loads(_jobs(env, "latency", str(LATENCY_N)).strip().splitlines()[-1])
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    row.samples.append(data["p50"])
    p99s = getattr(row, "p99s", [])
    p99s.append(data["p99"])
    row.p99s = p99s  # type: ignore[attr-defined]
    row.value = (
        f"p50 {statistics.median(row.samples) * 1000:.1f} ms, "
        f"p99 {statistics.median(p99s) * 1000:.1f} ms"
    )
    if len(row.samples) > 1:
        row.value += f" (medians of {len(row.samples)})"
    log(f"{row.key}: p50 {data['p50'] * 1000:.1f} ms, p99 {data['p99'] * 1000:.1f} ms this round")


def run_phase(ctx: Context) -> None:
    """One round of the tasks phase (PostgreSQL)."""
    r = ctx.results
    try:
        migrate(ctx)  # django-tasks-db's table beside the app's
    except BenchError as exc:
        log(f"tasks: {exc}")
        return
    what = f"no-op Django tasks, 1 worker process, PostgreSQL, prefetch {ctx.args.prefetch}"
    batch = max(1, min(500, ctx.args.prefetch // 3))  # runconsumer's default batch size
    for key, text, fn in [
        ("tasks-rabbitmq", f"`runconsumer --tasks` (this app; batches of {batch})", rabbitmq),
        ("tasks-db", "django-tasks-db `db_worker`", database),
        ("tasks-celery", "Celery worker `--pool solo`, acks_late", celery),
    ]:
        row = r.row(key, f"{what}: {text}", messages=N)
        ctx.measure(row, lambda row=row, fn=fn: fn(ctx, row))
    for kind, text in [
        ("rabbitmq", "`task.enqueue()` (this app)"),
        ("db", "django-tasks-db `enqueue()`"),
        ("celery", "Celery `delay()`, confirm_publish"),
    ]:
        row = r.row(f"tasks-enqueue-{kind}", f"enqueue in `atomic()`, 1 per transaction: {text}",
                    rate_unit=False)  # fmt: skip
        ctx.measure(row, lambda row=row, kind=kind: percall(ctx, row, kind))
    row = r.row("tasks-latency", "enqueue → finished, idle `runconsumer --tasks --prefetch 1`",
                rate_unit=False)  # fmt: skip
    ctx.measure(row, lambda: latency(ctx, row))
    prefix = f"{ctx.queues.prefix}.tasks.default"
    raw.delete_queues(ctx.url, [prefix, f"{prefix}.dlq"])
