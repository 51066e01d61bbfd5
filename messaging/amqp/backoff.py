"""The one backoff formula every retry and reconnect uses.

``backoff(attempt, first=..., cap=...)`` is ``first`` for the first attempt and doubles
each time after, never above ``cap``: ``first * 2 ** (attempt - 1)``. With ``jitter``
the pause is drawn uniformly from its upper half, so processes that failed together do
not come back together. Used by the consumer's retry delay and reconnects, its database
backoff, the outbox's retry schedule and the relay's broker-down interval.
"""

from __future__ import annotations

import random

#: Doubling stops here (2**40 times ``first`` is far above any useful cap).
MAX_DOUBLINGS = 40


def backoff(attempt: int, *, first: float, cap: float, jitter: bool = False) -> float:
    """Seconds to wait before try ``attempt + 1`` after ``attempt`` failed (1-based).

    >>> [backoff(n, first=1, cap=10) for n in (1, 2, 3, 4, 5)]
    [1.0, 2.0, 4.0, 8.0, 10.0]
    """
    if first <= 0:
        return 0.0
    exponent = min(max(attempt - 1, 0), MAX_DOUBLINGS)
    pause = min(float(cap), float(first) * 2**exponent)
    if jitter:
        pause = random.uniform(pause / 2, pause)
    return pause
