"""The Prometheus metrics the app records (``prometheus_client``, the ``metrics`` extra).

Without ``prometheus_client`` every function here does nothing. With it, the metrics
live in its default registry; under ``PROMETHEUS_MULTIPROC_DIR`` (gunicorn with several
workers, several consumers on one host) prometheus_client writes them to files that a
scrape merges (:mod:`.exposition`). Each label set's child is looked up once and kept,
so recording costs a dictionary look-up and an ``inc``/``observe``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

try:
    import prometheus_client as prom
except ImportError:  # pragma: no cover - exercised without the extra
    prom = None  # type: ignore[assignment]

#: Seconds buckets: a handler, a confirm, a message's wait (5 ms .. 1 h).
SECONDS_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
)  # fmt: skip
#: Seconds buckets for a commit-to-confirm wait (1 ms .. 60 s).
FAST_SECONDS_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
)  # fmt: skip
#: Deliveries per committed batch.
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def available() -> bool:
    """Is ``prometheus_client`` installed?"""
    return prom is not None


class _Family:
    """One metric and its children by label values (created on first use)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.metric = make() if prom is not None else None
        self.children: dict[tuple[str, ...], Any] = {}

    def child(self, *labels: str) -> Any:
        if not labels:
            return self.metric
        found = self.children.get(labels)
        if found is None:
            found = self.children[labels] = self.metric.labels(*labels)
        return found


def _counter(name: str, doc: str, labels: tuple[str, ...]) -> _Family:
    return _Family(lambda: prom.Counter(name, doc, labels))


def _histogram(name: str, doc: str, labels: tuple[str, ...], buckets: tuple) -> _Family:
    return _Family(lambda: prom.Histogram(name, doc, labels, buckets=buckets))


def _gauge(name: str, doc: str, labels: tuple[str, ...]) -> _Family:
    # livesum: under PROMETHEUS_MULTIPROC_DIR a scrape adds the live processes' values.
    return _Family(lambda: prom.Gauge(name, doc, labels, multiprocess_mode="livesum"))


# The names are a public interface (docs/reference/metrics.md): never rename.
DELIVERIES = _counter(
    "messaging_deliveries", "Deliveries with a committed receipt, by outcome.", ("queue", "outcome")
)
HANDLER_SECONDS = _histogram(
    "messaging_handler_seconds", "Time a handler ran.", ("queue",), SECONDS_BUCKETS
)
BATCH_SIZE = _histogram(
    "messaging_batch_size", "Deliveries per dispatched batch.", ("queue",), BATCH_BUCKETS
)
RECONNECTS = _counter(
    "messaging_broker_reconnects", "Broker connections lost and retried.", ("role",)
)
PUBLISHED = _counter(
    "messaging_published",
    "Publish attempts by outcome (published, failed, pending = left for a retry).",
    ("destination", "outcome"),
)
CONFIRM_SECONDS = _histogram(
    "messaging_confirm_seconds", "Wait for the broker's publisher confirm.", (), SECONDS_BUCKETS
)
END_TO_END_SECONDS = _histogram(
    "messaging_end_to_end_seconds",
    "From the message's send (confirm follows within messaging_confirm_seconds) to its "
    "acked receipt.",
    ("queue",),
    SECONDS_BUCKETS,
)
OUTBOX_WAIT_SECONDS = _histogram(
    "messaging_outbox_wait_seconds",
    "From the Message row's creation to the broker's confirm.",
    ("queue",),
    SECONDS_BUCKETS,
)

PUBLISH_BACKLOG = _gauge(
    "messaging_publish_backlog",
    "Committed rows handed to the process's publisher thread and not yet confirmed.",
    (),
)
PUBLISH_COMMIT_TO_CONFIRM_SECONDS = _histogram(
    "messaging_publish_commit_to_confirm_seconds",
    "From a transaction's commit to the broker's confirm of a row it handed off.",
    (),
    FAST_SECONDS_BUCKETS,
)

CONSUMER_IN_FLIGHT = _gauge(
    "messaging_consumer_in_flight",
    "Deliveries whose handlers are running now (runconsumer --threads: up to N at once).",
    (),
)


def multiprocess_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR``, if set."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
