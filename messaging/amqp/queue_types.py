"""Which queue type a queue gets: the default for rows the app creates itself
(``MESSAGING["DEFAULT_QUEUE_TYPE"]``) and the type of a queue *derived* from another —
its ``<queue>.dlq`` and any delay queue — (``MESSAGING["DEAD_LETTER_QUEUE_TYPE"]``:
``"same"`` as the source queue by default, or always ``"classic"`` / ``"quorum"``).

On a cluster a classic queue lives on one node; a quorum queue is replicated, so a
quorum queue's dead letters (and delayed retries) must be quorum too to survive the
loss of a node. Pure functions of the settings: unit-tested in tests/amqp/.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import conf

CLASSIC = "classic"
QUORUM = "quorum"
#: The types a row's ``queue_type`` can take (``Queue.QueueType``).
QUEUE_TYPES = (CLASSIC, QUORUM)


def default_queue_type() -> str:
    """``MESSAGING["DEFAULT_QUEUE_TYPE"]``: the type of a ``Queue`` row that ``send`` or
    ``publish()`` creates for a new queue name."""
    return conf.get("DEFAULT_QUEUE_TYPE")


def queue_type_of(queue: Any) -> str:
    """The type of ``queue``: a type name, a ``Queue`` row (``queue_type``), or a
    :class:`~messaging.broker.QueueSpec` / anything with declare ``arguments``
    (``x-queue-type``, classic when absent). ``None`` (unknown: a queue the app does not
    own) is the :func:`default_queue_type`."""
    if queue is None:
        return default_queue_type()
    if isinstance(queue, str):
        return queue
    row_type = getattr(queue, "queue_type", None)
    if isinstance(row_type, str) and row_type:
        return row_type
    arguments = getattr(queue, "arguments", None)
    if isinstance(arguments, Mapping):
        return str(arguments.get("x-queue-type") or CLASSIC)
    return CLASSIC


def derived_queue_type(queue: Any) -> str:
    """The type of a queue derived from ``queue`` (its ``<queue>.dlq``, a delay queue):
    ``queue``'s own type under ``DEAD_LETTER_QUEUE_TYPE = "same"`` (the default), else
    the type that setting names. ``queue`` is what :func:`queue_type_of` takes.

    The one place other code asks; e.g. delay queues of a quorum queue are quorum."""
    choice = conf.get("DEAD_LETTER_QUEUE_TYPE")
    if choice == "same":
        source = queue_type_of(queue)
        return source if source in QUEUE_TYPES else CLASSIC
    return choice


def type_arguments(queue_type: str) -> dict[str, Any]:
    """The ``x-queue-type`` argument a declaration of that type sends (none for classic,
    so classic declarations stay what plain pika scripts send)."""
    return {} if queue_type == CLASSIC else {"x-queue-type": queue_type}


def derived_queue_arguments(queue: Any) -> dict[str, Any]:
    """:func:`type_arguments` of :func:`derived_queue_type` — what to declare a queue
    derived from ``queue`` with (``durable=True`` always: quorum queues must be)."""
    return type_arguments(derived_queue_type(queue))


def on_cluster() -> bool:
    """True when ``BROKER_URL`` lists several URLs (the nodes of a cluster)."""
    return len(conf.broker_urls()) > 1


def classic_on_cluster(queues: Any) -> list[str]:
    """Names of the classic ``queues`` (rows or specs) when the broker is a cluster:
    each lives on one node, and is unavailable while that node is down."""
    if not on_cluster():
        return []
    return [q.name for q in queues if queue_type_of(q) == CLASSIC]


#: What the admin and ``declarequeues`` say about a classic queue on a cluster.
CLASSIC_ON_CLUSTER = (
    "classic queue on a cluster: it lives on one node and is unavailable while that node "
    "is down (nothing is lost, consumers wait); make it quorum to survive a node loss"
)
