"""Publishing as a view does (:mod:`bench.calls`): ``publish()`` per call, inside
``atomic()``, from 8 threads, and its baselines, each in a process of its own."""

from __future__ import annotations

import json
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
    row.note = f"{opened} broker connection{'s' if opened != 1 else ''} opened"
    row.messages = result["messages"]
    ctx.sample(row, result["seconds"])
