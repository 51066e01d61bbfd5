"""The calling thread's loop with ``--threads N`` (:class:`~.workers.WorkerPool`): take
a free worker, then the next delivery, and hand it to that worker. With ``--batch-size``
given (the default with threads is 1), when more than N deliveries wait a worker takes an
equal share of them, up to the batch size, in one transaction: light handlers at a high
prefetch then keep batching their receipts, at the price of a slow handler holding the
acks of the others in its batch.

Taking the worker first keeps every delivery either running or unstarted in the inbox,
so a stopping consumer can give the unstarted ones back at once. Messages of one queue
may finish out of order (one thread, or a single-active-consumer queue, keeps order)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .. import observability
from .retry_policy import Verdict
from .verdicts import Settlement
from .workers import WorkerPool

if TYPE_CHECKING:
    from .engine import Consumer

#: How often the loop looks up while every worker is busy or the inbox is empty.
POLL_INTERVAL = 0.2


def threaded_loop(consumer: Consumer, pool: WorkerPool) -> None:
    """Feed ``pool`` until the consumer stops, reaches ``max_messages`` (counted when
    handed to a worker) or is idle for ``idle_timeout``; a worker's crash is raised."""
    submitted = 0
    last_activity = time.monotonic()
    while not consumer.stopping:
        observability.beat("loop")
        if pool.crashed is not None:
            raise pool.crashed
        consumer.io.busy(pool.oldest_start())
        if consumer.max_messages is not None and submitted >= consumer.max_messages:
            return
        now = time.monotonic()
        if pool.running():
            last_activity = now
        wait = _wait(consumer, now - last_activity)
        if wait is None:
            return
        if not pool.take_slot(wait):
            continue
        batch, fatal = _next_batch(consumer, pool, wait, submitted)
        if batch:
            submitted += len(batch)
            last_activity = time.monotonic()
        if fatal is not None:
            raise fatal


def _wait(consumer: Consumer, idle: float) -> float | None:
    """How long to wait for a worker or a delivery; None: idle for ``idle_timeout``."""
    if consumer.idle_timeout is None:
        return POLL_INTERVAL
    remaining = consumer.idle_timeout - idle
    if remaining <= 0:
        consumer.on_event(f"idle for {consumer.idle_timeout:g}s, stopping")
        return None
    return min(POLL_INTERVAL, remaining)


def _next_batch(
    consumer: Consumer, pool: WorkerPool, wait: float, submitted: int
) -> tuple[list, BaseException | None]:
    """With a worker reserved: the next batch handed to it (empty: none came, the
    worker is given back); a fatal error of the I/O thread comes back with it."""
    try:
        first = consumer.io.next_delivery(wait)
    except BaseException:
        pool.give_back()
        raise
    if first is None:
        pool.give_back()
        return [], None
    batch, fatal = consumer.inbox.collect(first, _limit(consumer, pool, submitted), linger=False)
    if consumer.stopping:
        # Stopped while it was taken: start nothing new, the broker gets it back.
        pool.give_back()
        consumer.io.settle([Settlement(d, Verdict.REQUEUE) for d in batch])
        return [], fatal
    observability.batch(batch)
    pool.submit(batch)
    return batch, fatal


def _limit(consumer: Consumer, pool: WorkerPool, submitted: int) -> int:
    """One delivery per worker, or an equal share of what waits when more than the
    workers wait (light handlers at a high prefetch keep batching their receipts)."""
    share = max(1, (consumer.inbox.waiting() + 1) // pool.threads)
    limit = min(consumer.batch_size, share)
    if consumer.max_messages is not None:
        limit = min(limit, consumer.max_messages - submitted)
    return max(1, limit)
