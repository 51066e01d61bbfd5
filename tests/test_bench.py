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

ROOT = Path(__file__).resolve().parent.parent
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
        + ["celery"]
    )
    expected = ["P0", "P1", f"send-{kind}", *calls, "a", f"b-{kind}", f"p1-{kind}",
                f"p300-{kind}", f"retry-base-{kind}", f"retry-{kind}", f"mem-{kind}",
                f"admin-{kind}", f"triage-{kind}"]  # fmt: skip
    assert [key for key in rows if key not in ("id", "---")] == expected
    for key in expected[:-2]:
        assert re.fullmatch(r"[\d,]+", cells[key][4]), rows[key]  # msg/s, not an error
    # Seconds per GET, or "not available" before the overview page exists.
    for page in (f"admin-{kind}", f"triage-{kind}"):
        admin = cells[page]
        assert re.fullmatch(r"[\d.]+", admin[3]) or admin[4] == "not available", admin
    # Every target has a verdict next to its ratio.
    assert "≥ 0.5× | " in rows[f"send-{kind}"]
    assert re.search(r"≥ 0.8× \| (pass|\*\*miss\*\*)", rows[f"p1-{kind}"])
    assert re.search(r"≥ 0.8× \| (pass|\*\*miss\*\*)", rows[f"call-out-{kind}"])
    assert "(1 broker connection opened)" in rows[f"call-out-8t-{kind}"]
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
            "--handler", "messaging.handlers.discard", "-v", "0"]  # fmt: skip
    ran = manage("runconsumer", queue_name, *args)
    assert ran.returncode == 0, ran.stderr
    result = raw.consume_db(url, raw_queue, 1, receipt_insert("default", raw_queue))
    assert result["messages"] == 1
    app = Receipt.objects.get(queue_name=queue_name)
    base = Receipt.objects.get(queue_name=raw_queue)

    def shape(receipt: Receipt) -> dict[str, object]:
        values = {f.attname: getattr(receipt, f.attname) for f in Receipt._meta.concrete_fields}
        same = ("consumer_host", "redelivered", "attempt", "outcome", "error", "traceback")
        return {k: v if k in same else type(v) for k, v in values.items()}

    assert shape(base) == shape(app)
    for receipt in (app, base):
        assert receipt.consumer_name == f"{receipt.consumer_host}:{receipt.consumer_pid}"
        assert receipt.message_id and receipt.consumer_tag and receipt.delivery_tag == 1
        assert receipt.received_at <= receipt.finished_at
        assert (receipt.outcome, receipt.error, receipt.traceback) == ("acked", "", "")
