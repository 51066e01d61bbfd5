"""Queues on the broker, many at once over one connection: declaring them as their rows
say (:func:`declare_queues`), inspecting (:func:`inspect_queues`, with their drift:
:func:`inspect_and_compare`), purging, and telling which queues are down
(:func:`queues_down`). One queue on a channel — :class:`QueueSpec`, :func:`declare_queue`,
:func:`inspect_queue`, the :class:`DeclarationCache` — is :mod:`.queue_ops`, importable
from here as well.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import pika.exceptions as pe

from ..exceptions import BrokerError, BrokerUnavailable, MessageRefused
from .errors import translate
from .publisher import publisher_for
from .queue_ops import (
    DeclarationCache,
    DeclareResult,
    QueueSpec,
    declare_dead_letter_queue,
    declare_queue,
    inspect_queue,
    is_missing_queue,
    purge_queue,
    queue_name_problem,
)

__all__ = [
    "DeclarationCache",
    "DeclareResult",
    "QueueSpec",
    "declare_dead_letter_queue",
    "declare_queue",
    "declare_queues",
    "inspect_and_compare",
    "inspect_queue",
    "inspect_queues",
    "purge_queue",
    "purge_queues",
    "queue_name_problem",
    "queues_down",
]


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
    publisher = publisher_for(urls, "declare")
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
    with publisher_for(urls, "admin") as publisher:
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
        if isinstance(answer, pe.ChannelClosedByBroker) and is_missing_queue(answer):
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
    with publisher_for(urls, "admin") as publisher:
        left = publisher.rpc_timeout - (time.monotonic() - started)
        return publisher.call_each(method, calls, max(left, 1.0))
