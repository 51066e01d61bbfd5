"""The bench databases: checked, locked, created and migrated, emptied, dropped.

PostgreSQL ``bench_messaging`` (``BENCH_POSTGRES_URL``) and the SQLite file
(``BENCH_SQLITE``); never the development or test databases.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench import config
from bench.process import KINDS, BenchError, command_env, log, manage, redact, run

_SQLITE_SUFFIXES = ("", "-journal", "-wal", "-shm")


def server_url() -> str:
    """The bench PostgreSQL server's ``postgres`` database (the bench one may not exist)."""
    return urlunsplit(urlsplit(config.postgres_url())._replace(path="/postgres"))


def _remove_sqlite() -> None:
    path = config.sqlite_path()
    for suffix in _SQLITE_SUFFIXES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def check_postgres() -> None:
    """One clear line when PostgreSQL does not answer, before anything is created."""
    import psycopg

    try:
        psycopg.connect(server_url()).close()
    except Exception as exc:  # noqa: BLE001
        raise BenchError(
            f"cannot reach PostgreSQL at {redact(config.postgres_url())} "
            f"(BENCH_POSTGRES_URL; or run with --dbs sqlite): {exc}".splitlines()[0]
        ) from exc


class Databases:
    """The bench databases of ``kinds`` (``sqlite``, ``postgres``)."""

    def __init__(self, kinds: list[str]) -> None:
        self.kinds = kinds

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
            if "postgres" not in self.kinds:
                yield
                return
            with self._advisory_lock():
                yield

    @contextlib.contextmanager
    def _advisory_lock(self) -> Iterator[None]:
        import psycopg

        key = f"messaging-bench:{urlsplit(config.postgres_url()).path.lstrip('/')}"
        with psycopg.connect(server_url()) as conn:
            conn.autocommit = True
            got = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [key]).fetchone()
            if not got[0]:
                raise BenchError(
                    f"another bench is running on {redact(config.postgres_url())} "
                    "(advisory lock held)"
                )
            yield

    def setup(self) -> None:
        """Each database new and empty, then ``manage.py migrate`` on it."""
        for kind in self.kinds:
            start = time.perf_counter()
            if kind == "sqlite":
                Path(config.sqlite_path()).parent.mkdir(parents=True, exist_ok=True)
                _remove_sqlite()
            else:
                self._recreate_postgres()
            done = run(manage("migrate", "-v", "0"), command_env(kind), timeout=600)
            if done.returncode != 0:
                raise BenchError(f"migrate on {KINDS[kind]} failed: {done.failure()}")
            log(f"{KINDS[kind]} bench database ready ({time.perf_counter() - start:.1f}s)")

    def _recreate_postgres(self, drop_only: bool = False) -> None:
        import psycopg

        name = urlsplit(config.postgres_url()).path.lstrip("/")
        if not name or name in ("postgres", "template0", "template1"):
            raise BenchError(f"BENCH_POSTGRES_URL must name a bench database, not {name!r}")
        with psycopg.connect(server_url(), autocommit=True) as conn:
            quoted = '"' + name.replace('"', '""') + '"'
            conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
            if not drop_only:
                conn.execute(f"CREATE DATABASE {quoted}")

    def drop(self) -> None:
        """Remove every bench database (errors are logged, not raised)."""
        from django.db import connections

        connections.close_all()
        for kind in self.kinds:
            try:
                if kind == "sqlite":
                    _remove_sqlite()
                else:
                    self._recreate_postgres(drop_only=True)
            except Exception as exc:  # noqa: BLE001
                log(f"could not drop the {KINDS[kind]} bench database: {exc}")

    @staticmethod
    def flush(kind: str, *models: Any) -> None:
        """Empty the tables of ``models`` (TRUNCATE / DELETE, as Django's flush)."""
        from django.core.management.color import no_style
        from django.db import connections

        conn = connections[kind]
        tables = [m._meta.db_table for m in models]
        with conn.cursor() as cursor:
            for sql in conn.ops.sql_flush(no_style(), tables, reset_sequences=False):
                cursor.execute(sql)
