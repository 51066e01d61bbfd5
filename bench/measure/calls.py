"""Publishing as a view does (:mod:`bench.calls`): ``publish()`` per call, inside
``atomic()``, from 8 threads, and its baselines, each in a process of its own; and the
commit-to-confirm latency at a steady rate (``mode="latency"``: p50 / p99 in the note)."""

from __future__ import annotations

import json
import statistics
import sys

from bench.measure.base import Context
from bench.process import BenchError, command_env, run
from bench.report import Row


def calls(ctx: Context, row: Row, kind: str | None, **spec: object) -> None:
    """One :mod:`bench.calls` run of ``ctx.args.calls_n`` calls; the row notes how many
    broker connections the process opened."""
    count = ctx.args.calls_n
    queue = ctx.queues.new(f"calls.{row.key}")
    try:
        spec = {"queue": queue, "count": count, "size": ctx.args.size, **spec}
        done = run(
            [sys.executable, "-m", "bench.calls", json.dumps(spec)],
            command_env(kind or "sqlite"),
            timeout=120 + count / 20,
        )
    finally:
        ctx.queues.drop(queue)
    if done.returncode != 0:
        raise BenchError(done.failure())
    result = json.loads(done.stdout.strip().splitlines()[-1])
    opened = result["connections"]
    notes = [f"{opened} broker connection{'s' if opened != 1 else ''} opened"]
    if result.get("drain_seconds"):
        notes.append(f"publisher thread drained {result['drain_seconds'] * 1000:.0f} ms after")
    if "p50" in result:
        _latencies.setdefault(row.key, []).append((result["p50"], result["p99"]))
        p50s, p99s = zip(*_latencies[row.key], strict=True)
        notes.append(
            f"commit → confirm p50 {statistics.median(p50s) * 1000:.1f} ms, "
            f"p99 {statistics.median(p99s) * 1000:.1f} ms (median of {len(p50s)} rounds)"
        )
    row.note = "; ".join(notes)
    row.messages = result["messages"]
    ctx.sample(row, result["seconds"])


#: Row key -> (p50, p99) of each round of a latency row.
_latencies: dict[str, list[tuple[float, float]]] = {}
