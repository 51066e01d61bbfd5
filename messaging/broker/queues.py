"""Queues on the broker: what a declaration sends, declaring, inspecting and purging
(one queue on a channel, or many at once over one connection), and the cache that
declares a queue once per connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pika.exceptions as pe
from django.core.exceptions import ValidationError
from pika.adapters.blocking_connection import BlockingChannel

from ..amqp.queue_types import derived_queue_arguments
from ..amqp.validators import first_message, validate_queue_name
from ..exceptions import BrokerError, BrokerUnavailable, MessageRefused
from .connecting import default_connection_name
from .errors import is_queue_down, translate, translating


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

    def ensure_exchange(self, owner: object, channel: Any, name: str) -> None:
        """Declare exchange ``name`` once per owner: from its ``Exchange`` row when there
        is one (drift raises :class:`ExchangeMismatch`), else passively — used as it is
        on the broker; a missing one raises :class:`NotFound`."""
        from .exchanges import declare_exchange, exchange_spec

        self.ensure(
            owner, ("exchange", name), lambda: declare_exchange(channel, exchange_spec(name))
        )


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
            if _missing(exc):
                return None
            raise
    return result.method.message_count, result.method.consumer_count


def _missing(exc: pe.ChannelClosedByBroker) -> bool:
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


# --------------------------------------------------------------------------- many queues


@dataclass
class DeclareResult:
    """What :func:`declare_queues` did: queues declared (with their ready counts), queues
    refused (drift or another broker error), and a connection error that stopped the run
    with the names it left undeclared."""

    declared: list[str] = field(default_factory=list)
    ready: dict[str, int] = field(default_factory=dict)
    failed: dict[str, BrokerError] = field(default_factory=dict)
    error: BrokerError | None = None
    not_declared: list[str] = field(default_factory=list)


def _publisher(urls: Iterable[str] | None, purpose: str) -> Any:
    # Looked up at call time: messaging.testing's capture() replaces the package's
    # PipelinedPublisher (and only there).
    from . import PipelinedPublisher

    return PipelinedPublisher(urls, connection_name=f"{default_connection_name()} {purpose}")


def declare_queues(queues: Iterable[Any], urls: Iterable[str] | None = None) -> DeclareResult:
    """Declare each queue exactly as its row says, over one connection (a drift's
    PRECONDITION_FAILED closes only its channel). A name :func:`validate_queue_name`
    refuses is never sent (failed with the reason); a declaration the broker does not
    answer within CONNECTION_TIMEOUT fails that queue only. Never raises a broker error."""
    result = DeclareResult()
    specs = []
    for spec in (QueueSpec.of(q) for q in queues):
        problem = queue_name_problem(spec.name)
        if problem is None:
            specs.append(spec)
        else:
            result.failed[spec.name] = MessageRefused(
                f"invalid queue name {spec.name!r}: {problem}"
            )
    if not specs:
        return result
    publisher = _publisher(urls, "declare")
    try:
        publisher.open()
        _declare_each(publisher, specs, result)
    except BrokerError as exc:  # could not connect at all
        result.error = exc
        result.not_declared = [s.name for s in specs]
    finally:
        publisher.close()
    return result


def _declare_each(publisher: Any, specs: list[QueueSpec], result: DeclareResult) -> None:
    for index, spec in enumerate(specs):
        try:
            result.ready[spec.name] = publisher.declare(spec)
        except BrokerUnavailable as exc:
            if publisher.is_open:  # only this declaration went unanswered
                result.failed[spec.name] = exc
                continue
            result.error = exc
            result.not_declared = [s.name for s in specs[index:]]
            return
        except BrokerError as exc:
            result.failed[spec.name] = exc
        else:
            result.declared.append(spec.name)


def inspect_queues(
    names: Iterable[str], urls: Iterable[str] | None = None
) -> list[tuple[int, int] | None | BrokerError]:
    """Per name: (ready messages, consumers), ``None`` (no such queue) or the
    :class:`BrokerError` for that name alone; asked all at once over one connection within
    CONNECTION_TIMEOUT (connecting included, plus 1 s at most). Raises a
    :class:`BrokerError` only when it cannot connect."""
    names = list(names)
    answers = _ask_each("queue_declare", [{"queue": n, "passive": True} for n in names], urls)
    return _states(names, answers)


def inspect_and_compare(
    names: Iterable[str], specs: Iterable[QueueSpec], urls: Iterable[str] | None = None
) -> tuple[list[tuple[int, int] | None | BrokerError], dict[str, BrokerError]]:
    """:func:`inspect_queues`, then, on the same connection, the declaration of each of
    ``specs`` that exists (exactly as its row says): a queue the broker has with other
    arguments refuses it (PRECONDITION_FAILED), which is its drift. A queue that matches
    is unchanged by that (declaring an existing queue as it is does nothing); a missing
    one is never declared. Returns the states and {name: QueueMismatch (or the error)}."""
    names = list(names)
    started = time.monotonic()
    with _publisher(urls, "admin") as publisher:
        left = publisher.rpc_timeout - (time.monotonic() - started)
        passive = [{"queue": n, "passive": True} for n in names]
        states = _states(names, publisher.call_each("queue_declare", passive, max(left, 1.0)))
        by_name = dict(zip(names, states, strict=True))
        existing = [s for s in specs if isinstance(by_name.get(s.name), tuple) and not s.passive]
        if not existing:
            return states, {}
        left = publisher.rpc_timeout - (time.monotonic() - started)
        calls = [
            {"queue": s.name, "durable": s.durable, "arguments": dict(s.arguments or {}) or None}
            for s in existing
        ]
        answers = publisher.call_each("queue_declare", calls, max(left, 1.0))
    drift = {
        spec.name: translate(answer, queue=spec.name)
        for spec, answer in zip(existing, answers, strict=True)
        if isinstance(answer, BaseException)
    }
    return states, drift


def _states(names: list[str], answers: list[Any]) -> list[tuple[int, int] | None | BrokerError]:
    states: list[tuple[int, int] | None | BrokerError] = []
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, pe.ChannelClosedByBroker) and _missing(answer):
            states.append(None)
        elif isinstance(answer, BaseException):
            states.append(translate(answer, queue=name))
        else:
            states.append((answer.method.message_count, answer.method.consumer_count))
    return states


def queues_down(publisher: Any, names: Iterable[str]) -> dict[str, BrokerError]:
    """Of ``names`` — queues a message sent straight to just came back from unroutable —
    the ones that exist but cannot take messages now (a classic queue whose home node is
    down answers a publish with basic.return, a passive declare with 404 "home node ...
    is down or inaccessible"): name -> that temporary error. Asked at once over
    ``publisher``'s connection; when asking fails (the connection is gone) every name
    counts as down, so an outage never fails a message."""
    names = list(dict.fromkeys(names))
    if not names:
        return {}
    try:
        answers = publisher.call_each(
            "queue_declare", [{"queue": n, "passive": True} for n in names]
        )
    except BrokerError as exc:
        unavailable = exc if exc.temporary else BrokerUnavailable(str(exc))
        return dict.fromkeys(names, unavailable)
    down: dict[str, BrokerError] = {}
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, BaseException):
            error = translate(answer, queue=name)
            if error.temporary:
                down[name] = error
    return down


def purge_queues(
    names: Iterable[str], urls: Iterable[str] | None = None
) -> list[int | BrokerError]:
    """Per name: how many ready messages were dropped, or the :class:`BrokerError`
    (:class:`NotFound` for a missing queue), as :func:`inspect_queues` asks."""
    names = list(names)
    answers = _ask_each("queue_purge", [{"queue": n} for n in names], urls)
    return [
        translate(answer, queue=name)
        if isinstance(answer, BaseException)
        else answer.method.message_count
        for name, answer in zip(names, answers, strict=True)
    ]


def _ask_each(method: str, calls: list[dict[str, Any]], urls: Iterable[str] | None) -> list[Any]:
    if not calls:
        return []
    started = time.monotonic()
    with _publisher(urls, "admin") as publisher:
        left = publisher.rpc_timeout - (time.monotonic() - started)
        return publisher.call_each(method, calls, max(left, 1.0))
