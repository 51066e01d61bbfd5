"""One queue on a channel: what a declaration sends (:class:`QueueSpec`), declaring,
inspecting and purging it, and the cache that declares a name once per connection
(:class:`DeclarationCache`). Many queues at once over one connection: :mod:`.queues`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pika.exceptions as pe
from django.core.exceptions import ValidationError
from pika.adapters.blocking_connection import BlockingChannel

from ..amqp.queue_types import derived_queue_arguments
from ..amqp.validators import first_message, validate_queue_name
from ..exceptions import BrokerError
from .errors import is_queue_down, translating


@dataclass(frozen=True)
class QueueSpec:
    """What a queue declaration sends; built from a ``Queue`` row or a bare name."""

    name: str
    durable: bool = True
    arguments: Mapping[str, Any] | None = None
    #: Only check that the queue exists (for queues the app does not own).
    passive: bool = False
    #: ``<name>.dlq`` when the app manages this queue's dead-letter queue (declared first,
    #: with the ``messaging.dlx`` exchange and its binding).
    dead_letter_queue: str | None = None
    #: ``(exchange, routing_key)`` pairs: a fresh exclusive, server-named queue bound to
    #: each is consumed instead (``runconsumer --bind``; ``name`` is then ``""``).
    bindings: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, queue: Any) -> QueueSpec:
        if isinstance(queue, QueueSpec):
            return queue
        if isinstance(queue, str):
            return cls(name=queue)
        return cls(
            name=queue.name,
            durable=queue.durable,
            arguments=queue.declare_arguments(),
            dead_letter_queue=queue.dead_letter_queue,
        )


@dataclass
class DeclareResult:
    """What declaring many over one connection did (:func:`~.queues.declare_queues`, the
    exchanges and bindings of :mod:`.exchanges`): names declared (queues with their ready
    counts), names refused (drift or another broker error), and a connection error that
    stopped the run with the names it left undeclared."""

    declared: list[str] = field(default_factory=list)
    ready: dict[str, int] = field(default_factory=dict)
    failed: dict[str, BrokerError] = field(default_factory=dict)
    error: BrokerError | None = None
    not_declared: list[str] = field(default_factory=list)


class DeclarationCache:
    """Names already declared (or checked) on one connection or channel — its *owner* —
    so repeated publishes do not ask the broker again. A new owner (a reconnect, a
    reopened channel) starts with none. With a ``signature`` (what was declared: a
    :class:`QueueSpec`), a name declared differently since (its row changed) is
    declared again; :meth:`forget` drops a name (the queue was deleted behind our back)."""

    def __init__(self) -> None:
        self._owner: object = None
        self._names: dict[str | tuple[str, str], object] = {}

    def ensure(
        self,
        owner: object,
        name: str | tuple[str, str],
        declare: Callable[[], object],
        signature: object = None,
    ) -> None:
        """Call ``declare()`` unless ``name`` was declared on ``owner`` already (with the
        same ``signature``)."""
        if owner is not self._owner:
            self._owner, self._names = owner, {}
        if name not in self._names or self._names[name] != signature:
            declare()
            self._names[name] = signature

    def __contains__(self, name: str) -> bool:
        return name in self._names

    def forget(self, name: str) -> None:
        self._names.pop(name, None)


# --------------------------------------------------------------------------- one queue


def declare_dead_letter_queue(
    channel: BlockingChannel, queue: str, dlq: str, *, source: Any = None
) -> int:
    """Declare the ``messaging.dlx`` direct exchange, the durable ``dlq`` and the binding
    that routes ``queue``'s dead letters (routing key ``queue``) into it; returns the
    DLQ's ready count.

    A ``dlq`` that does not exist yet is declared with the type
    :func:`~messaging.amqp.queue_types.derived_queue_type` gives for ``source`` (the queue's
    row or :class:`QueueSpec`; quorum for a quorum queue by default). One that exists is
    kept as it is, whatever its type (an older classic DLQ keeps working: declaring it
    again with another ``x-queue-type`` would be refused). A DLQ whose node is down
    raises :class:`~messaging.exceptions.QueueUnavailable` (temporary)."""
    from ..models import DEAD_LETTER_EXCHANGE

    with translating(queue=dlq):
        channel.exchange_declare(
            exchange=DEAD_LETTER_EXCHANGE, exchange_type="direct", durable=True
        )
        with _scratch_channel(channel) as scratch:
            state = inspect_queue(scratch, dlq)
        if state is None:
            arguments = derived_queue_arguments(source)
            result = channel.queue_declare(queue=dlq, durable=True, arguments=arguments or None)
            ready = result.method.message_count
        else:
            ready = state[0]
        channel.queue_bind(queue=dlq, exchange=DEAD_LETTER_EXCHANGE, routing_key=queue)
    return ready


@contextmanager
def _scratch_channel(channel: Any) -> Iterator[Any]:
    """A channel a passive declare may get closed: a new one on a blocking channel's
    connection (closed afterwards), else ``channel`` itself when it reopens on its own
    (a publisher's RPC channel)."""
    if not isinstance(channel, BlockingChannel):
        yield channel
        return
    scratch = channel.connection.channel()
    try:
        yield scratch
    finally:
        if scratch.is_open:
            scratch.close()


def declare_queue(channel: BlockingChannel, queue: Any) -> int:
    """Declare ``queue`` exactly as its row says; returns the ready-message count.

    A queue that exists with other arguments raises :class:`QueueMismatch` naming the
    argument that differs. The channel is closed by the broker in that case.
    """
    spec = QueueSpec.of(queue)
    if spec.dead_letter_queue and not spec.passive:
        declare_dead_letter_queue(channel, spec.name, spec.dead_letter_queue, source=spec)
    with translating(queue=spec.name):
        if spec.passive:
            result = channel.queue_declare(queue=spec.name, passive=True)
        else:
            result = channel.queue_declare(
                queue=spec.name, durable=spec.durable, arguments=dict(spec.arguments or {}) or None
            )
    return result.method.message_count


def inspect_queue(channel: BlockingChannel, name: str) -> tuple[int, int] | None:
    """(ready messages, consumers) for an existing queue, ``None`` if it does not exist.

    Uses a passive declare, which closes the channel when the queue is missing: pass a
    channel you can throw away. A queue whose node is down is not "missing": that
    raises :class:`~messaging.exceptions.QueueUnavailable`.
    """
    with translating(queue=name):
        try:
            result = channel.queue_declare(queue=name, passive=True)
        except pe.ChannelClosedByBroker as exc:
            if is_missing_queue(exc):
                return None
            raise
    return result.method.message_count, result.method.consumer_count


def is_missing_queue(exc: pe.ChannelClosedByBroker) -> bool:
    """A NOT_FOUND that means "no such queue" (not "its node is down")."""
    return exc.reply_code == 404 and not is_queue_down(exc.reply_text)


def purge_queue(channel: BlockingChannel, name: str) -> int:
    """Drop every ready message of queue ``name``; returns how many were dropped.

    Unacked messages (held by consumers) are not touched. A missing queue raises
    :class:`NotFound` (the broker closes the channel).
    """
    with translating(queue=name):
        result = channel.queue_purge(queue=name)
    return result.method.message_count


def queue_name_problem(name: str) -> str | None:
    """Why :func:`validate_queue_name` refuses ``name`` (one line), or ``None``."""
    try:
        validate_queue_name(name)
    except ValidationError as exc:
        return first_message(exc)
    return None
