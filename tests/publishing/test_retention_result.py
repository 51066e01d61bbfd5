"""messaging.publishing.retention's result type: RetentionResult, and the deprecated
PurgeResult name. (purge() itself and purgemessages: tests/publishing/test_retention.py.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from messaging.publishing import retention
from messaging.publishing.retention import RetentionResult

pytestmark = pytest.mark.unit


def test_as_dict() -> None:
    cutoff = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    result = RetentionResult(cutoff=cutoff, messages=3, receipts=4)
    assert result.as_dict() == {
        "cutoff": "2026-01-02T03:04:05+00:00",
        "messages": 3,
        "receipts": 4,
        "dry_run": False,
    }


def test_purge_result_is_a_deprecated_alias() -> None:
    with pytest.deprecated_call(match="use RetentionResult"):
        from messaging.publishing.retention import PurgeResult
    assert PurgeResult is RetentionResult


def test_other_missing_names_still_raise() -> None:
    with pytest.raises(AttributeError):
        retention.NoSuchName  # noqa: B018
