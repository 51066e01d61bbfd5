"""Exchanges and bindings on the broker: what a declaration sends (from an ``Exchange`` /
``Binding`` row, or an exchange the app only uses), declaring one on a channel, many at
once over one connection (``declarequeues``), and checking without declaring
(``declarequeues --check``, the admin's live state).

Checking cannot read an exchange's type or flags over AMQP; it asks in two steps: a
passive declare says whether it exists, then — only for one that exists — the row's own
declaration, which the broker answers without changing anything when they match and
refuses with PRECONDITION_FAILED (drift) when they do not. Bindings cannot be read over
AMQP at all: checking one means checking that both of its ends exist.

:class:`ExchangeSpec` and :class:`BindingSpec` — what a declaration sends — are pure
values, defined in :mod:`messaging.amqp.declarations` (the routing of the admin's
topology page uses the same binding type) and importable from here as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pika.exceptions as pe
from django.core.exceptions import ValidationError

from ..amqp.declarations import BindingSpec, ExchangeSpec
from ..amqp.short_strings import first_message
from ..exceptions import BrokerError, BrokerUnavailable, MessageRefused
from .errors import translate, translating

#: What :func:`check_exchanges` says of an exchange that exists as its row says.
MATCHES = "matches"


# --------------------------------------------------------------------------- rows


def exchange_spec(name: str) -> ExchangeSpec:
    """The spec of exchange ``name``: from its ``Exchange`` row, or passive without one."""
    from ..models import Exchange

    row = Exchange.objects.filter(name=name).first()
    return ExchangeSpec.of(row if row is not None else name)


def bindings_of_queues(names: Iterable[str]) -> list[BindingSpec]:
    """The bindings (rows) that bring messages to the queues ``names``: theirs, and the
    exchange-to-exchange bindings into their sources (followed upstream, each once);
    upstream first, so each exchange is bound into before it is used."""
    from ..models import Binding

    related = ("source", "queue", "destination_exchange")
    rows = list(Binding.objects.filter(queue__name__in=list(names)).select_related(*related))
    seen = {row.pk for row in rows}
    sources = {row.source_id for row in rows}
    while sources:
        upstream = [
            row
            for row in Binding.objects.filter(destination_exchange__in=sources).select_related(
                *related
            )
            if row.pk not in seen
        ]
        seen.update(row.pk for row in upstream)
        sources = {row.source_id for row in upstream}
        rows = upstream + rows
    return [BindingSpec.of(row) for row in rows]


# --------------------------------------------------------------------------- one channel


def declare_exchange(channel: Any, exchange: Any) -> None:
    """Declare ``exchange`` as its row (or spec) says; passive for a bare name. One that
    exists with another type or flags raises :class:`ExchangeMismatch`; a missing one
    (passive) :class:`NotFound`. The broker closes the channel in both cases."""
    spec = ExchangeSpec.of(exchange)
    with translating():
        channel.exchange_declare(**spec.declare_kwargs())


def declare_binding(channel: Any, binding: Any) -> None:
    """Create one binding (idempotent on the broker); both ends must exist."""
    method, kwargs = BindingSpec.of(binding).bind_call()
    with translating():
        getattr(channel, method)(**kwargs)


def declare_bindings(channel: Any, bindings: Sequence[BindingSpec]) -> None:
    """Declare the exchanges of ``bindings`` (each once, from their rows), then bind.
    ``runconsumer`` calls this on every new connection, after declaring its queues."""
    seen: set[str] = set()
    for spec in bindings:
        for exchange in (spec.source, spec.destination):
            if exchange is not None and exchange.name not in seen:
                seen.add(exchange.name)
                declare_exchange(channel, exchange)
    for spec in bindings:
        declare_binding(channel, spec)


# --------------------------------------------------------------------------- many


def _publisher(urls: Iterable[str] | None, purpose: str) -> Any:
    from .publisher import publisher_for as make

    return make(urls, purpose)


def declare_many(
    items: Sequence[Any],
    declare: Callable[[Any, Any], Any],
    label: Callable[[Any], str],
    urls: Iterable[str] | None = None,
) -> Any:
    """``declare(channel, item)`` for each item over one connection (a refusal closes
    only its channel); a :class:`~messaging.broker.DeclareResult` keyed by ``label``."""
    from .channel_calls import SyncChannel as _SyncChannel
    from .queue_ops import DeclareResult

    result = DeclareResult()
    if not items:
        return result
    publisher = _publisher(urls, "declare")
    try:
        publisher.open()
        channel = _SyncChannel(publisher)
        for index, item in enumerate(items):
            try:
                declare(channel, item)
            except BrokerUnavailable as exc:
                if publisher.is_open:  # only this declaration went unanswered
                    result.failed[label(item)] = exc
                    continue
                result.error = exc
                result.not_declared = [label(i) for i in items[index:]]
                return result
            except BrokerError as exc:
                result.failed[label(item)] = exc
            else:
                result.declared.append(label(item))
    except BrokerError as exc:  # could not connect at all
        result.error = exc
        result.not_declared = [label(i) for i in items]
    finally:
        publisher.close()
    return result


def declare_exchanges(exchanges: Iterable[Any], urls: Iterable[str] | None = None) -> Any:
    """Declare each exchange as its row says (a :class:`DeclareResult` keyed by name); a
    row whose name the validators refuse is failed with the reason, never sent."""
    from ..amqp.exchange_rules import validate_declared_exchange_name

    specs, refused = [], {}
    for spec in (ExchangeSpec.of(e) for e in exchanges):
        try:
            validate_declared_exchange_name(spec.name)
        except ValidationError as exc:
            refused[spec.name] = MessageRefused(
                f"invalid exchange {spec.name!r}: {first_message(exc)}"
            )
        else:
            specs.append(spec)
    result = declare_many(specs, declare_exchange, lambda s: s.name, urls)
    result.failed.update(refused)
    return result


def declare_binding_rows(bindings: Iterable[Any], urls: Iterable[str] | None = None) -> Any:
    """Create each binding (a :class:`DeclareResult` keyed by :attr:`BindingSpec.label`)."""
    specs = [BindingSpec.of(b) for b in bindings]
    return declare_many(specs, declare_binding, lambda s: s.label, urls)


# --------------------------------------------------------------------------- checking


def check_exchanges(
    exchanges: Iterable[Any], urls: Iterable[str] | None = None
) -> list[str | None | BrokerError]:
    """Per exchange, without creating any: :data:`MATCHES`, ``None`` (not on the
    broker) or the :class:`BrokerError` (:class:`ExchangeMismatch` for drift). Raises a
    :class:`BrokerError` only when it cannot connect."""
    specs = [ExchangeSpec.of(e) for e in exchanges]
    if not specs:
        return []
    with _publisher(urls, "check") as publisher:
        passive = [{"exchange": s.name, "passive": True} for s in specs]
        answers = publisher.call_each("exchange_declare", passive)
        states: list[str | None | BrokerError] = [_state(a) for a in answers]
        existing = [i for i, state in enumerate(states) if state == MATCHES]
        active = [specs[i].declare_kwargs() for i in existing if not specs[i].passive]
        compare = [i for i in existing if not specs[i].passive]
        if active:
            for index, answer in zip(
                compare, publisher.call_each("exchange_declare", active), strict=True
            ):
                states[index] = _state(answer)
    return states


def check_queues(queues: Iterable[Any], urls: Iterable[str] | None = None) -> list[Any]:
    """Per queue (rows or :class:`QueueSpec`), as :func:`check_exchanges`: ``(ready,
    consumers)`` when it exists as its row says, ``None`` when missing, else the error
    (:class:`QueueMismatch` for drift)."""
    from .queue_ops import QueueSpec

    specs = [QueueSpec.of(q) for q in queues]
    if not specs:
        return []
    with _publisher(urls, "check") as publisher:
        passive = [{"queue": s.name, "passive": True} for s in specs]
        answers = publisher.call_each("queue_declare", passive)
        states: list[Any] = [_queue_state(a, s.name) for a, s in zip(answers, specs, strict=True)]
        compare = [i for i, st in enumerate(states) if isinstance(st, tuple)]
        calls = [
            {
                "queue": specs[i].name,
                "durable": specs[i].durable,
                "arguments": dict(specs[i].arguments or {}) or None,
            }
            for i in compare
        ]
        if calls:
            for index, answer in zip(
                compare, publisher.call_each("queue_declare", calls), strict=True
            ):
                state = _queue_state(answer, specs[index].name)
                if not isinstance(state, tuple):
                    states[index] = state
    return states


def _state(answer: Any) -> str | None | BrokerError:
    if isinstance(answer, pe.ChannelClosedByBroker) and answer.reply_code == 404:
        return None
    if isinstance(answer, BaseException):
        return translate(answer)
    return MATCHES


def _queue_state(answer: Any, name: str) -> Any:
    if isinstance(answer, pe.ChannelClosedByBroker) and answer.reply_code == 404:
        return None
    if isinstance(answer, BaseException):
        return translate(answer, queue=name)
    return answer.method.message_count, answer.method.consumer_count
