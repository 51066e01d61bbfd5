"""Exchanges and bindings on one channel: what a declaration sends (from an ``Exchange`` /
``Binding`` row, or an exchange the app only uses) and declaring it. Many at once over
one connection, and checking without declaring, is :mod:`.declare_many`.

:class:`ExchangeSpec` and :class:`BindingSpec` — what a declaration sends — are pure
values, defined in :mod:`messaging.amqp.declarations` (the routing of the admin's
topology page uses the same binding type) and importable from here as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..amqp.declarations import BindingSpec, ExchangeSpec
from .errors import translating

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
