"""The consumer engine behind ``runconsumer`` (and the tests and benchmarks).

Threads: the **I/O thread** owns the pika connection; the **calling thread** runs the
handlers; with ``register=True`` a **registry thread** keeps the ``Consumer`` row fresh.
A delivery is acked only after its receipt (and the handler's work) is committed.

Parts, one job each:

* :mod:`.engine` — ``Consumer``: wires the parts, runs the calling thread's loop;
* :mod:`.io` — ``ConsumerIO``: connect, declare, QoS, consume, heartbeats, settle the
  verdicts (ack / requeue / nack / dead-letter move), reconnect;
* :mod:`.batches` — ``Inbox``: the hand-over between the threads, batch collection;
* :mod:`.dispatch` — ``Dispatcher``: handler + receipt in one ``atomic()``, batches and
  the one-by-one redo;
* :mod:`.policy` — the failure policy as pure code: attempt counting, requeue or
  dead-letter (``Verdict``), backoff;
* :mod:`.failures` — ``Failures``: carries a failure's decision out (receipt, log, verdict);
* :mod:`.recorder` — ``ReceiptRecorder``: one receipt row shape for every path, signals;
* :mod:`.database` — ``DatabaseGuard``: is the database there, back off when it is not;
* :mod:`.registry` — ``Registry``: the registry thread;
* :mod:`.settlement`, :mod:`.stats` — the small records passed between them.
"""

from __future__ import annotations

from .database import DB_BACKOFF_MAX, DatabaseDown
from .engine import Consumer, policy_for
from .inbox import MAX_DEFAULT_BATCH, Inbox, default_batch_size
from .retry_policy import ERROR_MAX_CHARS, QueuePolicy, RetryPolicy, Verdict
from .stats import ConsumerStats
from .verdicts import Settlement
from .watch import CONSUMER_TIMEOUT_WARN_AT

__all__ = [
    "CONSUMER_TIMEOUT_WARN_AT",
    "DB_BACKOFF_MAX",
    "ERROR_MAX_CHARS",
    "MAX_DEFAULT_BATCH",
    "Consumer",
    "ConsumerStats",
    "DatabaseDown",
    "Inbox",
    "QueuePolicy",
    "RetryPolicy",
    "Settlement",
    "Verdict",
    "default_batch_size",
    "policy_for",
]
