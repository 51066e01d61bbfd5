"""`make bench` cannot rot: run it with tiny sizes on this run's database kind and check
that it produces the whole table, cleans the broker and drops its database. Speed is
never asserted here (the numbers of a tiny run mean nothing)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from django.conf import settings
from django.db.models import Count

ROOT = Path(__file__).resolve().parents[2]
PG_NAME = f"bench_messaging_smoke_{os.getpid()}"


def bench_kind() -> str:
    engine = settings.DATABASES["default"]["ENGINE"]
    return "sqlite" if engine.endswith("sqlite3") else "postgres"


def postgres_server_url(name: str) -> str:
    db = settings.DATABASES["default"]
    auth = db.get("USER") or ""
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    host = db.get("HOST") or "localhost"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{'@' if auth else ''}{host}{port}/{name}"


def broker_queue_names() -> list[str]:
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [line.strip() for line in out.splitlines()]


def run_bench(tmp_path: Path, *args: str, prefix: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m bench ARGS`` on bench databases of its own (a SQLite file under
    ``tmp_path``, PostgreSQL ``PG_NAME``), its queues named ``prefix...``."""
    env = dict(os.environ)
    env.update(
        BENCH_SQLITE=str(tmp_path / "bench.sqlite3"),
        BENCH_POSTGRES_URL=postgres_server_url(PG_NAME),
        BENCH_PREFIX=prefix or f"bench-smoke.{uuid.uuid4().hex[:8]}",
    )
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        capture_output=True,
        text=True,
        timeout=280,
        env=env,
        cwd=ROOT,
    )


def test_bench_prints_every_row_and_cleans_up(tmp_path: Path) -> None:
    kind = bench_kind()
    prefix = f"bench-smoke.{uuid.uuid4().hex[:8]}"
    output = tmp_path / "results.md"
    sizes = [
        "--dbs", kind,
        "--n", "600",
        "--n-p1", "60",
        "--publish-n", "300",
        "--confirm-n", "30",
        "--calls-n", "20",
        "--mem-n", "900",
        "--mem-first", "300",
        "--overview-rows", "500",
        "--overview-repeat", "1",
        "--idle-timeout", "1",
        "--retry-n", "30",
        "--retry-delay", "0.5",
        "--io-n", "40",
        # The io and tasks phases start Celery, dramatiq and django-tasks workers: left
        # out here (a full-suite run once died inside them); `make bench` runs them.
        "--only", "publish,calls,consume,memory,overview,retry",
        "--repeat", "1",
        "--output", str(output),
    ]  # fmt: skip
    done = run_bench(tmp_path, *sizes, prefix=prefix)
    assert done.returncode == 0, done.stderr[-3000:]

    table = done.stdout
    rows = {
        line.split("|")[1].strip(): line
        for line in table.splitlines()
        if line.startswith("|") and line.split("|")[1].strip()
    }
    cells = {key: [c.strip() for c in line.split("|")[1:-1]] for key, line in rows.items()}
    calls = (
        ["calls-P1", f"floor-{kind}"]
        + [
            f"call-{case}{threads}-{kind}"
            for threads in ("", "-8t")
            for case in ("out", "atomic1", "atomic10")
        ]
        + [f"call-latency-{kind}", "celery"]
    )
    expected = ["P0", "P1", f"s-{kind}", f"send-{kind}", *calls, "a", f"b-{kind}",
                f"p1-{kind}", f"c-{kind}", f"p300-{kind}", f"retry-base-{kind}",
                f"retry-{kind}", f"mem-{kind}", f"admin-{kind}", f"triage-{kind}"]  # fmt: skip
    pages = [key for key in rows if key.startswith("page-")]  # PostgreSQL's admin pages
    assert [key for key in rows if key not in ("id", "---", *pages)] == expected
    assert len(pages) == (12 if kind == "postgres" else 0), pages
    for key in expected[:-2]:
        assert re.fullmatch(r"[\d,]+", cells[key][4]), rows[key]  # msg/s, not an error
    # Seconds per GET, or "not available" before the overview page exists.
    for page in (f"admin-{kind}", f"triage-{kind}", *pages):
        admin = cells[page]
        assert re.fullmatch(r"[\d.]+", admin[3]) or admin[4] == "not available", admin
    # Every target has a verdict next to its ratio; each app row's first is its floor.
    verdict = r"\| ≥ 0.8× \| (pass|\*\*miss\*\*) \|$"
    assert re.search(rf"× s-{kind} {verdict}", rows[f"send-{kind}"])
    assert re.search(rf"× b-{kind} {verdict}", rows[f"p1-{kind}"])
    assert re.search(rf"× c-{kind} {verdict}", rows[f"p300-{kind}"])
    assert f"(floor of send-{kind})" in rows[f"s-{kind}"]
    assert f"(floor of p300-{kind})" in rows[f"c-{kind}"]
    assert f"(floor of p1-{kind})" in rows[f"b-{kind}"]
    assert re.search(r"≥ 0.8× \| (pass|\*\*miss\*\*)", rows[f"call-out-{kind}"])
    assert "(1 broker connection opened)" in rows[f"call-out-8t-{kind}"]
    assert re.search(r"commit → confirm p50 [\d.]+ ms, p99 [\d.]+ ms", rows[f"call-latency-{kind}"])
    assert re.search(r"< 10 MB \| (pass|\*\*miss\*\*)", rows[f"mem-{kind}"])
    assert table.strip() in output.read_text()

    assert not [name for name in broker_queue_names() if name.startswith(prefix)]
    if kind == "sqlite":
        assert not (tmp_path / "bench.sqlite3").exists()
    else:
        import psycopg

        with psycopg.connect(postgres_server_url("postgres")) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_NAME])
            assert found.fetchone() is None


