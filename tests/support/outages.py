"""Outages for the body of a ``with`` block: the broker stopped (``rabbitmqctl stop_app``)
or the test database unusable for other processes; and the environment a consumer needs
to fail fast (not wait) during one."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from tests.support.rabbitmq import broker_answers, rabbitmqctl


@contextmanager
def broker_stopped() -> Iterator[None]:
    """``rabbitmqctl stop_app`` for the body of the block; ``start_app`` in ``finally`` and
    wait until the broker answers again. Other test runs share the broker: keep it short."""
    rabbitmqctl("stop_app")
    try:
        yield
    finally:
        subprocess.run(["rabbitmqctl", "start_app"], capture_output=True, timeout=120)
        subprocess.run(["rabbitmqctl", "await_startup"], capture_output=True, timeout=120)
        deadline = time.monotonic() + 120
        while not broker_answers():
            if time.monotonic() > deadline:
                raise RuntimeError("the broker did not come back after start_app")
            time.sleep(0.5)


def database_is_sqlite() -> bool:
    return connection.vendor == "sqlite"


def outage_env() -> dict[str, str]:
    """Extra environment for a consumer that must *fail* (not wait) during an outage:
    SQLite otherwise waits 30 s for a lock (OPTIONS timeout)."""
    if database_is_sqlite():
        return {"MESSAGING_TEST_DB_OPTIONS": json.dumps({"timeout": 1})}
    return {}


def _exclusive_lock(path: str, timeout: float = 30) -> sqlite3.Connection:
    """A connection holding SQLite's EXCLUSIVE lock on ``path``. A consumer writing all
    the time leaves the lock free only for a fraction of a millisecond between two
    transactions, which SQLite's own busy handler (sleeping up to 100 ms between tries)
    can miss for seconds: try again at once instead, up to ``timeout`` seconds."""
    lock = sqlite3.connect(path, timeout=0, isolation_level=None)
    deadline = time.monotonic() + timeout
    while True:
        try:
            lock.execute("BEGIN EXCLUSIVE")
            return lock
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                lock.close()
                raise
            time.sleep(0.0001)


@contextmanager
def database_unavailable() -> Iterator[None]:
    """Make the test database unusable for other processes for the body of the block.

    SQLite: another connection holds an EXCLUSIVE lock (readers and writers get "database
    is locked"). PostgreSQL: the database stops accepting connections and every backend
    connected to it except this process's own is terminated (done as a separate
    connection to database ``postgres``). Restored in ``finally``.
    """
    if database_is_sqlite():
        lock = _exclusive_lock(connection.settings_dict["NAME"])
        try:
            yield
        finally:
            try:
                lock.execute("ROLLBACK")
            finally:
                lock.close()
        return

    import psycopg

    settings = connection.settings_dict
    dbname = settings["NAME"]
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (own_pid,) = cursor.fetchone()
    admin = psycopg.connect(
        host=settings.get("HOST") or "localhost",
        port=settings.get("PORT") or 5432,
        user=settings.get("USER") or "postgres",
        password=settings.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )
    quoted = '"' + dbname.replace('"', '""') + '"'
    try:
        admin.execute(f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS false")
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> %s",
                (dbname, own_pid),
            )
            yield
        finally:
            admin.execute(f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS true")
    finally:
        admin.close()
