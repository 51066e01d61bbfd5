"""``make bench``: raw pika vs ``runconsumer`` / ``send`` side by side, in one run.

Every measurement runs in its own process on the same broker and the same databases:
raw baselines as ``python -m bench.raw``, the app as ``manage.py runconsumer`` /
``manage.py send`` (settings ``bench.settings``), so the table measures whatever code is
in the tree. See ``python -m bench --help`` for the sizes; the README's "Benchmarks"
section explains the method.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench import config, raw

ROOT = Path(__file__).resolve().parent.parent
MANAGE = str(ROOT / "manage.py")
KINDS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
OVERVIEW_QUEUES = 5
MB = 1024 * 1024


# --------------------------------------------------------------------------- options


#: flag, environment variable, type, default, help
OPTIONS: list[tuple[str, str, type, Any, str]] = [
    ("--n", "BENCH_N", int, 50_000, "messages per high-prefetch consume run and raw (a)"),
    ("--n-p1", "BENCH_N_P1", int, 10_000, "messages per prefetch-1 run and raw (b)"),
    ("--publish-n", "BENCH_PUBLISH_N", int, 100_000, "raw publish and send --count"),
    ("--confirm-n", "BENCH_CONFIRM_N", int, 10_000, "raw publish with a confirm each"),
    ("--mem-n", "BENCH_MEM_N", int, 200_000, "messages consumed in the memory run"),
    ("--mem-first", "BENCH_MEM_FIRST", int, 50_000, "first RSS sample after this many"),
    ("--overview-rows", "BENCH_OVERVIEW_ROWS", int, 1_000_000, "receipts behind the overview"),
    ("--overview-repeat", "BENCH_OVERVIEW_REPEAT", int, 5, "warm GETs (median reported)"),
    ("--prefetch", "BENCH_PREFETCH", int, 300, "the high prefetch"),
    ("--batch-size", "BENCH_BATCH", int, 100, "runconsumer --batch-size at high prefetch"),
    ("--ack-every", "BENCH_ACK_EVERY", int, 100, "raw (a) acks multiple every N"),
    ("--size", "BENCH_SIZE", int, 256, "message body bytes"),
    ("--idle-timeout", "BENCH_IDLE", float, 2.0, "runconsumer --idle-timeout (never timed)"),
    ("--repeat", "BENCH_REPEAT", int, 1, "rounds of publish+consume; medians reported"),
    ("--dbs", "BENCH_DBS", str, "sqlite,postgres", "databases"),
    ("--only", "BENCH_ONLY", str, "publish,consume,memory,overview", "phases to run"),
    ("--output", "BENCH_OUTPUT", str, str(ROOT / "bench" / "results.md"), "markdown report"),
    ("--prefix", "BENCH_PREFIX", str, "", "queue name prefix (default bench.<pid>)"),
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Raw pika vs runconsumer/send on one broker and database; prints a "
        "markdown table with ratios. Each option also reads the variable in brackets "
        "(`make bench BENCH_N=20000`).",
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
    args = p.parse_args(argv)
    args.prefix = args.prefix or f"bench.{os.getpid()}"
    args.dbs = [k.strip() for k in args.dbs.split(",") if k.strip()]
    args.only = {k.strip() for k in args.only.split(",") if k.strip()}
    bad = [k for k in args.dbs if k not in KINDS]
    if bad or not args.dbs:
        p.error(f"--dbs: use sqlite and/or postgres, not {bad or 'nothing'}")
    unknown = args.only - {"publish", "consume", "memory", "overview"}
    if unknown:
        p.error(f"--only: unknown phase(s) {sorted(unknown)}")
    return args


# --------------------------------------------------------------------------- results


@dataclass
class Check:
    text: str  # "0.62× (a)"
    target: str  # "≥ 0.6"
    ok: bool | None  # None: no target


@dataclass
class Row:
    key: str
    label: str
    messages: int | None = None
    samples: list[float] = field(default_factory=list)  # seconds per run
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
    def rate(self) -> float | None:
        if not self.samples or not self.messages or not self.rate_unit:
            return None
        return statistics.median(self.messages / s for s in self.samples if s > 0)


class Results:
    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    def row(self, key: str, label: str, **kwargs: Any) -> Row:
        if key not in self.rows:
            self.rows[key] = Row(key, label, **kwargs)
        return self.rows[key]

    def ratio(self, key: str, base: str, target: float | None) -> None:
        row, baseline = self.rows.get(key), self.rows.get(base)
        if row is None or baseline is None:
            return
        if row.rate is None or baseline.rate is None:
            row.checks.append(Check(f"– × {base}", _target(target), None))
            return
        ratio = row.rate / baseline.rate
        row.checks.append(
            Check(
                f"{ratio:.2f}× {base}",
                _target(target),
                None if target is None else ratio >= target,
            )
        )

    @property
    def errors(self) -> list[Row]:
        return [r for r in self.rows.values() if r.error]


def _target(target: float | None) -> str:
    return "" if target is None else f"≥ {target:g}×"


def _verdict(ok: bool | None) -> str:
    return {True: "pass", False: "**miss**", None: ""}[ok]


def render(results: Results) -> str:
    lines = [
        "| id | measurement | messages | seconds | msg/s | ratio | target | result |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for row in results.rows.values():
        if row.error:
            rate = f"error: {row.error}"
        elif row.value:
            rate = row.value
        else:
            rate = f"{row.rate:,.0f}" if row.rate is not None else "–"
        seconds = f"{row.seconds:.2f}" if row.seconds is not None and not row.error else "–"
        messages = f"{row.messages:,}" if row.messages else "–"
        notes = "; ".join(n for n in (row.note, "retried once" if row.retried else "") if n)
        label = row.label + (f" ({notes})" if notes else "")
        checks = row.checks or [Check("", "", None)]
        first = checks[0]
        lines.append(
            f"| {row.key} | {label} | {messages} | {seconds} | {rate} | {first.text} | "
            f"{first.target} | {_verdict(first.ok)} |"
        )
        for check in checks[1:]:
            lines.append(f"| | | | | | {check.text} | {check.target} | {_verdict(check.ok)} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- helpers


_T0 = time.monotonic()


def log(text: str) -> None:
    elapsed = int(time.monotonic() - _T0)
    sys.stderr.write(f"[bench {elapsed // 60}:{elapsed % 60:02d}] {text}\n")
    sys.stderr.flush()


def command_env(kind: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        MESSAGING_BROKER_URL=config.broker_url(),
        BENCH_SQLITE=config.sqlite_path(),
        BENCH_POSTGRES_URL=config.postgres_url(),
        PYTHONUNBUFFERED="1",
    )
    if kind:
        env["BENCH_DATABASE_URL"] = config.database_url(kind)
    return env


@dataclass
class Finished:
    returncode: int
    wall: float
    stdout: str
    stderr: str

    def failure(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return (lines[-1] if lines else f"exit status {self.returncode}")[:200]


@contextlib.contextmanager
def started(cmd: list[str], env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, Any, Any]]:
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT, text=True)
        try:
            yield proc, out, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def run(cmd: list[str], env: dict[str, str], timeout: float) -> Finished:
    start = time.perf_counter()
    with started(cmd, env) as (proc, out, err):
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            err.write(f"\ntimed out after {timeout:.0f}s")
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return Finished(proc.returncode, wall, out.read(), err.read())


def manage(*args: str) -> list[str]:
    return [sys.executable, MANAGE, *args]


def run_raw(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    spec = {"url": config.broker_url(), **spec}
    done = run([sys.executable, "-m", "bench.raw", json.dumps(spec)], command_env(), timeout)
    if done.returncode != 0:
        raise BenchError(done.failure())
    return json.loads(done.stdout.strip().splitlines()[-1])


def rss_of(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in bytes; (0, 0) once it is gone."""
    values = {"VmRSS": 0, "VmHWM": 0}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in values:
                    values[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return values["VmRSS"], values["VmHWM"]


class BenchError(Exception):
    pass


def describe(exc: BaseException) -> str:
    """One line for an error; pika's connection errors often have no text."""
    if isinstance(exc, BenchError):
        return str(exc)
    import pika.exceptions

    if isinstance(exc, pika.exceptions.AMQPConnectionError | ConnectionError):
        return f"cannot reach RabbitMQ ({type(exc).__name__})"
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text.rstrip(": ")


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


# --------------------------------------------------------------------------- the bench


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.results = Results()
        self.queues: list[str] = []
        self.url = config.broker_url()
        self.body = raw.body_of(args.size)

    # ---------------------------------------------------------------- names, broker

    def queue(self, what: str) -> str:
        """A new queue name for each use (a retry never finds an earlier attempt's
        messages); all are deleted at the end."""
        name = f"{self.args.prefix}.{what}.{len(self.queues) + 1}"
        self.queues.append(name)
        return name

    def drop_queue(self, name: str) -> None:
        raw.delete_queues(self.url, [name, f"{name}.dlq"])

    def cleanup_broker(self) -> None:
        """Delete every queue the bench made; wait up to a minute for a broker that is
        restarting (other test runs on a shared machine stop it now and then)."""
        names = [n for q in self.queues for n in (q, f"{q}.dlq")]
        deadline = time.monotonic() + 60
        while True:
            try:
                raw.delete_queues(self.url, names)
                return
            except Exception as exc:  # noqa: BLE001 - report, do not hide the run's result
                if time.monotonic() > deadline:
                    log(f"could not delete the bench queues {names}: {describe(exc)}")
                    return
                time.sleep(2)

    # ---------------------------------------------------------------- databases

    def setup_databases(self) -> None:
        for kind in self.args.dbs:
            start = time.perf_counter()
            if kind == "sqlite":
                path = Path(config.sqlite_path())
                path.parent.mkdir(parents=True, exist_ok=True)
                for suffix in ("", "-journal", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            else:
                self._recreate_postgres()
            done = run(manage("migrate", "-v", "0"), command_env(kind), timeout=600)
            if done.returncode != 0:
                raise BenchError(f"migrate on {KINDS[kind]} failed: {done.failure()}")
            log(f"{KINDS[kind]} bench database ready ({time.perf_counter() - start:.1f}s)")

    def _recreate_postgres(self, drop_only: bool = False) -> None:
        import psycopg

        url = config.postgres_url()
        parts = urlsplit(url)
        name = parts.path.lstrip("/")
        if not name or name in ("postgres", "template0", "template1"):
            raise BenchError(f"BENCH_POSTGRES_URL must name a bench database, not {name!r}")
        admin_url = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin_url, autocommit=True) as conn:
            quoted = '"' + name.replace('"', '""') + '"'
            conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
            if not drop_only:
                conn.execute(f"CREATE DATABASE {quoted}")

    def drop_databases(self) -> None:
        from django.db import connections

        connections.close_all()
        for kind in self.args.dbs:
            try:
                if kind == "sqlite":
                    path = config.sqlite_path()
                    for suffix in ("", "-journal", "-wal", "-shm"):
                        Path(f"{path}{suffix}").unlink(missing_ok=True)
                else:
                    self._recreate_postgres(drop_only=True)
            except Exception as exc:  # noqa: BLE001
                log(f"could not drop the {KINDS[kind]} bench database: {exc}")

    def flush(self, kind: str, *models: Any) -> None:
        """Empty the tables of ``models`` (TRUNCATE / DELETE, as Django's flush)."""
        from django.core.management.color import no_style
        from django.db import connections

        conn = connections[kind]
        tables = [m._meta.db_table for m in models]
        with conn.cursor() as cursor:
            for sql in conn.ops.sql_flush(no_style(), tables, reset_sequences=False):
                cursor.execute(sql)

    # ---------------------------------------------------------------- publish

    def phase_publish(self) -> None:
        a, r = self.args, self.results
        row = r.row("P0", "publish: raw pika, persistent, no confirms", messages=a.publish_n)
        self._measure_raw_publish(row, "publish_no_confirm", a.publish_n)
        row = r.row("P1", "publish: raw pika, confirm each message", messages=a.confirm_n)
        self._measure_raw_publish(row, "publish_confirm_each", a.confirm_n)
        for kind in a.dbs:
            row = r.row(
                f"send-{kind}", f"publish: `send --count`, {KINDS[kind]}", messages=a.publish_n
            )
            self._measure(row, lambda row=row, kind=kind: self._send(row, kind))

    def _measure_raw_publish(self, row: Row, mode: str, count: int) -> None:
        def go() -> None:
            queue = self.queue(f"publish.{mode}")
            try:
                spec = {"mode": mode, "queue": queue, "count": count, "size": self.args.size}
                result = run_raw(spec, timeout=60 + count / 100)
            finally:
                self.drop_queue(queue)
            self._sample(row, result["seconds"])

        self._measure(row, go)

    def _send(self, row: Row, kind: str) -> None:
        from django.db.models import Count, Max, Min, Q

        from messaging.models import Message

        count = self.args.publish_n
        queue = self.queue(f"publish.send.{kind}")
        try:
            done = run(
                manage("send", queue, self.body.decode(), "--count", str(count), "-v", "0"),
                command_env(kind),
                timeout=120 + count / 50,
            )
            if done.returncode != 0:
                raise BenchError(done.failure())
            stats = (
                Message.objects.using(kind)
                .filter(queue__name=queue)
                .aggregate(
                    n=Count("id"),
                    published=Count("id", filter=Q(status=Message.Status.PUBLISHED)),
                    first=Min("created_at"),
                    last=Max("published_at"),
                )
            )
            ready = raw.depth(self.url, queue)
        finally:
            self.drop_queue(queue)
        if stats["published"] != count or ready != count:
            raise BenchError(
                f"{stats['published']} rows published, {ready} on the broker, {count} expected"
            )
        seconds = (stats["last"] - stats["first"]).total_seconds()
        row.note = f"process wall {done.wall:.1f}s"
        self._sample(row, seconds)

    # ---------------------------------------------------------------- consume

    def phase_consume(self) -> None:
        a, r = self.args, self.results
        row = r.row(
            "a",
            f"consume: raw pika, prefetch {a.prefetch}, multiple-ack every {a.ack_every}, no DB",
            messages=a.n,
        )
        self._measure(row, lambda: self._raw_multi_ack(row))
        for kind in a.dbs:
            driver = "sqlite3" if kind == "sqlite" else "psycopg"
            row = r.row(
                f"b-{kind}",
                f"consume: raw pika, prefetch 1, {driver} INSERT + commit + ack, {KINDS[kind]}",
                messages=a.n_p1,
            )
            self._measure(row, lambda row=row, kind=kind: self._raw_db(row, kind))
            row = r.row(
                f"p1-{kind}", f"consume: `runconsumer` prefetch 1, {KINDS[kind]}", messages=a.n_p1
            )
            self._measure(
                row, lambda row=row, kind=kind: self._runconsumer(row, kind, 1, 1, a.n_p1)
            )
            row = r.row(
                f"p{a.prefetch}-{kind}",
                f"consume: `runconsumer` prefetch {a.prefetch} batch {a.batch_size}, {KINDS[kind]}",
                messages=a.n,
            )
            self._measure(
                row,
                lambda row=row, kind=kind: self._runconsumer(
                    row, kind, a.prefetch, a.batch_size, a.n
                ),
            )

    def _raw_multi_ack(self, row: Row) -> None:
        a = self.args
        queue = self.queue("consume.raw-a")
        try:
            raw.fill(self.url, queue, a.n, self.body)
            spec = {
                "mode": "consume_multi_ack",
                "queue": queue,
                "count": a.n,
                "prefetch": a.prefetch,
                "ack_every": a.ack_every,
            }
            result = run_raw(spec, timeout=60 + a.n / 100)
            left = raw.depth(self.url, queue)
        finally:
            self.drop_queue(queue)
        if left:
            raise BenchError(f"{left} messages left in the queue")
        self._sample(row, result["seconds"])

    def _raw_db(self, row: Row, kind: str) -> None:
        from messaging.models import Receipt

        a = self.args
        queue = self.queue(f"consume.raw-b.{kind}")
        self.flush(kind, Receipt)
        try:
            raw.fill(self.url, queue, a.n_p1, self.body)
            spec = {
                "mode": "consume_db",
                "queue": queue,
                "count": a.n_p1,
                "database": self._receipt_insert(kind, queue),
            }
            result = run_raw(spec, timeout=120 + a.n_p1 / 20)
            left = raw.depth(self.url, queue)
        finally:
            self.drop_queue(queue)
        rows = Receipt.objects.using(kind).filter(queue_name=queue).count()
        if left or rows != a.n_p1:
            raise BenchError(f"{rows} rows written, {left} messages left in the queue")
        self._sample(row, result["seconds"])

    def _receipt_insert(self, kind: str, queue: str) -> dict[str, Any]:
        """The raw loop's INSERT: one Receipt row with the columns runconsumer writes."""
        from django.db import connections

        from messaging.models import Receipt

        conn = connections[kind]
        per_message = {
            "message": "message_id",
            "delivery_tag": "delivery_tag",
            "redelivered": "redelivered",
            "consumer_tag": "consumer_tag",
            "received_at": "received_at",
            "finished_at": "finished_at",
        }
        constant = {
            "queue_name": queue,
            "consumer_name": "raw-pika",
            "consumer_host": socket.gethostname(),
            "consumer_pid": 0,
            "outcome": "acked",
            "attempt": 1,
            "error": "",
            "traceback": "",
        }
        names, columns = [], []
        for f in Receipt._meta.concrete_fields:
            if f.primary_key:
                continue
            names.append(conn.ops.quote_name(f.column))
            if f.name in per_message:
                columns.append({"var": per_message[f.name]})
            else:
                value = constant[f.name] if f.name in constant else f.get_default()
                try:
                    json.dumps(value)
                except TypeError:
                    value = str(value)
                columns.append({"const": value})
        mark = "?" if kind == "sqlite" else "%s"
        table = conn.ops.quote_name(Receipt._meta.db_table)
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})"
        spec: dict[str, Any] = {"kind": kind, "sql": sql, "columns": columns}
        if kind == "sqlite":
            spec["path"] = config.sqlite_path()
        else:
            spec["dsn"] = config.postgres_url()
        return spec

    def _runconsumer_cmd(self, queue: str, prefetch: int, batch: int) -> list[str]:
        return manage(
            "runconsumer",
            queue,
            "--prefetch",
            str(prefetch),
            "--batch-size",
            str(batch),
            "--idle-timeout",
            f"{self.args.idle_timeout:g}",
            "--handler",
            "messaging.handlers.discard",
            "-v",
            "0",
        )

    def _runconsumer(self, row: Row, kind: str, prefetch: int, batch: int, count: int) -> None:
        from messaging.models import Receipt

        queue = self.queue(f"consume.p{prefetch}.{kind}")
        self.flush(kind, Receipt)
        try:
            raw.fill(self.url, queue, count, self.body)
            done = run(
                self._runconsumer_cmd(queue, prefetch, batch),
                command_env(kind),
                timeout=120 + count / 20,
            )
            left = raw.depth(self.url, queue)
        finally:
            self.drop_queue(queue)
        if done.returncode != 0:
            raise BenchError(done.failure())
        seconds = self._receipt_span(kind, queue, count, left)
        row.note = f"process wall {done.wall:.1f}s incl. idle {self.args.idle_timeout:g}s"
        self._sample(row, seconds)

    def _receipt_span(self, kind: str, queue: str, count: int, left: int | None) -> float:
        """Seconds from the first delivery (earliest ``received_at``) to the last receipt
        (latest ``finished_at``), after checking every message has its acked receipt."""
        from django.db.models import Count, Max, Min, Q

        from messaging.models import Receipt

        stats = (
            Receipt.objects.using(kind)
            .filter(queue_name=queue)
            .aggregate(
                n=Count("id"),
                acked=Count("id", filter=Q(outcome=Receipt.Outcome.ACKED)),
                first=Min("received_at"),
                last=Max("finished_at"),
            )
        )
        if stats["acked"] != count or left:
            raise BenchError(
                f"{stats['acked']} acked receipts of {count} ({stats['n']} receipts), "
                f"{left} messages left in the queue"
            )
        return (stats["last"] - stats["first"]).total_seconds()

    # ---------------------------------------------------------------- memory

    def phase_memory(self) -> None:
        a = self.args
        kind = "postgres" if "postgres" in a.dbs else a.dbs[0]
        row = self.results.row(
            f"mem-{kind}",
            f"memory: `runconsumer` RSS, prefetch {a.prefetch} batch {a.batch_size}, {KINDS[kind]}",
            messages=a.mem_n,
        )
        self._measure(row, lambda: self._memory(row, kind))

    def _memory(self, row: Row, kind: str) -> None:
        from messaging.models import Receipt

        a = self.args
        queue = self.queue(f"memory.{kind}")
        self.flush(kind, Receipt)
        log(f"memory: filling {a.mem_n:,} messages")
        try:
            raw.fill(self.url, queue, a.mem_n, self.body, timeout=600)
            first, last, peak, done = self._sample_rss(queue, kind)
            left = raw.depth(self.url, queue)
        finally:
            self.drop_queue(queue)
        if done.returncode != 0:
            raise BenchError(done.failure())
        seconds = self._receipt_span(kind, queue, a.mem_n, left)
        if not first or not last:
            raise BenchError("no RSS sample (the consumer finished too fast to sample)")
        growth = (last - first) / MB
        row.samples.append(seconds)
        row.value = f"{row.rate:,.0f}" if row.rate else "–"
        row.note = (
            f"RSS {first / MB:.1f} MB after {a.mem_first:,}, {last / MB:.1f} MB after "
            f"{a.mem_n:,}; peak {peak / MB:.1f} MB"
        )
        row.checks.append(Check(f"RSS growth {growth:+.1f} MB", "< 10 MB", growth < 10))
        log(f"{row.key}: {row.note}, growth {growth:+.1f} MB")

    def _sample_rss(self, queue: str, kind: str) -> tuple[int, int, int, Finished]:
        """Run runconsumer on the filled ``queue`` and read its VmRSS: once at least
        ``mem_first`` messages are surely consumed (mem_n - ready - prefetch, from the
        broker), and last while it idles after the queue is drained."""
        a = self.args
        first = last = peak = 0
        start = time.perf_counter()
        cmd = self._runconsumer_cmd(queue, a.prefetch, a.batch_size)
        with (
            started(cmd, command_env(kind)) as (proc, out, err),
            raw.connection(self.url) as conn,
        ):
            deadline = time.monotonic() + 120 + a.mem_n / 20
            while proc.poll() is None and time.monotonic() < deadline:
                rss, hwm = rss_of(proc.pid)
                ready = raw.depth_on(conn, queue) or 0
                consumed = a.mem_n - ready - a.prefetch
                if rss:
                    if not first and consumed >= a.mem_first:
                        first = rss
                        log(f"memory: RSS {rss / MB:.1f} MB at >= {consumed:,} consumed")
                    if not ready:
                        last, peak = rss, max(peak, hwm)
                conn.sleep(0.2)
            if proc.poll() is None:
                proc.kill()
                err.write("\nmemory run timed out")
            proc.wait()
            out.seek(0)
            err.seek(0)
            done = Finished(proc.returncode, time.perf_counter() - start, out.read(), err.read())
        return first, last, peak, done

    # ---------------------------------------------------------------- admin overview

    def phase_overview(self) -> None:
        from django.urls import NoReverseMatch, reverse

        a = self.args
        try:
            reverse("admin:messaging_overview")
            available = True
        except NoReverseMatch:
            available = False
        for kind in a.dbs:
            row = self.results.row(
                f"admin-{kind}",
                f"admin: overview page, {a.overview_rows:,} receipts, {KINDS[kind]}",
                messages=a.overview_rows,
                rate_unit=False,
            )
            if not available:
                row.value = "not available"
                row.note = "no URL named admin:messaging_overview"
                log(f"{row.key}: not available (no admin:messaging_overview URL)")
                continue
            self._measure(row, lambda row=row, kind=kind: self._overview(row, kind))

    def _overview(self, row: Row, kind: str) -> None:
        from django.db import connections

        from messaging.models import Message, Queue, Receipt

        a = self.args
        start = time.perf_counter()
        self.flush(kind, Receipt, Message)
        names = [self.queue(f"overview.{i}") for i in range(OVERVIEW_QUEUES)]
        Queue.objects.using(kind).filter(name__in=names).delete()
        queues = Queue.objects.using(kind).bulk_create([Queue(name=n) for n in names])
        if not all(q.pk for q in queues):
            queues = list(Queue.objects.using(kind).filter(name__in=names).order_by("name"))
        for name in names:
            raw.declare(self.url, name)  # the page may ask the broker about them
        conn = connections[kind]
        pg = kind == "postgres"
        tables = [conn.ops.quote_name(m._meta.db_table) for m in (Message, Receipt)]
        with conn.cursor() as cursor:
            if pg:  # no autovacuum halfway through the "fresh" GETs
                for table in tables:
                    cursor.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
            for sql, params in fill_statements(conn, kind, queues, a.overview_rows, self.body):
                cursor.execute(sql, params)
            cursor.execute("ANALYZE")
        log(
            f"{row.key}: {a.overview_rows:,} messages + receipts in "
            f"{time.perf_counter() - start:.0f}s"
        )
        connections.close_all()
        fresh = None
        if pg:
            # Rows not vacuumed yet are not all-visible, so index-only scans read the heap:
            # the state of the newest hour of a busy table (autovacuum comes after 20% new
            # rows). One cold and one warm GET: it can be slow.
            fresh = self._time_overview(row, kind, "not vacuumed", repeat=1)
            with conn.cursor() as cursor:
                for table in tables:
                    cursor.execute(f"ALTER TABLE {table} RESET (autovacuum_enabled)")
                cursor.execute("VACUUM ANALYZE")
            connections.close_all()
        result = self._time_overview(row, kind, "after VACUUM ANALYZE" if pg else "")
        if result is None:
            row.value = "not available"
            return
        row.samples.append(result["median"])
        row.value = "—"
        row.note = (
            f"median of {a.overview_repeat} warm GETs{' after VACUUM' if pg else ''}; "
            f"cold {result['cold']:.2f}s, {result['queries']} queries"
        )
        if fresh:
            row.note += f"; before VACUUM {fresh['median']:.2f}s warm, {fresh['cold']:.2f}s cold"

    def _time_overview(
        self, row: Row, kind: str, label: str, repeat: int | None = None
    ) -> dict[str, Any] | None:
        repeat = repeat or self.args.overview_repeat
        done = run(
            [sys.executable, "-m", "bench.overview", str(repeat)],
            command_env(kind),
            timeout=600,
        )
        if done.returncode != 0:
            raise BenchError(done.failure())
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if not result["available"]:
            return None
        log(
            f"{row.key}: {label + ': ' if label else ''}median {result['median']:.3f}s, "
            f"cold {result['cold']:.3f}s, best {result['best']:.3f}s, "
            f"{result['queries']} queries; slowest:"
        )
        for query in result.get("slowest", []):
            log(f"{row.key}:   {query['seconds']:.3f}s  {' '.join(query['sql'].split())}")
        return result

    # ---------------------------------------------------------------- plumbing

    def _measure(self, row: Row, fn: Callable[[], None]) -> None:
        """Run one measurement; on an error, wait for the broker (others may restart it
        on a shared machine) and try once more, then record the error in the row."""
        if row.error:
            return
        for attempt in (1, 2):
            samples = len(row.samples)
            try:
                fn()
                return
            except Exception as exc:  # noqa: BLE001 - e.g. the broker went away: say so, go on
                del row.samples[samples:]
                error = describe(exc)
                if attempt == 1 and self.wait_for_broker(180):
                    log(f"{row.key}: {error}; trying once more")
                    row.retried = True
                    continue
                row.error = error
                log(f"{row.key}: error: {row.error}")

    def wait_for_broker(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw.server_version(self.url)
                return True
            except Exception:  # noqa: BLE001
                if time.monotonic() > deadline:
                    return False
                time.sleep(2)

    def _sample(self, row: Row, seconds: float) -> None:
        row.samples.append(seconds)
        rate = (row.messages or 0) / seconds if seconds > 0 else 0
        log(f"{row.key}: {row.messages:,} in {seconds:.2f}s = {rate:,.0f} msg/s")

    def targets(self) -> None:
        r, a = self.results, self.args
        for kind in a.dbs:
            r.ratio(f"send-{kind}", "P0", 0.5)
            r.ratio(f"send-{kind}", "P1", 5)
        for kind in a.dbs:
            r.ratio(f"p1-{kind}", f"b-{kind}", 0.8)
            r.ratio(f"p{a.prefetch}-{kind}", "a", 0.6 if kind == "postgres" else None)

    def preflight(self) -> None:
        """One clear line when a service is missing, before anything is created."""
        try:
            raw.server_version(self.url)
        except Exception as exc:  # noqa: BLE001
            raise BenchError(
                f"cannot reach RabbitMQ at {redact(self.url)} (MESSAGING_BROKER_URL): "
                f"{type(exc).__name__} {exc}".strip()
            ) from exc
        if "postgres" in self.args.dbs:
            import psycopg

            url = urlsplit(config.postgres_url())
            try:
                psycopg.connect(urlunsplit(url._replace(path="/postgres"))).close()
            except Exception as exc:  # noqa: BLE001
                raise BenchError(
                    f"cannot reach PostgreSQL at {redact(config.postgres_url())} "
                    f"(BENCH_POSTGRES_URL; or run with --dbs sqlite): {exc}".splitlines()[0]
                ) from exc

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """One bench at a time on these databases: a lock file beside the SQLite file and
        a PostgreSQL advisory lock (a second run would drop the first one's databases)."""
        import fcntl

        lock_path = Path(f"{config.sqlite_path()}.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as lock_file:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                raise BenchError(
                    f"another bench is running on these databases ({lock_path} is locked)"
                ) from exc
            if "postgres" not in self.args.dbs:
                yield
                return
            import psycopg

            url = urlsplit(config.postgres_url())
            key = f"messaging-bench:{url.path.lstrip('/')}"
            with psycopg.connect(urlunsplit(url._replace(path="/postgres"))) as conn:
                conn.autocommit = True
                got = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [key]).fetchone()
                if not got[0]:
                    raise BenchError(
                        f"another bench is running on {redact(config.postgres_url())} "
                        "(advisory lock held)"
                    )
                yield

    def run(self) -> int:
        self.preflight()
        with self.exclusive():
            return self._run()

    def _run(self) -> int:
        a = self.args
        log("sizes: " + " ".join(f"{k}={v}" for k, v in vars(a).items() if k != "only"))
        self.setup_databases()
        try:
            for repeat in range(a.repeat):
                if a.repeat > 1:
                    log(f"round {repeat + 1} of {a.repeat}")
                if "publish" in a.only:
                    self.phase_publish()
                if "consume" in a.only:
                    self.phase_consume()
            if "memory" in a.only:
                self.phase_memory()
            if "overview" in a.only:
                self.phase_overview()
        finally:
            self.cleanup_broker()
            if not a.keep:
                self.drop_databases()
        self.targets()
        table = render(self.results)
        report = self.report(table)
        print(table)
        Path(a.output).parent.mkdir(parents=True, exist_ok=True)
        Path(a.output).write_text(report)
        log(f"written to {a.output}")
        return 1 if self.results.errors else 0

    def report(self, table: str) -> str:
        a = self.args
        machine = machine_info(self.url, a.dbs)
        sizes = (
            f"{a.size}-byte persistent messages; consume {a.n:,} (prefetch {a.prefetch}) and "
            f"{a.n_p1:,} (prefetch 1); publish {a.publish_n:,} ({a.confirm_n:,} with a confirm "
            f"each); memory {a.mem_first:,} → {a.mem_n:,}; overview {a.overview_rows:,} "
            f"receipts; {a.repeat} round(s), median"
        )
        return (
            f"# Benchmark results\n\n"
            f"`make bench` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.\n\n"
            f"Machine: {machine}.\n\nSizes: {sizes}.\n\n{table}\n\n"
            "Method: see the README's Benchmarks section. Seconds are measured inside each "
            "process: raw loops from the first delivery to the last ack (publishers: first "
            "publish to the broker's answer after the last); `runconsumer` from the earliest "
            "`received_at` to the latest `finished_at` of its receipts; `send` from the "
            "earliest `created_at` to the latest `published_at` of its rows. Startup and the "
            "idle timeout are outside every timing.\n"
        )