def test_bench_prefetch_one_phase_alone_in_rounds(tmp_path: Path) -> None:
    """``--only consume-p1`` measures just b-DB and p1-DB; with rounds, each row shows
    its median msg/s with the min–max and the ratio the min–max of its rounds."""
    kind = bench_kind()
    args = ["--dbs", kind, "--only", "consume-p1", "--n-p1", "40", "--repeat", "2",
            "--idle-timeout", "1", "--output", str(tmp_path / "results.md")]  # fmt: skip
    done = run_bench(tmp_path, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    rows = {line.split("|")[1].strip(): line.split("|")[1:-1] for line in lines}
    assert list(rows) == ["id", "---", f"b-{kind}", f"p1-{kind}"]
    for key in (f"b-{kind}", f"p1-{kind}"):
        assert re.fullmatch(r" [\d,]+ \([\d,]+–[\d,]+\) ", rows[key][4]), rows[key]
    ratio = rows[f"p1-{kind}"][5]
    assert re.fullmatch(rf" [\d.]+× b-{kind} \([\d.]+–[\d.]+\) ", ratio), ratio
    assert "2 round(s), median (min–max" in (tmp_path / "results.md").read_text()


def test_raw_prefetch_one_loop_writes_the_row_runconsumer_writes(manage, queue_name, request):
    """The b-DB baseline does runconsumer's database work: one row in the same receipts
    table with the same columns, valued the same way (the p1-DB target compares them)."""
    from bench import raw
    from bench.measure.raw_consume import receipt_insert
    from messaging.models import Receipt

    url = settings.MESSAGING["BROKER_URL"]
    raw_queue = request.node.make_queue_name(".raw")
    for queue in (queue_name, raw_queue):
        raw.fill(url, queue, 1, raw.body_of(256))
    args = ["--prefetch", "1", "--batch-size", "1", "--max-messages", "1",
            "--handler", "messaging.consumer.handlers.discard", "-v", "0"]  # fmt: skip
    ran = manage("runconsumer", queue_name, *args)
    assert ran.returncode == 0, ran.stderr
    result = raw.consume_db(url, raw_queue, 1, receipt_insert("default", raw_queue))
    assert result["messages"] == 1
    app = Receipt.objects.get(queue_name=queue_name)
    base = Receipt.objects.get(queue_name=raw_queue)

    assert _shape(base) == _shape(app)
    for receipt in (app, base):
        assert receipt.consumer_name == f"{receipt.consumer_host}:{receipt.consumer_pid}"
        assert receipt.message_id and receipt.consumer_tag and receipt.delivery_tag == 1
        assert receipt.received_at <= receipt.finished_at
        assert (receipt.outcome, receipt.error, receipt.traceback) == ("acked", "", "")
        assert (receipt.exchange, receipt.routing_key) == ("", receipt.queue_name)


def test_raw_batch_loop_writes_the_rows_runconsumer_writes(manage, queue_name, request):
    """The c-DB floor does runconsumer's database work at a high prefetch: the same
    receipt rows, valued the same way, per batch one write + commit (one ``finished_at``
    per batch, as runconsumer's batches) and one multiple-ack; every message acked."""
    from bench import raw
    from bench.measure.raw_consume import receipt_insert
    from messaging.models import Receipt

    url = settings.MESSAGING["BROKER_URL"]
    raw_queue = request.node.make_queue_name(".raw")
    count = 250
    for queue in (queue_name, raw_queue):
        raw.fill(url, queue, count, raw.body_of(256))
    args = ["--prefetch", "300", "--batch-size", "100", "--max-messages", str(count),
            "--handler", "messaging.consumer.handlers.discard", "-v", "0"]  # fmt: skip
    ran = manage("runconsumer", queue_name, *args)
    assert ran.returncode == 0, ran.stderr
    spec = receipt_insert("default", raw_queue)
    assert bool(spec["types"]) == (bench_kind() == "postgres")  # binary COPY, as the app's
    result = raw.consume_db_batch(url, raw_queue, count, 300, 100, spec)
    assert result["messages"] == count and result["seconds"] > 0
    assert raw.depth(url, raw_queue) == 0 == raw.depth(url, queue_name)

    base = Receipt.objects.filter(queue_name=raw_queue)
    app = Receipt.objects.filter(queue_name=queue_name)
    assert base.filter(outcome="acked").count() == count == app.filter(outcome="acked").count()
    assert sorted(base.values_list("delivery_tag", flat=True)) == list(range(1, count + 1))
    # Batches of 100, 100 and the last 50, each stamped once.
    stamps = base.values("finished_at").annotate(n=Count("id"))
    assert sorted(stamps.values_list("n", flat=True)) == [50, 100, 100]
    assert {_shape_key(r) for r in base} == {_shape_key(r) for r in app}
    for receipt in (*base, *app):
        assert (receipt.exchange, receipt.routing_key) == ("", receipt.queue_name)
        assert receipt.received_at <= receipt.finished_at


def test_raw_send_floor_writes_the_rows_send_writes(manage, queue_name, request):
    """The s-DB floor does ``send --count``'s work: the same Message rows (every column
    valued the same but the ids and times), all published after their confirms, over
    several chunks and UPDATE statements; the messages on the broker carry the same
    properties."""
    from bench import raw
    from bench.measure.publish import send_spec
    from bench.raw_send import send_floor
    from messaging.models import Message

    url = settings.MESSAGING["BROKER_URL"]
    raw_queue = request.node.make_queue_name(".raw")
    body, count = raw.body_of(256), 7
    ran = manage("send", queue_name, body.decode(), "--count", str(count), "-v", "0")
    assert ran.returncode == 0, ran.stderr
    spec = send_spec("default", raw_queue, body)
    spec.update(chunk=3, update_chunk=2, window=2)  # three chunks, two UPDATEs each
    result = send_floor(url, raw_queue, count, body, spec)
    assert result["messages"] == count and 0 < result["seconds"] <= result["committed"]

    app = list(Message.objects.filter(queue__name=queue_name))
    base = list(Message.objects.filter(queue__name=raw_queue))
    assert len(app) == len(base) == count
    assert {_message_shape(m) for m in base} == {_message_shape(m) for m in app}
    assert len({m.created_at for m in base}) == 3  # one stamp per chunk, as send's
    for row in (*app, *base):
        assert row.status == "published" and row.attempts == 1 and row.next_attempt_at is None
        assert bytes(row.body) == body and row.created_at <= row.published_at
    ids = {m.message_id for m in base}
    with raw.connection(url) as conn:
        channel = conn.channel()
        for queue, rows in ((queue_name, app), (raw_queue, base)):
            assert channel.queue_declare(queue, passive=True).method.message_count == count
            method, props, got = channel.basic_get(queue, auto_ack=False)
            row = next(r for r in rows if r.message_id == props.message_id)
            assert got == body and props.delivery_mode == 2
            assert props.timestamp == int(row.created_at.timestamp())
            assert (props.content_type, props.headers) == (None, None)
            channel.basic_nack(method.delivery_tag, requeue=True)
    assert props.message_id in ids


def _shape(receipt: object) -> dict[str, object]:
    """A receipt's values where both loops must agree, the type of the others."""
    from messaging.models import Receipt

    values = {f.attname: getattr(receipt, f.attname) for f in Receipt._meta.concrete_fields}
    same = ("consumer_host", "redelivered", "attempt", "outcome", "error", "traceback",
            "exchange", "stream_offset", "reply", "reply_content_type",
            "next_attempt_at")  # fmt: skip
    return {k: v if k in same else type(v) for k, v in values.items()}


def _shape_key(receipt: object) -> tuple[tuple[str, object], ...]:
    return tuple(sorted((k, str(v)) for k, v in _shape(receipt).items()))


def _message_shape(message: object) -> tuple[object, ...]:
    """A Message row's values but its ids, queue and times."""
    from messaging.models import Message

    skip = {"id", "message_id", "queue_id", "created_at", "published_at"}
    return tuple(
        (f.attname, bytes(v) if isinstance(v, memoryview) else str(v))
        for f in Message._meta.concrete_fields
        if f.attname not in skip
        for v in [getattr(message, f.attname)]
    )
