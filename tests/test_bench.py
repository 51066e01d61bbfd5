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


def test_bench_prints_every_row_and_cleans_up(tmp_path: Path) -> None:
    kind = bench_kind()
    prefix = f"bench-smoke.{uuid.uuid4().hex[:8]}"
    pg_name = f"bench_messaging_smoke_{os.getpid()}"
    sqlite_file = tmp_path / "bench.sqlite3"
    output = tmp_path / "results.md"
    env = dict(os.environ)
    env.update(
        BENCH_SQLITE=str(sqlite_file),
        BENCH_POSTGRES_URL=postgres_server_url(pg_name),
        BENCH_PREFIX=prefix,
    )
    sizes = [
        "--dbs", kind,
        "--n", "600",
        "--n-p1", "60",
        "--publish-n", "300",
        "--confirm-n", "30",
        "--mem-n", "900",
        "--mem-first", "300",
        "--overview-rows", "500",
        "--overview-repeat", "1",
        "--idle-timeout", "1",
        "--output", str(output),
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "bench", *sizes],
        capture_output=True,
        text=True,
        timeout=280,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    table = done.stdout
    rows = {
        line.split("|")[1].strip(): line
        for line in table.splitlines()
        if line.startswith("|") and line.split("|")[1].strip()
    }
    cells = {key: [c.strip() for c in line.split("|")[1:-1]] for key, line in rows.items()}
    expected = ["P0", "P1", f"send-{kind}", "a", f"b-{kind}", f"p1-{kind}", f"p300-{kind}",
                f"mem-{kind}", f"admin-{kind}"]  # fmt: skip
    assert [key for key in rows if key not in ("id", "---")] == expected
    for key in expected[:-1]:
        assert re.fullmatch(r"[\d,]+", cells[key][4]), rows[key]  # msg/s, not an error
    # Seconds per GET, or "not available" before the overview page exists.
    admin = cells[f"admin-{kind}"]
    assert re.fullmatch(r"[\d.]+", admin[3]) or admin[4] == "not available", admin
    # Every target has a verdict next to its ratio.
    assert "≥ 0.5× | " in rows[f"send-{kind}"]
    assert re.search(r"≥ 0.8× \| (pass|\*\*miss\*\*)", rows[f"p1-{kind}"])
    assert re.search(r"< 10 MB \| (pass|\*\*miss\*\*)", rows[f"mem-{kind}"])
    assert table.strip() in output.read_text()

    assert not [name for name in broker_queue_names() if name.startswith(prefix)]
    if kind == "sqlite":
        assert not sqlite_file.exists()
    else:
        import psycopg

        with psycopg.connect(postgres_server_url("postgres")) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [pg_name])
            assert found.fetchone() is None
