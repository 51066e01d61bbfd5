"""What a consumer has done so far (``runconsumer`` prints it; the registry stores it)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


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
    #: Deliveries whose handlers are running right now (``--threads``: up to N).
    in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add to counters; safe from several worker threads at once (``+=`` is not)."""
        with self._lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)
