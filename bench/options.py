"""The bench's flags, each also read from an environment variable (``BENCH_N`` ...)."""

from __future__ import annotations

import argparse
import os
import textwrap
from typing import Any

from bench.process import KINDS, ROOT

#: flag, environment variable, type, default, help
OPTIONS: list[tuple[str, str, type, Any, str]] = [
    ("--n", "BENCH_N", int, 50_000, "messages per high-prefetch consume run and raw (a)"),
    ("--n-p1", "BENCH_N_P1", int, 10_000, "messages per prefetch-1 run and raw (b)"),
    ("--publish-n", "BENCH_PUBLISH_N", int, 100_000, "raw publish and send --count"),
    ("--confirm-n", "BENCH_CONFIRM_N", int, 10_000, "raw publish with a confirm each"),
    ("--calls-n", "BENCH_CALLS_N", int, 1_000, "publish() calls per run of the calls phase"),
    ("--mem-n", "BENCH_MEM_N", int, 200_000, "messages consumed in the memory run"),
    ("--mem-first", "BENCH_MEM_FIRST", int, 50_000, "first RSS sample after this many"),
    ("--overview-rows", "BENCH_OVERVIEW_ROWS", int, 1_000_000, "receipts behind the overview"),
    ("--overview-repeat", "BENCH_OVERVIEW_REPEAT", int, 5, "warm GETs (median reported)"),
    ("--io-n", "BENCH_IO_N", int, 2_000, "messages per run of the io phase (I/O-bound handlers)"),
    ("--retry-n", "BENCH_RETRY_N", int, 1_000, "good messages of the retry rows"),
    ("--retry-delay", "BENCH_RETRY_DELAY", float, 5.0, "RETRY_DELAY of the retry rows"),
    ("--retry-attempts", "BENCH_RETRY_ATTEMPTS", int, 3, "MAX_ATTEMPTS of the retry rows"),
    ("--prefetch", "BENCH_PREFETCH", int, 300, "the high prefetch"),
    ("--batch-size", "BENCH_BATCH", int, 100, "runconsumer --batch-size, raw (c)'s batch"),
    ("--ack-every", "BENCH_ACK_EVERY", int, 100, "raw (a) acks multiple every N"),
    ("--size", "BENCH_SIZE", int, 256, "message body bytes"),
    ("--idle-timeout", "BENCH_IDLE", float, 2.0, "runconsumer --idle-timeout (never timed)"),
    (
        "--repeat",
        "BENCH_REPEAT",
        int,
        3,
        "rounds of the publish, calls, consume and retry phases (memory and overview run "
        "once); each row shows the median and, from 2 rounds, the min–max of its msg/s "
        "and of each ratio",
    ),
    ("--dbs", "BENCH_DBS", str, "sqlite,postgres", "databases"),
    (
        "--only",
        "BENCH_ONLY",
        str,
        "publish,calls,consume,memory,overview,retry,io,tasks",
        "phases to run (below)",
    ),
    ("--output", "BENCH_OUTPUT", str, str(ROOT / "bench" / "results.md"), "markdown report"),
    ("--prefix", "BENCH_PREFIX", str, "", "queue name prefix (default bench.<pid>)"),
]

#: --only names: phase -> what it runs (``consume`` is both consume phases).
PHASES = {
    "publish": "rows P0, P1, s-DB (the floor of send-DB: raw pika + psycopg / sqlite3 "
    "doing send --count's INSERTs, pipelined confirms and UPDATEs) and send-DB, back to "
    "back in each round",
    "calls": "rows calls-P1, floor-DB, call-CASE-DB, call-CASE-8t-DB and celery: publish() "
    "one call at a time (outside a transaction, 1 and 10 per atomic(); 1 and 8 threads) "
    "against raw pika, the same work on a kept channel and Celery send_task",
    "consume": "consume-high and consume-p1",
    "consume-high": "rows a, c-DB (the floor of pPREFETCH-DB: raw pika, prefetch PREFETCH, "
    "per --batch-size one COPY / executemany of the receipt rows + commit + multiple-ack) "
    "and pPREFETCH-DB, back to back in each round",
    "consume-p1": "rows b-DB (the floor of p1-DB: raw pika, prefetch 1, one receipt INSERT + "
    "commit + ack per message) and p1-DB (runconsumer --prefetch 1), back to back in each "
    "round",
    "memory": "row mem-DB (PostgreSQL if listed, else the first of --dbs)",
    "overview": "rows admin-DB and triage-DB (the failure triage page on the same data)",
    "retry": "rows retry-base-DB and retry-DB (runconsumer --prefetch 10 on N good messages, "
    "alone and behind one that always fails, RETRY_DELAY held by the broker)",
    "io": "rows io-*: I/O-bound handlers (20 ms wait + one INSERT, PostgreSQL) by runconsumer "
    "--threads 8 (plain and async def), 1 thread, a Celery worker (threads -c 8; prefork -c 8 "
    "for memory) and dramatiq (1 process x 8 threads) against the ideal; peak RSS; and "
    "pPREFETCH-t4-postgres (no-op handlers at --threads 4)",
}
PHASES["tasks"] = (
    "rows tasks-*: no-op Django tasks (PostgreSQL) by runconsumer --tasks, django-tasks-db's "
    "db_worker and a Celery worker (solo, acks_late); enqueue in atomic() per call; "
    "enqueue-to-finished latency p50/p99 (bench/measure/tasks.py)"
)
_EXPANDS = {"consume": {"consume-high", "consume-p1"}}


def _epilog() -> str:
    lines = ["phases (--only, comma-separated):"]
    for name, text in PHASES.items():
        lines.append(
            textwrap.fill(text, 78, initial_indent=f"  {name:<13} ", subsequent_indent=" " * 16)
        )
    lines += [
        "",
        "example, the prefetch-1 target rows alone, 3 rounds (the default):",
        "  BENCH_ONLY=consume-p1 BENCH_DBS=postgres BENCH_N_P1=5000 python -m bench",
        "a quick look at every row, one round:",
        "  BENCH_REPEAT=1 BENCH_N=5000 BENCH_N_P1=1000 BENCH_PUBLISH_N=10000 python -m bench",
    ]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Raw pika vs runconsumer/send on one broker and database; prints a "
        "markdown table with ratios. Each option also reads the variable in brackets "
        "(`make bench BENCH_N=20000`).",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flag, variable, kind, default, text in OPTIONS:
        value = os.environ.get(variable)
        p.add_argument(
            flag,
            type=kind,
            default=kind(value) if value else default,
            help=f"{text} [{variable}; default {default}]",
        )
    p.add_argument(
        "--keep",
        action="store_true",
        default=os.environ.get("BENCH_KEEP", "") not in ("", "0"),
        help="keep the bench databases afterwards [BENCH_KEEP=1]",
    )
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options; ``args.only`` is the set of phases with ``consume`` expanded."""
    p = parser()
    args = p.parse_args(argv)
    args.prefix = args.prefix or f"bench.{os.getpid()}"
    args.dbs = [k.strip() for k in args.dbs.split(",") if k.strip()]
    only = {k.strip() for k in args.only.split(",") if k.strip()}
    bad = [k for k in args.dbs if k not in KINDS]
    if bad or not args.dbs:
        p.error(f"--dbs: use sqlite and/or postgres, not {bad or 'nothing'}")
    unknown = only - set(PHASES)
    if unknown:
        p.error(f"--only: unknown phase(s) {sorted(unknown)} (use {', '.join(PHASES)})")
    args.only = set().union(*(_EXPANDS.get(k, {k}) for k in only))
    return args
