"""The bench's results: rows of samples, the target ratios, the markdown table and the
report written to ``bench/results.md``. Pure code, no broker or database (but
:func:`machine_info`, which asks them their versions)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import statistics
from argparse import Namespace
from dataclasses import dataclass, field
from pathlib import Path

HEADER = [
    "| id | measurement | messages | seconds | msg/s | ratio | target | result |",
    "| --- | --- | ---: | ---: | ---: | --- | --- | --- |",
]


@dataclass
class Check:
    text: str  # "0.62× a"
    target: str  # "≥ 0.6×"
    ok: bool | None  # None: no target


@dataclass
class Row:
    key: str
    label: str
    messages: int | None = None
    samples: list[float] = field(default_factory=list)  # seconds, one per round
    rate_unit: bool = True  # msg/s column applies
    checks: list[Check] = field(default_factory=list)
    note: str = ""
    error: str = ""
    value: str = ""  # shown instead of msg/s (memory, admin)
    retried: bool = False  # the first attempt failed (broker restarted?)

    @property
    def seconds(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def rates(self) -> list[float]:
        """msg/s of each round (empty when the msg/s column does not apply)."""
        if not self.samples or not self.messages or not self.rate_unit:
            return []
        return [self.messages / s for s in self.samples if s > 0]

    @property
    def rate(self) -> float | None:
        """The median msg/s of the rounds."""
        rates = self.rates
        return statistics.median(rates) if rates else None

    @property
    def rate_range(self) -> tuple[float, float] | None:
        """(min, max) msg/s when there are two rounds or more."""
        rates = self.rates
        return (min(rates), max(rates)) if len(rates) > 1 else None


class Results:
    """The rows in the order they were first measured."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    def row(self, key: str, label: str, **kwargs: object) -> Row:
        """The row ``key``, made on first use (later rounds add samples to it)."""
        if key not in self.rows:
            self.rows[key] = Row(key, label, **kwargs)
        return self.rows[key]

    def ratio(self, key: str, base: str, target: float | None) -> None:
        """Add a check to row ``key``: its median rate over ``base``'s, against ``target``;
        from two rounds, also the min–max of the ratio round by round."""
        row, baseline = self.rows.get(key), self.rows.get(base)
        if row is None or baseline is None:
            return
        if row.rate is None or baseline.rate is None:
            row.checks.append(Check(f"– × {base}", _target(target), None))
            return
        ratio = row.rate / baseline.rate
        ok = None if target is None else ratio >= target
        # A miss just below the target shows a third digit (0.797×, not "0.80× … miss").
        digits = 3 if ok is False and round(ratio, 2) >= target else 2
        text = f"{ratio:.{digits}f}× {base}"
        spread = round_ratios(row, baseline)
        if spread:
            text += f" ({min(spread):.2f}–{max(spread):.2f})"
        row.checks.append(Check(text, _target(target), ok))

    def at_most(self, key: str, seconds: float) -> None:
        """Add a check to row ``key``: its median seconds at most ``seconds``."""
        row = self.rows.get(key)
        if row is None or row.seconds is None:
            return
        row.checks.append(Check(f"{row.seconds:.2f} s", f"≤ {seconds:g} s", row.seconds <= seconds))

    @property
    def errors(self) -> list[Row]:
        return [r for r in self.rows.values() if r.error]


def round_ratios(row: Row, baseline: Row) -> list[float]:
    """``row``'s rate over ``baseline``'s in each round, when both have the same two or
    more rounds (a row that failed in a round has fewer samples: then none)."""
    rates, base = row.rates, baseline.rates
    if len(rates) < 2 or len(rates) != len(base):
        return []
    return [r / b for r, b in zip(rates, base, strict=True) if b > 0]


def add_targets(results: Results, kinds: list[str], prefetch: int) -> None:
    """The issue's targets as checks on their rows (rows not measured get none)."""
    for kind in kinds:
        results.ratio(f"s-{kind}", "P0", None)  # what the rows cost by hand
        results.ratio(f"send-{kind}", f"s-{kind}", 0.8)
        results.ratio(f"send-{kind}", "P1", 5)
        results.ratio(f"send-{kind}", "P0", None)
    for kind in kinds:
        results.ratio(f"call-out-{kind}", f"floor-{kind}", 0.8)
        results.ratio(f"call-atomic10-{kind}", f"call-atomic1-{kind}", 3)
        results.ratio(f"call-atomic1-{kind}", "celery", 1.5)  # issue 29
        results.ratio(f"call-atomic10-{kind}", "celery", 3)  # issue 29 (was 1)
        for case in ("out", "atomic1", "atomic10"):
            results.ratio(f"call-{case}-8t-{kind}", f"call-{case}-{kind}", 1)
        results.ratio(f"floor-{kind}", "calls-P1", None)
    for kind in kinds:
        results.ratio(f"p1-{kind}", f"b-{kind}", 0.8)
        results.ratio(f"c-{kind}", "a", None)  # what writing the receipts costs by hand
        results.ratio(f"p{prefetch}-{kind}", f"c-{kind}", 0.8)
        results.ratio(f"p{prefetch}-{kind}", "a", 0.6 if kind == "postgres" else None)
    for kind in kinds:
        results.ratio(f"retry-{kind}", f"retry-base-{kind}", 0.9)
    # Issue 25: I/O-bound handlers, one process, 8 at once.
    results.ratio("io-t8", "io-ideal", 0.8)
    results.ratio("io-t8", "io-celery", 1.0)
    results.ratio("io-t8", "io-dramatiq", 1.0)
    results.ratio("io-async-t8", "io-ideal", 0.8)
    results.ratio("io-t1", "io-ideal", None)
    results.ratio(f"p{prefetch}-t4-postgres", f"p{prefetch}-postgres", None)
    # Every admin page of the app within 0.5 s with a million receipts on PostgreSQL.
    for key in list(results.rows):
        if key.startswith(("admin-", "triage-", "page-")) and key.endswith("-postgres"):
            results.at_most(key, 0.5)


