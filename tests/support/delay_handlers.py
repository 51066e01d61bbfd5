"""Handlers of the retry-delay tests (``--handler tests.support.delay_handlers.NAME``)."""

from __future__ import annotations

import os

from messaging import Delivery
from tests.support.handlers import record

#: A file each handler run appends "<message_id> <attempts header>" to, outside the
#: database transaction (so failed runs are counted too).
RUN_LOG = "MESSAGING_TEST_RUN_LOG"


def log_run_fail_poison(delivery: Delivery) -> None:
    """Logs every run; raises for a message with header ``poison``, records the others."""
    path = os.environ.get(RUN_LOG)
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{delivery.message_id}\n")
    if delivery.headers.get("poison"):
        raise RuntimeError("poison message")
    record(delivery)
