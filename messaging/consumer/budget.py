"""Handler time budgets: a soft limit per queue (``Queue.handler_time_budget``, else
``HANDLER_TIME_BUDGET``). A handler that runs past it is logged with its message_id and
counted (``ConsumerStats.over_budget``) — a warning only: Python cannot safely stop a
running thread, so the handler carries on and its outcome is unchanged."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from .handlers import Delivery
from .stats import ConsumerStats

logger = logging.getLogger("messaging.consumer")


def budget_for(queue_budget: float | None, default: float | None) -> float | None:
    """The queue's own budget, else the setting's (None: no budget)."""
    budget = queue_budget if queue_budget is not None else default
    return float(budget) if budget is not None and budget > 0 else None


def over_budget(elapsed: float, budget: float | None) -> bool:
    return budget is not None and elapsed > budget


class HandlerBudget:
    """Checks each handler run against its queue's budget (seconds, or None)."""

    def __init__(self, budgets: Mapping[str, float | None], stats: ConsumerStats) -> None:
        self.budgets = dict(budgets)
        self.stats = stats
        self.active = any(b is not None for b in self.budgets.values())

    def check(self, delivery: Delivery, elapsed: float) -> None:
        budget = self.budgets.get(delivery.queue)
        if not over_budget(elapsed, budget):
            return
        self.stats.add(over_budget=1)
        logger.warning(
            "handler for %s ran %.3fs on message %s, over its time budget of %gs "
            "(a warning only: the handler was not stopped)",
            delivery.queue,
            elapsed,
            delivery.message_id or "(no id)",
            budget,
        )
