"""What declaring an exchange or a binding sends, as pure values: :class:`ExchangeSpec`
and :class:`BindingSpec`, built from ``Exchange`` / ``Binding`` rows (or by hand).

One binding type serves the broker's declarations (:mod:`messaging.broker.exchanges`)
and the routing computed from the rows (:mod:`.routing`, the admin's topology drawing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ExchangeSpec:
    """What an exchange declaration sends; ``passive`` for an exchange without a row
    (used as it is on the broker: only checked to exist)."""

    name: str
    exchange_type: str = "direct"
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False
    arguments: Mapping[str, Any] | None = None
    passive: bool = False

    @classmethod
    def of(cls, exchange: Any) -> ExchangeSpec:
        """The spec of an ``Exchange`` row; a bare name is a passive spec."""
        if isinstance(exchange, ExchangeSpec):
            return exchange
        if isinstance(exchange, str):
            return cls(name=exchange, passive=True)
        return cls(
            name=exchange.name,
            exchange_type=exchange.exchange_type,
            durable=exchange.durable,
            auto_delete=exchange.auto_delete,
            internal=exchange.internal,
            arguments=dict(exchange.arguments or {}) or None,
        )

    def declare_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``channel.exchange_declare`` for this spec."""
        if self.passive:
            return {"exchange": self.name, "passive": True}
        return {
            "exchange": self.name,
            "exchange_type": self.exchange_type,
            "durable": self.durable,
            "auto_delete": self.auto_delete,
            "internal": self.internal,
            "arguments": dict(self.arguments or {}) or None,
        }


@dataclass(frozen=True)
class BindingSpec:
    """A binding: ``source`` exchange → ``queue`` or → ``destination`` exchange, with its
    routing key and arguments; ``id`` is its row's primary key (``None`` without a row).

    ``source`` and ``destination`` may be given as names: an exchange without a row,
    passive (:meth:`ExchangeSpec.of`)."""

    source: ExchangeSpec
    routing_key: str = ""
    queue: str | None = None
    destination: ExchangeSpec | None = None
    arguments: Mapping[str, Any] | None = None
    id: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", ExchangeSpec.of(self.source))
        if self.destination is not None:
            object.__setattr__(self, "destination", ExchangeSpec.of(self.destination))

    @classmethod
    def of(cls, binding: Any) -> BindingSpec:
        """The spec of a ``Binding`` row (its source, queue and destination exchange
        selected, or loaded on access)."""
        if isinstance(binding, BindingSpec):
            return binding
        return cls(
            source=ExchangeSpec.of(binding.source),
            routing_key=binding.routing_key or "",
            queue=binding.queue.name if binding.queue_id is not None else None,
            destination=(
                ExchangeSpec.of(binding.destination_exchange)
                if binding.destination_exchange_id is not None
                else None
            ),
            arguments=dict(binding.arguments or {}) or None,
            id=binding.pk,
        )

    @property
    def label(self) -> str:
        """``orders → q [order.*]`` (``exchange x`` for an exchange destination)."""
        target = self.queue if self.queue is not None else f"exchange {self.destination_name}"
        key = f" [{self.routing_key}]" if self.routing_key else ""
        args = f" {dict(self.arguments)}" if self.arguments else ""
        return f"{self.source.name} → {target}{key}{args}"

    @property
    def destination_name(self) -> str:
        """The queue's name, or the destination exchange's."""
        return self.queue if self.queue is not None else self.destination.name  # type: ignore[union-attr]

    def bind_call(self) -> tuple[str, dict[str, Any]]:
        """(channel method, keyword arguments) that create this binding."""
        args = dict(self.arguments or {}) or None
        if self.queue is not None:
            kwargs = {"queue": self.queue, "exchange": self.source.name}
            return "queue_bind", {**kwargs, "routing_key": self.routing_key, "arguments": args}
        assert self.destination is not None
        return "exchange_bind", {
            "destination": self.destination.name,
            "source": self.source.name,
            "routing_key": self.routing_key,
            "arguments": args,
        }
