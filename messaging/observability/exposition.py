"""What a Prometheus scrape returns (``/metrics``: :mod:`.endpoints`, :mod:`.server`): the
metrics of :mod:`.metrics` — this process's, or every process's under
``PROMETHEUS_MULTIPROC_DIR`` — and the scrape-time gauges of :mod:`.gauges`. Call only
when :func:`.metrics.available`."""

from __future__ import annotations

from typing import Any

from .gauges import GaugeCollector
from .metrics import multiprocess_dir, prom


def registry(*, gauges: bool = True) -> Any:
    """What a scrape returns: this process's metrics (or, in multiprocess mode, every
    process's, merged) plus the scrape-time gauges (:mod:`.gauges`)."""
    path = multiprocess_dir()
    if path:
        from prometheus_client import multiprocess  # the extra: only when installed

        reg = prom.CollectorRegistry()
        multiprocess.MultiProcessCollector(reg, path=path)
    else:
        reg = prom.CollectorRegistry(auto_describe=True)
        reg.register(_Default())
    if gauges:
        reg.register(GaugeCollector.shared())
    return reg


class _Default:
    """The default registry's metrics, re-exported into a scrape's registry."""

    def collect(self) -> Any:
        return prom.REGISTRY.collect()

    def describe(self) -> list[Any]:
        return []


def exposition(*, gauges: bool = True) -> tuple[bytes, str]:
    """(body, content type) of a scrape in Prometheus' text format."""
    return prom.generate_latest(registry(gauges=gauges)), prom.CONTENT_TYPE_LATEST
