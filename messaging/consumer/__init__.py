"""The consumer engine behind ``runconsumer`` (and ``messaging.testing``, the tests and
the benchmarks).

Threads: the **I/O thread** owns the pika connection; the **calling thread** runs the
handlers; with ``register=True`` a **registry thread** keeps the ``Consumer`` row fresh.
A delivery is acked only after its receipt (and the handler's work) is committed.

Exported here:

* :class:`Consumer` — consume queues (:meth:`~Consumer.run`), or handle one delivery
  without a broker (:meth:`~Consumer.handle_one`); ``run()`` returns its
  :class:`ConsumerStats`;
* :class:`Delivery` — what a handler gets (also ``messaging.Delivery``); :data:`Handler`,
  the type of a handler; :func:`load_handler` (a dotted path) and :func:`as_handler` (a
  callable) check one and return it ready to call;
* :class:`RetryPolicy` (attempts, delays between them) and :class:`QueuePolicy` (how a
  queue's failures end) — the failure policy;
* :class:`Settlement` — a delivery and its :class:`Verdict` for the broker;
* :class:`DatabaseDown` — the database (not a handler) failed: nothing was settled.

Parts, one job each (import anything else from its module):

* :mod:`.engine` — ``Consumer``: wires the parts, runs the calling thread's loop;
* :mod:`.io` — ``ConsumerIO``: connect, declare, QoS, consume, heartbeats, reconnect;
  :mod:`.drive` — who reads deliveries and carries out verdicts; :mod:`.acks` —
  ``Settler``: ack / requeue / nack / the copy to a dead-letter or delay queue;
  :mod:`.watch` — the warning before the broker's ``consumer_timeout``;
* :mod:`.inbox` — ``Inbox``: the hand-over between the threads, batch collection;
* :mod:`.dispatch` — ``Dispatcher``: handler + receipt in one ``atomic()``, batches and
  the one-by-one redo; :mod:`.deferred` — writes a handler leaves for the end of its
  transaction (one statement per batch); :mod:`.budget` — handler time budgets;
* :mod:`.retry_policy` — the failure policy as pure code: attempt counting, requeue,
  delay or dead-letter (``Verdict``); :mod:`.failures` — ``Failures``: carries a
  failure's decision out (receipt, log, verdict);
* :mod:`.recorder` — ``ReceiptRecorder``: one receipt row shape for every path, signals;
  :mod:`.receipts` — the fast bulk insert of receipts;
* :mod:`.database` — ``DatabaseGuard``: is the database there, back off when it is not;
* :mod:`.registry` — ``Registry``: the registry thread;
* :mod:`.handlers` — ``Delivery`` and handler lookup; :mod:`.replay` — dead-letter
  queues and ``replaydlq``;
* :mod:`.fault_points` — named points where a test may make the consumer fail;
* :mod:`.verdicts`, :mod:`.stats` — the small records passed between them.
"""

from __future__ import annotations

from ..moved import moved_names
from .database import DatabaseDown
from .engine import Consumer
from .handlers import Delivery, Handler, as_handler, load_handler
from .retry_policy import QueuePolicy, RetryPolicy, Verdict
from .stats import ConsumerStats
from .verdicts import Settlement

__all__ = [
    "Consumer",
    "ConsumerStats",
    "DatabaseDown",
    "Delivery",
    "Handler",
    "QueuePolicy",
    "RetryPolicy",
    "Settlement",
    "Verdict",
    "as_handler",
    "load_handler",
]

#: Names this package exported before 0.2, each importable from its module now.
_MOVED = {
    "CONSUMER_TIMEOUT_WARN_AT": "watch",
    "DB_BACKOFF_MAX": "database",
    "ERROR_MAX_CHARS": "retry_policy",
    "MAX_DEFAULT_BATCH": "inbox",
    "Inbox": "inbox",
    "default_batch_size": "inbox",
    "policy_for": "engine",
}


__getattr__ = moved_names(__name__, {name: f".{home}" for name, home in _MOVED.items()})
