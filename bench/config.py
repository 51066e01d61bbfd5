"""Where the benchmark's databases and broker are (environment, no Django import).

``BENCH_SQLITE``        SQLite file (default /tmp/messaging-bench/bench.sqlite3)
``BENCH_POSTGRES_URL``  PostgreSQL database, created and dropped by the bench
                        (default postgres://postgres@127.0.0.1:5432/bench_messaging)
``MESSAGING_BROKER_URL`` RabbitMQ (default amqp://guest:guest@localhost:5672/%2F)

The development database (``db.sqlite3``) and the test databases are never used.
"""

from __future__ import annotations

import os

DEFAULT_SQLITE = "/tmp/messaging-bench/bench.sqlite3"
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/bench_messaging"
DEFAULT_BROKER_URL = "amqp://guest:guest@localhost:5672/%2F"


def sqlite_path() -> str:
    return os.environ.get("BENCH_SQLITE") or DEFAULT_SQLITE


def postgres_url() -> str:
    return os.environ.get("BENCH_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def broker_url() -> str:
    return os.environ.get("MESSAGING_BROKER_URL") or DEFAULT_BROKER_URL


def database_url(kind: str) -> str:
    """The URL of the bench database of ``kind`` (``sqlite`` or ``postgres``)."""
    if kind == "sqlite":
        return f"sqlite:///{sqlite_path()}"
    if kind == "postgres":
        return postgres_url()
    raise ValueError(f"unknown database kind {kind!r} (sqlite or postgres)")
