"""What differs between database vendors, in one place, reached from the connection; and
the raw SQL of the admin's pages, which asks it.

``operations(connection)`` is the :class:`~messaging.db.base.DatabaseOperations` of the
connection's vendor (:mod:`.postgresql`, :mod:`.sqlite`; any other vendor, MySQL
included, gets :mod:`.base`). One object per alias and vendor. What it answers:

- ``sorts_by_code_point``: can ``startswith`` be a range on the plain index (fields)
- ``begin_claim``: SQLite's write lock at the start of a claim (publishing)
- ``insert_copies``: INSERT the copies of one message (publishing)
- ``insert_rows``: INSERT receipt rows; the vendor's steps ``insert_one`` (a prepared
  statement on PostgreSQL) and ``copy_rows`` (COPY on PostgreSQL) (receipts)
- ``probe_writes``: can the database take a write right now? (consumer)
- ``groups_window_in_one_scan``: overview counts by one GROUP BY, else per-minute ranges
- ``minute_start``: the minute a timestamp falls in, for that GROUP BY (overview)
- ``read_through_index``: SQLite's ``INDEXED BY`` hint (overview)
- ``has_percentile_cont``: overview latency percentiles computed in SQL
- ``seconds_between``: seconds from one timestamp column to another (overview latency)
- ``bytes_as_text`` / ``bytes_text_term``: searching a binary body as text (admin)
- ``first_line``: an error's first line, the kind failures are grouped by (triage)

The admin pages' queries: :mod:`.overview_counts` and
:mod:`.overview_latency` (the overview page), :mod:`.failure_counts` (the failure
triage page), with what they share in :mod:`.raw_sql`. They import the models, so this
package does not import them (the models' fields import this package).
"""

from __future__ import annotations

from typing import Any

from .base import DatabaseOperations
from .postgresql import PostgreSQLOperations
from .sqlite import SQLiteOperations

__all__ = ["DatabaseOperations", "for_vendor", "operations"]

#: The vendors with operations of their own; any other gets DatabaseOperations.
VENDORS: dict[str, type[DatabaseOperations]] = {
    "postgresql": PostgreSQLOperations,
    "sqlite": SQLiteOperations,
}
_by_alias: dict[tuple[str, str], DatabaseOperations] = {}


def for_vendor(vendor: str) -> DatabaseOperations:
    """A new operations object for a Django ``connection.vendor`` string."""
    return VENDORS.get(vendor, DatabaseOperations)(vendor)


def operations(connection: Any) -> DatabaseOperations:
    """The operations of ``connection``'s vendor (one object per alias and vendor)."""
    key = (connection.alias, connection.vendor)
    ops = _by_alias.get(key)
    if ops is None:
        ops = _by_alias.setdefault(key, for_vendor(connection.vendor))
    return ops