def _target(target: float | None) -> str:
    return "" if target is None else f"≥ {target:g}×"


def _verdict(ok: bool | None) -> str:
    return {True: "pass", False: "**miss**", None: ""}[ok]


def _rate_cell(row: Row) -> str:
    if row.error:
        return f"error: {row.error}"
    if row.value:
        return row.value
    if row.rate is None:
        return "–"
    spread = row.rate_range
    extra = f" ({spread[0]:,.0f}–{spread[1]:,.0f})" if spread else ""
    return f"{row.rate:,.0f}{extra}"


def render_row(row: Row) -> list[str]:
    """The table lines of one row: one, plus one per further check."""
    seconds = f"{row.seconds:.2f}" if row.seconds is not None and not row.error else "–"
    messages = f"{row.messages:,}" if row.messages else "–"
    notes = "; ".join(n for n in (row.note, "retried once" if row.retried else "") if n)
    label = row.label + (f" ({notes})" if notes else "")
    checks = row.checks or [Check("", "", None)]
    first = checks[0]
    lines = [
        f"| {row.key} | {label} | {messages} | {seconds} | {_rate_cell(row)} | {first.text} | "
        f"{first.target} | {_verdict(first.ok)} |"
    ]
    for check in checks[1:]:
        lines.append(f"| | | | | | {check.text} | {check.target} | {_verdict(check.ok)} |")
    return lines


def render(results: Results) -> str:
    """The markdown table (printed, and the middle of results.md)."""
    lines = list(HEADER)
    for row in results.rows.values():
        lines.extend(render_row(row))
    return "\n".join(lines)


def sizes(a: Namespace) -> str:
    rounds = "median" if a.repeat < 2 else "median (min–max of msg/s and of each round's ratio)"
    return (
        f"{a.size}-byte persistent messages; consume {a.n:,} (prefetch {a.prefetch}) and "
        f"{a.n_p1:,} (prefetch 1); publish {a.publish_n:,} ({a.confirm_n:,} with a confirm "
        f"each); memory {a.mem_first:,} → {a.mem_n:,}; overview {a.overview_rows:,} "
        f"receipts; {a.repeat} round(s), {rounds}"
    )


def markdown(table: str, args: Namespace, machine: str, when: dt.datetime) -> str:
    """The text of results.md around ``table``."""
    return (
        f"# Benchmark results\n\n"
        f"`make bench` on {when:%Y-%m-%d %H:%M} UTC.\n\n"
        f"Machine: {machine}.\n\nSizes: {sizes(args)}.\n\n{table}\n\n"
        "Method: see docs/benchmarks.md. Seconds are measured inside each "
        "process: raw consumers from the first delivery to the last ack (after the last "
        "commit for the floors b-DB and c-DB); raw publishers from the first publish to "
        "the broker's answer after the last; the floor s-DB from its first `created_at` "
        "stamp to its last `published_at` stamp; `runconsumer` from the earliest "
        "`received_at` to the latest `finished_at` of its receipts; `send` from the "
        "earliest `created_at` to the latest `published_at` of its rows. Startup and the "
        "idle timeout are outside every timing.\n"
    )


def _hardware() -> list[str]:
    parts = [f"{os.cpu_count()} CPUs"]
    with contextlib.suppress(OSError, IndexError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                parts.append(f"{int(line.split()[1]) / 1024 / 1024:.0f} GB RAM")
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                parts.append(line.split(":", 1)[1].strip())
                break
    parts.append(f"{platform.system()} {platform.release()}")
    return parts


def _postgres_version() -> str:
    import psycopg

    from bench.provision.databases import server_url

    with psycopg.connect(server_url()) as conn:  # the bench database may be dropped
        version = conn.execute("SHOW server_version").fetchone()[0]
    return f"PostgreSQL {version.split()[0]}"


def machine_info(url: str, kinds: list[str]) -> str:
    """CPUs, RAM, OS and the versions of the broker, databases and libraries."""
    import sqlite3

    import django
    import pika

    from bench import raw

    parts = _hardware()
    with contextlib.suppress(Exception):
        parts.append(f"RabbitMQ {raw.server_version(url)}")
    if "postgres" in kinds:
        with contextlib.suppress(Exception):
            parts.append(_postgres_version())
    if "sqlite" in kinds:
        parts.append(f"SQLite {sqlite3.sqlite_version}")
    parts.append(
        f"Python {platform.python_version()}, Django {django.__version__}, pika {pika.__version__}"
    )
    return ", ".join(parts)
