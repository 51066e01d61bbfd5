"""What a consumer has done so far (``runconsumer`` prints it; the registry stores it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ConsumerStats:
    handled: int = 0
    acked: int = 0
    duplicates: int = 0
    failed: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    reconnects: int = 0
    #: Handler runs longer than their queue's time budget (a warning, see budget.py).
    over_budget: int = 0
