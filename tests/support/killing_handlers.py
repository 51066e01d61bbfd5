"""Handlers for ``runconsumer`` subprocesses that must die at a fault point of the
consumer (:mod:`messaging.consumer.fault_points`).

Start the consumer with ``--handler tests.support.killing_handlers.NAME`` and
``MESSAGING_TEST_SIGKILL_AT=<point>`` (:data:`SIGKILL_AT`) in its environment: importing
this module (runconsumer does, to load the handler) installs a hook that SIGKILLs the
process when the consumer reaches that point. Without the variable nothing is installed,
so importing this module anywhere else is harmless.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from messaging.consumer import fault_points
from tests.support.delay_handlers import log_run_fail_poison

#: Environment variable naming the fault point at which the consumer SIGKILLs itself.
SIGKILL_AT = "MESSAGING_TEST_SIGKILL_AT"

__all__ = ["SIGKILL_AT", "log_run_fail_poison"]


def _sigkill(**context: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if os.environ.get(SIGKILL_AT):
    fault_points.install(os.environ[SIGKILL_AT], _sigkill)
