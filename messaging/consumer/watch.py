"""A warning before the broker's ``consumer_timeout`` takes a delivery back."""

from __future__ import annotations

import logging
import time

from .. import observability

logger = logging.getLogger("messaging.consumer")

#: Warn when a handler has held a delivery for this share of the broker's consumer_timeout.
CONSUMER_TIMEOUT_WARN_AT = 0.8


class TimeoutWatch:
    """Warns once per batch when a handler holds its delivery close to the timeout."""

    def __init__(self, consumer_timeout: float) -> None:
        self.consumer_timeout = consumer_timeout
        #: When the calling thread took its current batch (None: idle).
        self.since: float | None = None
        self._warned = False

    def busy(self, since: float | None) -> None:
        self.since = since
        observability.busy(since)
        if since is None:
            self._warned = False

    def check(self) -> None:
        observability.beat("io")
        since = self.since
        if since is None or self._warned or self.consumer_timeout <= 0:
            return
        elapsed = time.monotonic() - since
        if elapsed >= CONSUMER_TIMEOUT_WARN_AT * self.consumer_timeout:
            self._warned = True
            logger.warning(
                "a handler has held its delivery for %.0fs, close to the broker's "
                "consumer_timeout (%.0fs, MESSAGING['BROKER_CONSUMER_TIMEOUT']): the broker "
                "will close the channel and redeliver the message when it expires",
                elapsed,
                self.consumer_timeout,
            )
