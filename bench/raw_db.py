"""The raw loops' database side: plain sqlite3 or psycopg, no Django.

The driver describes the table and the value of each column in a JSON spec
(:func:`bench.measure.raw_consume.receipt_insert`, :func:`bench.measure.publish.
message_spec`); this module only connects and writes, as a hand-written script would.
Datetimes are aware UTC on PostgreSQL and naive UTC text on SQLite (as Django stores them).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import sqlite3
from collections.abc import Sequence
from typing import Any


def connect(spec: dict[str, Any]) -> Any:
    """A connection to the database of ``spec``: sqlite3 in autocommit mode (transactions
    are explicit, as Django's) with foreign keys on, or psycopg (transactions implicit)."""
    if spec["kind"] == "sqlite":
        conn = sqlite3.connect(spec["path"], isolation_level=None, timeout=30)
        conn.execute("PRAGMA foreign_keys = ON")  # as Django's connection
        return conn
    import psycopg

    return psycopg.connect(spec["dsn"])


def now(kind: str) -> Any:
    """The current time as the ``kind`` database takes it."""
    stamp = dt.datetime.now(dt.UTC)
    return str(stamp.replace(tzinfo=None)) if kind == "sqlite" else stamp


class Receipts:
    """Receipt rows into the receipts table: one INSERT committed on its own (floor b),
    or a batch by ``COPY`` (PostgreSQL) / ``executemany`` (SQLite) and one commit (c).

    ``spec["columns"]`` gives each column's value: ``{"var": key}`` from the message,
    ``{"const": value}``, or ``{"process": "name" | "host" | "pid"}``, this process's
    (``name`` is ``host:pid``, as ``runconsumer`` names itself).
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.kind = spec["kind"]
        host, pid = socket.gethostname(), os.getpid()
        process = {"name": f"{host}:{pid}", "host": host, "pid": pid}
        self.template: list[Any] = []
        self.variables: list[tuple[int, str]] = []  # (position, key) filled per message
        for position, column in enumerate(spec["columns"]):
            if "var" in column:
                self.template.append(None)
                self.variables.append((position, column["var"]))
            elif "process" in column:
                self.template.append(process[column["process"]])
            else:
                self.template.append(column["const"])
        names = ", ".join(spec["names"])
        mark = "?" if self.kind == "sqlite" else "%s"
        marks = ", ".join([mark] * len(spec["names"]))
        self.insert_sql = f"INSERT INTO {spec['table']} ({names}) VALUES ({marks})"
        # Binary COPY when the column types are given (PostgreSQL), as the app copies.
        self.types = spec.get("types") or None
        binary = " (FORMAT BINARY)" if self.types else ""
        self.copy_sql = f"COPY {spec['table']} ({names}) FROM STDIN{binary}"
        self.conn = connect(spec)

    def row(self, values: dict[str, Any]) -> list[Any]:
        """The row of one message (``values``: its keys of the spec's ``var`` columns)."""
        row = self.template.copy()
        for position, key in self.variables:
            row[position] = values[key]
        return row

    def insert(self, values: dict[str, Any]) -> None:
        """One row, committed."""
        row = self.row(values)
        if self.kind == "sqlite":
            self.conn.execute("BEGIN")
            self.conn.execute(self.insert_sql, row)
            self.conn.execute("COMMIT")
        else:
            self.conn.execute(self.insert_sql, row)
            self.conn.commit()

    def insert_batch(self, rows: Sequence[Sequence[Any]]) -> None:
        """``rows`` (from :meth:`row`) in one transaction: ``COPY … FROM STDIN`` on
        PostgreSQL (binary with ``spec["types"]``), ``executemany`` on SQLite, then the
        commit."""
        if self.kind == "sqlite":
            self.conn.execute("BEGIN")
            self.conn.executemany(self.insert_sql, rows)
            self.conn.execute("COMMIT")
            return
        with self.conn.cursor() as cursor, cursor.copy(self.copy_sql) as copy:
            if self.types:
                copy.set_types(self.types)
            for row in rows:
                copy.write_row(row)
        self.conn.commit()

    def now(self) -> Any:
        return now(self.kind)

    def close(self) -> None:
        self.conn.close()
