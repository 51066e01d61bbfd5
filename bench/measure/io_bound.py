"""The ``io`` phase (issue 25): I/O-bound handlers — wait 20 ms, then one INSERT, acked
after the work — on PostgreSQL, by ``runconsumer --threads 8`` (plain and ``async def``
handlers), a Celery worker (``--pool threads -c 8``, acks_late, prefetch multiplier 1)
and a dramatiq worker (``--processes 1 --threads 8``), in the same run.

Each worker starts on a filled queue; its rate is the INSERTs' span (first to last
``done_at``), so start-up costs nobody anything. The peak RSS of the worker process tree
is sampled every 0.1 s: ``runconsumer`` at 8 threads and at 1, Celery ``--pool prefork
-c 8`` (parent and children summed) beside them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench import config, io_workers, raw
from bench.measure.base import Context
from bench.process import BenchError, command_env, log, manage, started
from bench.report import Row

THREADS = 8
#: Messages of the one-thread memory run (20 ms each: a longer run shows nothing more).
ONE_THREAD_COUNT = 300


def _effects_sql(statement: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(config.postgres_url(), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_io_effect (id bigserial PRIMARY KEY, "
            "message_id text NOT NULL, done_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
        cursor = conn.execute(statement)
        return cursor.fetchall() if cursor.description else []


def _effects() -> tuple[int, float]:
    """(rows, seconds from the first to the last INSERT)."""
    ((count, span),) = _effects_sql(
        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM max(done_at) - min(done_at)), 0) "
        "FROM bench_io_effect"
    )
    return int(count), float(span)


def _tree_rss(pid: int) -> int:
    """VmRSS of ``pid`` and its descendants, in bytes."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        todo.extend(int(c) for c in children)
    return total


def _run_worker(
    cmd: list[str], env: dict[str, str], count: int, timeout: float
) -> tuple[float, int]:
    """Start the worker on its filled queue, wait for ``count`` INSERTs, stop it (SIGTERM,
    then SIGKILL); (span seconds, peak tree RSS)."""
    peak = 0
    deadline = time.monotonic() + timeout
    with started(cmd, env) as (proc, _out, err):
        while True:
            peak = max(peak, _tree_rss(proc.pid))
            done, span = _effects()
            if done >= count:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                err.seek(0)
                tail = (err.read().strip().splitlines() or ["no output"])[-1]
                raise BenchError(f"{done} of {count} done ({tail[:200]})")
            time.sleep(0.1)
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return span * count / max(1, done - 1), peak, done - count


def runconsumer(ctx: Context, row: Row, handler: str, threads: int, count: int) -> int:
    """One ``runconsumer --threads`` run; the sample is the INSERTs' span; peak RSS."""
    queue = ctx.queues.new(f"io.{handler}.t{threads}")
    _effects_sql("TRUNCATE bench_io_effect")
    raw.fill(ctx.url, queue, count, ctx.body)
    cmd = manage(
        "runconsumer", queue, "--threads", str(threads), "--handler",
        f"bench.io_workers.{handler}", "-v", "0",
    )  # fmt: skip
    try:
        seconds, peak, extra = _run_worker(cmd, command_env("postgres"), count, 120 + count * 0.05)
    finally:
        ctx.queues.drop(queue)
    if extra:
        raise BenchError(f"{extra} INSERTs beyond the {count} messages (handled twice)")
    row.note = f"peak RSS {peak / 2**20:.0f} MiB"
    ctx.sample(row, seconds)
    return peak