def machine_info(url: str, kinds: list[str]) -> str:
    import sqlite3

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
    with contextlib.suppress(Exception):
        parts.append(f"RabbitMQ {raw.server_version(url)}")
    if "postgres" in kinds:
        with contextlib.suppress(Exception):
            import psycopg

            url = urlsplit(config.postgres_url())  # the bench database may be dropped
            with psycopg.connect(urlunsplit(url._replace(path="/postgres"))) as conn:
                version = conn.execute("SHOW server_version").fetchone()[0]
            parts.append(f"PostgreSQL {version.split()[0]}")
    if "sqlite" in kinds:
        parts.append(f"SQLite {sqlite3.sqlite_version}")
    import django
    import pika

    parts.append(
        f"Python {platform.python_version()}, Django {django.__version__}, pika {pika.__version__}"
    )
    return ", ".join(parts)


# --------------------------------------------------------------------------- overview data


def fill_statements(
    conn: Any, kind: str, queues: list[Any], count: int, body: bytes
) -> list[tuple[str, list[Any]]]:
    """INSERT … SELECT statements that make ``count`` published messages over the last hour,
    spread over ``queues``, each with one receipt (mostly acked), generated by the
    database itself (generate_series / a recursive CTE). Columns not set here get their
    model default, so a new field with a default does not break the bench."""
    from messaging.models import Message, Receipt

    pg = kind == "postgres"
    ids = {q.pk: q.name for q in queues}
    pick_id = "CASE (g %% {k}) {whens} END".format(
        k=len(ids), whens=" ".join(f"WHEN {i} THEN {pk}" for i, pk in enumerate(ids))
    )
    pick_name = "CASE (g %% {k}) {whens} END".format(
        k=len(ids),
        whens=" ".join(f"WHEN {i} THEN '{name}'" for i, name in enumerate(ids.values())),
    )
    message_id = "'bench-' || lpad(g::text, 12, '0')" if pg else "printf('bench-%%012d', g)"

    def ago(extra_ms: int) -> str:
        # Row g of count: spread evenly over the last hour (row 1 newest), minus extra_ms.
        g = "g::bigint" if pg else "g"
        offset = f"(({g} * 3599000) / {count} + {extra_ms})"  # integer milliseconds
        if pg:
            return f"now() - {offset} * interval '1 millisecond'"
        return (
            f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', '-' || ({offset} / 1000.0) || ' seconds')"
        )

    message_sql = {
        "message_id": message_id,
        "queue": pick_id,
        "status": "'published'",
        "attempts": "1",
        "created_at": ago(4),
        "published_at": ago(3),
    }
    message_values = {"body": body}
    outcome = (
        "CASE WHEN g %% 200 = 0 THEN 'requeued' WHEN g %% 1000 = 1 THEN 'dead_lettered' "
        "ELSE 'acked' END"
    )
    receipt_sql = {
        "message": message_id,
        "queue_name": pick_name,
        "consumer_name": "'bench-consumer-' || (g %% 4)",
        "consumer_host": "'bench-host'",
        "consumer_pid": "1000 + (g %% 4)",
        "consumer_tag": "'ctag-' || (g %% 4)",
        "delivery_tag": "g",
        "redelivered": "(g %% 200 = 0)",
        "attempt": "CASE WHEN g %% 200 = 0 THEN 2 ELSE 1 END",
        "outcome": outcome,
        "error": "CASE WHEN g %% 200 = 0 THEN 'ValueError: bench' ELSE '' END",
        "received_at": ago(2),
        "finished_at": ago(0),
    }
    return [
        _insert_select(conn, pg, Message, message_sql, message_values, count),
        _insert_select(conn, pg, Receipt, receipt_sql, {}, count),
    ]


def _insert_select(
    conn: Any, pg: bool, model: Any, sql: dict[str, str], values: dict[str, Any], count: int
) -> tuple[str, list[Any]]:
    columns, exprs, params = [], [], []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        columns.append(conn.ops.quote_name(f.column))
        if f.name in sql:
            exprs.append(sql[f.name])
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            exprs.append(sql.get("created_at") or "CURRENT_TIMESTAMP")
        else:
            value = values[f.name] if f.name in values else f.get_default()
            exprs.append("%s")
            params.append(f.get_db_prep_save(value, conn))
    table = conn.ops.quote_name(model._meta.db_table)
    select = f"SELECT {', '.join(exprs)}"
    if pg:
        statement = (
            f"INSERT INTO {table} ({', '.join(columns)}) {select} "
            "FROM generate_series(1, %s) AS s(g)"
        )
        return statement, [*params, count]
    statement = (
        "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %s) "
        f"INSERT INTO {table} ({', '.join(columns)}) {select} FROM s"
    )
    return statement, [count, *params]


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ.pop("BENCH_DATABASE_URL", None)
    import django

    django.setup()
    bench = Bench(args)
    try:
        return bench.run()
    except BenchError as exc:
        log(f"stopped: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
