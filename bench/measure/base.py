"""What every measurement gets: the options, the broker, the queues and the rows."""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Callable
from dataclasses import dataclass

from bench.process import describe, log
from bench.provision import Queues, wait_for_broker
from bench.report import Results, Row


@dataclass
class Context:
    args: Namespace
    url: str  # the broker
    body: bytes  # every message's body
    queues: Queues
    results: Results

    def measure(self, row: Row, fn: Callable[[], None]) -> None:
        """Run one measurement; on an error, wait for the broker (others may restart it
        on a shared machine) and try once more, then record the error in the row."""
        if row.error:
            return
        for attempt in (1, 2):
            samples = len(row.samples)
            try:
                fn()
                return
            except Exception as exc:  # noqa: BLE001 - e.g. the broker went away: say so, go on
                del row.samples[samples:]
                error = describe(exc)
                if attempt == 1 and wait_for_broker(self.url, 180):
                    log(f"{row.key}: {error}; trying once more")
                    row.retried = True
                    continue
                row.error = error
                log(f"{row.key}: error: {row.error}")

    def sample(self, row: Row, seconds: float) -> None:
        """Add one round's seconds to ``row`` and log its rate."""
        row.samples.append(seconds)
        rate = (row.messages or 0) / seconds if seconds > 0 else 0
        log(f"{row.key}: {row.messages:,} in {seconds:.2f}s = {rate:,.0f} msg/s")
