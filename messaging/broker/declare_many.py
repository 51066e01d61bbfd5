"""Many declarations over one connection, and checking without declaring: exchanges
and bindings as their rows say (``declarequeues``, the admin's actions), and the live
state of exchanges and queues (``declarequeues --check``, the admin's lists). A refusal
closes only its own channel.

Checking cannot read an exchange's type or flags over AMQP; it asks in two steps: a
passive declare says whether it exists, then — only for one that exists — the row's own
declaration, which the broker answers without changing anything when they match and
refuses with PRECONDITION_FAILED (drift) when they do not. Bindings cannot be read over
AMQP at all: checking one means checking that both of its ends exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pika.exceptions as pe
from django.core.exceptions import ValidationError

from ..amqp.declarations import BindingSpec, ExchangeSpec
from ..amqp.exchange_rules import validate_declared_exchange_name
from ..amqp.short_strings import first_message
from ..exceptions import BrokerError, BrokerUnavailable, MessageRefused
from .channel_calls import SyncChannel
from .errors import translate
from .exchanges import declare_binding, declare_exchange
from .publisher import publisher_for
from .queue_ops import DeclareResult, QueueSpec

#: What :func:`check_exchanges` says of an exchange that exists as its row says.
MATCHES = "matches"


def declare_many(
    items: Sequence[Any],
    declare: Callable[[Any, Any], Any],
    label: Callable[[Any], str],
    urls: Iterable[str] | None = None,
) -> Any:
    """``declare(channel, item)`` for each item over one connection (a refusal closes
    only its channel); a :class:`~messaging.broker.DeclareResult` keyed by ``label``."""
    result = DeclareResult()
    if not items:
        return result
    publisher = publisher_for(urls, "declare")
    try:
        publisher.open()
        channel = SyncChannel(publisher)
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
    with publisher_for(urls, "check") as publisher:
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
    specs = [QueueSpec.of(q) for q in queues]
    if not specs:
        return []
    with publisher_for(urls, "check") as publisher:
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