def peer(ctx: Context, row: Row, which: str, count: int, pool: str = "threads") -> int:
    """Celery (``pool`` threads or prefork, 8) or dramatiq (1 process × 8 threads)."""
    queue = ctx.queues.new(f"io.{which}.{pool}")
    _effects_sql("TRUNCATE bench_io_effect")
    env = {**command_env(), "BENCH_IO_QUEUE": queue, "BENCH_POSTGRES_URL": config.postgres_url()}
    enqueue = [sys.executable, "-m", "bench.io_workers", "enqueue", which, queue, str(count)]
    done = subprocess.run(enqueue, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise BenchError(f"enqueue for {which}: {done.stderr.strip().splitlines()[-1:]}")
    if which == "celery":
        cmd = [
            sys.executable, "-m", "celery", "-A", "bench.io_celery", "worker", "-Q", queue,
            "--pool", pool, "-c", str(THREADS), "--without-gossip", "--without-mingle",
            "--without-heartbeat", "-l", "warning",
        ]  # fmt: skip
    else:
        cmd = [
            sys.executable, "-m", "dramatiq", "bench.io_dramatiq", "--processes", "1",
            "--threads", str(THREADS), "--queues", queue,
        ]  # fmt: skip
    try:
        seconds, peak, extra = _run_worker(cmd, env, count, 120 + count * 0.05)
    finally:
        ctx.queues.drop(queue)
        raw.delete_queues(ctx.url, [f"{queue}.DQ", f"{queue}.XQ"])
    row.note = f"peak RSS {peak / 2**20:.0f} MiB" + (f"; {extra} jobs ran twice" if extra else "")
    ctx.sample(row, seconds)
    return peak


def ideal(ctx: Context, row: Row, count: int) -> None:
    """Eight jobs at once, each the wait plus ~1 ms for the INSERT: no measurement."""
    ctx.sample(row, count * (io_workers.IO_WAIT + 0.001) / THREADS)


def memory(ctx: Context, row: Row, peaks: dict[str, int]) -> None:
    """The peak RSS of the runs, side by side (one line, in the row's value)."""
    t8, t1, prefork = peaks.get("t8"), peaks.get("t1"), peaks.get("prefork")
    if not (t8 and t1):
        raise BenchError("no runconsumer memory sample")
    parts = [f"8 threads {t8 / 2**20:.0f} MiB = {t8 / t1:.2f}× 1 thread ({t1 / 2**20:.0f} MiB)"]
    if prefork:
        parts.append(f"Celery prefork -c 8 {prefork / 2**20:.0f} MiB")
    row.value = "; ".join(parts)
    row.note = "target: 8 threads ≤ 1.3× 1 thread"
    log(f"{row.key}: {row.value}")


def run_phase(ctx: Context) -> None:
    """One round of the io phase (PostgreSQL): the ideal, runconsumer at 8 threads
    (plain and async handlers) and at 1, Celery (threads, then prefork for its memory),
    dramatiq, the memory line; then p300 at 4 threads on light handlers."""
    from bench.measure import runconsumer as consume

    a, r = ctx.args, ctx.results
    n = a.io_n
    what = f"I/O-bound: wait {io_workers.IO_WAIT * 1000:g} ms + one INSERT, PostgreSQL"
    r.row("io-ideal", f"{what}: ideal for 8 at once (8 / 21 ms), computed", messages=n)
    ctx.measure(r.rows["io-ideal"], lambda: ideal(ctx, r.rows["io-ideal"], n))
    peaks: dict[str, int] = {}
    cases = [
        ("io-t8", "`runconsumer --threads 8`", "io_wait_insert", THREADS, n, "t8"),
        (
            "io-async-t8",
            "`runconsumer --threads 8`, `async def`",
            "aio_wait_insert",
            THREADS,
            n,
            "",
        ),
        ("io-t1", "`runconsumer` (1 thread)", "io_wait_insert", 1, min(n, ONE_THREAD_COUNT), "t1"),
    ]
    for key, text, handler, threads, count, peak in cases:
        row = r.row(key, f"{what}: {text}", messages=count)
        ctx.measure(
            row,
            lambda row=row, h=handler, t=threads, c=count, p=peak: peaks.__setitem__(
                p or "_", runconsumer(ctx, row, h, t, c)
            ),
        )
    for key, text, which, pool, peak in [
        ("io-celery", "Celery worker `--pool threads -c 8`, acks_late", "celery", "threads", ""),
        ("io-dramatiq", "dramatiq worker `--processes 1 --threads 8`", "dramatiq", "", ""),
        (
            "io-celery-prefork",
            "Celery `--pool prefork -c 8`, acks_late",
            "celery",
            "prefork",
            "prefork",
        ),
    ]:
        row = r.row(key, f"{what}: {text}", messages=n)
        ctx.measure(
            row,
            lambda row=row, w=which, p=pool, k=peak: peaks.__setitem__(
                k or "_", peer(ctx, row, w, n, p or "threads")
            ),
        )
    mem = r.row("io-memory", "I/O-bound: peak RSS of the worker (process tree)", rate_unit=False)
    ctx.measure(mem, lambda: memory(ctx, mem, peaks))
    light = r.row(
        f"p{a.prefetch}-t4-postgres",
        f"consume: `runconsumer` prefetch {a.prefetch} `--threads 4` (batch 1), no-op handler, "
        "PostgreSQL",
        messages=a.n,
    )
    ctx.measure(
        light,
        lambda: consume.consume(ctx, light, "postgres", a.prefetch, 1, a.n, threads=4),
    )
