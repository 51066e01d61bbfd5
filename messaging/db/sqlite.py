"""SQLite: no row locks (a claim takes the write lock), BINARY text order, index hints."""

from __future__ import annotations

from typing import Any

from .base import DatabaseOperations


class SQLiteOperations(DatabaseOperations):
    def sorts_by_code_point(self, connection: Any) -> bool:
        """SQLite's default collation (BINARY) compares by code point."""
        return True

    def begin_claim(self, connection: Any, table: str) -> None:
        """A write that matches nothing takes the database's write lock at once: a second
        claimer waits for this transaction to commit and then sees the outcome."""
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET id = id WHERE 1 = 0")

    def probe_writes(self, cursor: Any, in_atomic_block: bool) -> None:
        """SELECT works under another connection's write lock: outside a transaction,
        ask for the lock itself."""
        if in_atomic_block:
            cursor.execute("SELECT 1")
            return
        cursor.execute("BEGIN IMMEDIATE")
        cursor.execute("ROLLBACK")

    def read_through_index(self, connection: Any, table: str, index: str) -> str:
        return f"{table} INDEXED BY {connection.ops.quote_name(index)}"

    def seconds_between(self, start: str, end: str) -> str:
        return f"MAX((julianday({end}) - julianday({start})) * 86400.0, 0.0)"

    def first_line(self, column: str, length: int) -> str:
        return (
            f"substr(CASE WHEN instr({column}, char(10)) > 0 "
            f"THEN substr({column}, 1, instr({column}, char(10)) - 1) ELSE {column} END, "
            f"1, {int(length)})"
        )
