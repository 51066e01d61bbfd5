"""messaging.db: the operations object per vendor and the SQL its methods hold."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.db import NotSupportedError, connection

from messaging import db
from messaging.db import DatabaseOperations, for_vendor, operations
from messaging.db.postgresql import PostgreSQLOperations, escape_encoded
from messaging.db.sqlite import SQLiteOperations

pytestmark = pytest.mark.unit


class FakeCursor:
    def __init__(self) -> None:
        self.executed: list[tuple[str, Any]] = []

    def execute(self, sql: str, params: Any = None) -> None:
        self.executed.append((sql, params))

    def executemany(self, sql: str, rows: Any) -> None:
        self.executed.append((sql, list(rows)))


@pytest.mark.parametrize(
    ("vendor", "cls"),
    [
        ("postgresql", PostgreSQLOperations),
        ("sqlite", SQLiteOperations),
        ("mysql", DatabaseOperations),
        ("oracle", DatabaseOperations),
    ],
)
def test_each_vendor_gets_its_operations(vendor: str, cls: type) -> None:
    ops = for_vendor(vendor)
    assert type(ops) is cls
    assert ops.vendor == vendor


def test_flags() -> None:
    assert for_vendor("postgresql").groups_window_in_one_scan
    assert for_vendor("postgresql").has_percentile_cont
    for vendor in ("sqlite", "mysql"):
        assert not for_vendor(vendor).groups_window_in_one_scan
        assert not for_vendor(vendor).has_percentile_cont


def test_one_object_per_alias_and_vendor() -> None:
    first = operations(SimpleNamespace(alias="unit-a", vendor="sqlite"))
    assert operations(SimpleNamespace(alias="unit-a", vendor="sqlite")) is first
    assert operations(SimpleNamespace(alias="unit-b", vendor="sqlite")) is not first
    assert type(operations(SimpleNamespace(alias="unit-a", vendor="mysql"))) is DatabaseOperations
    assert operations(connection).vendor == connection.vendor
    assert ("unit-a", "sqlite") in db._by_alias


def test_code_point_order_without_asking_the_database() -> None:
    assert for_vendor("sqlite").sorts_by_code_point(None)
    assert not for_vendor("mysql").sorts_by_code_point(None)


def test_probe_writes() -> None:
    cursor = FakeCursor()
    for_vendor("sqlite").probe_writes(cursor, in_atomic_block=False)
    assert [sql for sql, _ in cursor.executed] == ["BEGIN IMMEDIATE", "ROLLBACK"]
    for ops, in_atomic_block in (
        (for_vendor("sqlite"), True),
        (for_vendor("postgresql"), False),
        (for_vendor("mysql"), False),
    ):
        cursor = FakeCursor()
        ops.probe_writes(cursor, in_atomic_block=in_atomic_block)
        assert [sql for sql, _ in cursor.executed] == ["SELECT 1"]


def test_begin_claim_takes_the_write_lock_only_on_sqlite() -> None:
    cursor = FakeCursor()

    class Connection:
        def cursor(self) -> Any:
            return self

        def __enter__(self) -> FakeCursor:
            return cursor

        def __exit__(self, *exc: object) -> None:
            return None

    for_vendor("postgresql").begin_claim(Connection(), '"t"')
    for_vendor("mysql").begin_claim(Connection(), '"t"')
    assert cursor.executed == []
    for_vendor("sqlite").begin_claim(Connection(), '"t"')
    assert cursor.executed == [('UPDATE "t" SET id = id WHERE 1 = 0', None)]


def test_insert_copies() -> None:
    cursor = FakeCursor()
    for_vendor("sqlite").insert_copies(cursor, "t", ["a", "id", "b"], [1, None, 2], 1, ["x", "y"])
    assert cursor.executed == [
        ("INSERT INTO t (a, id, b) VALUES (%s, %s, %s)", [[1, "x", 2], [1, "y", 2]])
    ]
    cursor = FakeCursor()
    for_vendor("postgresql").insert_copies(
        cursor, "t", ["a", "id", "b"], [1, None, 2], 1, ["x", "y"]
    )
    assert cursor.executed == [
        (
            "INSERT INTO t (a, id, b) SELECT %s, m, %s FROM unnest(%s::varchar[]) AS m",
            [1, 2, ["x", "y"]],
        )
    ]


def test_insert_rows_adapts_datetimes_elsewhere() -> None:
    adapted = SimpleNamespace(ops=SimpleNamespace(adapt_datetimefield_value=lambda v: f"<{v}>"))
    cursor = FakeCursor()
    for_vendor("sqlite").insert_rows(adapted, cursor, "t", "a, b", [("x", 1)], [1])
    assert cursor.executed == [("INSERT INTO t (a, b) VALUES (%s, %s)", ["x", "<1>"])]
    cursor = FakeCursor()
    for_vendor("mysql").insert_rows(adapted, cursor, "t", "a, b", [("x", 1), ("y", 2)], [1])
    assert cursor.executed == [
        ("INSERT INTO t (a, b) VALUES (%s, %s)", [["x", "<1>"], ["y", "<2>"]])
    ]


def test_overview_sql() -> None:
    quoting = SimpleNamespace(ops=SimpleNamespace(quote_name=lambda name: f'"{name}"'))
    assert for_vendor("sqlite").read_through_index(quoting, "t", "idx") == 't INDEXED BY "idx"'
    assert for_vendor("postgresql").read_through_index(quoting, "t", "idx") == "t"
    assert for_vendor("mysql").read_through_index(quoting, "t", "idx") == "t"
    assert for_vendor("sqlite").seconds_between("a", "b") == (
        "MAX((julianday(b) - julianday(a)) * 86400.0, 0.0)"
    )
    assert for_vendor("mysql").seconds_between("a", "b") == (
        "GREATEST(TIMESTAMPDIFF(MICROSECOND, a, b) / 1e6, 0)"
    )
    assert for_vendor("postgresql").seconds_between("a", "b") == (
        "GREATEST(EXTRACT(EPOCH FROM (b - a)), 0)"
    )
    assert for_vendor("postgresql").minute_start("t") == "date_bin(interval '1 minute', t, %s)"
    for vendor in ("sqlite", "mysql"):  # they count the window's minutes by ranges
        assert not for_vendor(vendor).groups_window_in_one_scan
        with pytest.raises(NotSupportedError):
            for_vendor(vendor).minute_start("t")


def test_insert_rows_takes_the_vendors_steps() -> None:
    """PostgreSQL sends one row prepared (no Django cursor opened) and COPYs from
    COPY_THRESHOLD rows; fewer rows go as one INSERT, as elsewhere."""
    ops = for_vendor("postgresql")
    calls: list[Any] = []

    def insert_one(connection: Any, into: str, row: tuple[Any, ...]) -> bool:
        calls.append(("one", into, row))
        return True

    def copy_rows(connection: Any, cursor: Any, into: str, rows: Any, types: Any) -> bool:
        calls.append(("copy", into, len(rows), tuple(types)))
        return len(rows) >= 3  # a COPY_THRESHOLD of 3

    ops.insert_one = insert_one  # type: ignore[method-assign]
    ops.copy_rows = copy_rows  # type: ignore[method-assign]
    adapted = SimpleNamespace(ops=SimpleNamespace(adapt_datetimefield_value=lambda v: v))
    cursor = FakeCursor()
    ops.insert_rows(adapted, None, "t", "a", [("x",)], [])
    ops.insert_rows(adapted, cursor, "t", "a", [("x",), ("y",)], [], ["text"])
    ops.insert_rows(adapted, cursor, "t", "a", [("x",), ("y",), ("z",)], [], ["text"])
    assert calls == [
        ("one", "t (a)", ("x",)),
        ("copy", "t (a)", 2, ("text",)),
        ("copy", "t (a)", 3, ("text",)),
    ]
    assert cursor.executed == [("INSERT INTO t (a) VALUES (%s)", [["x"], ["y"]])]


def test_body_search_term() -> None:
    assert for_vendor("sqlite").bytes_text_term("Ä\\x") == "Ä\\x"
    assert for_vendor("postgresql").bytes_text_term("Ä\\x\0") == "\\303\\204\\\\x\\000"
    assert escape_encoded("plain") == "plain"
