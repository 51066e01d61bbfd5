"""What the raw SQL of the admin's pages shares (:mod:`.overview_counts`,
:mod:`.overview_latency`, :mod:`.failure_counts`): the quoted names of the app's tables
and columns, datetimes as the driver takes them, the outcomes that count as failures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..models import Receipt

#: Receipt outcomes that count as failures: the overview's failure rate and the failure
#: triage page (whose links list them in this order).
FAILED_OUTCOMES = (
    Receipt.Outcome.REQUEUED,
    Receipt.Outcome.DEAD_LETTERED,
    Receipt.Outcome.REJECTED,
)


def table(connection: Any, model: type[Any]) -> str:
    """``model``'s table, quoted for ``connection``."""
    return connection.ops.quote_name(model._meta.db_table)


def column(connection: Any, model: type[Any], name: str) -> str:
    """The column of ``model``'s field ``name``, quoted for ``connection``."""
    return connection.ops.quote_name(model._meta.get_field(name).column)


def when(connection: Any, moment: datetime) -> Any:
    """``moment`` as a query parameter of a datetime column (text on SQLite)."""
    return connection.ops.adapt_datetimefield_value(moment)


def failed_outcomes_sql() -> tuple[str, list[str]]:
    """``(%s, %s, %s)`` and its parameters: the failed outcomes, for ``IN``."""
    return "(" + ", ".join(["%s"] * len(FAILED_OUTCOMES)) + ")", [str(o) for o in FAILED_OUTCOMES]
