"""Handlers: what runconsumer calls for each delivery, and how one is looked up."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pika
from django.utils.module_loading import import_string

from . import conf
from .exceptions import HandlerImportError, Reject


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as a handler sees it."""

    queue: str
    body: bytes
    properties: pika.BasicProperties
    delivery_tag: int
    redelivered: bool
    exchange: str = ""
    routing_key: str = ""
    consumer_tag: str = ""
    method: Any = field(default=None, repr=False, compare=False)
    received_at: datetime | None = field(default=None, compare=False)
    generation: int = field(default=0, repr=False, compare=False)

    @property
    def message_id(self) -> str:
        """The AMQP ``message_id`` property, ``""`` when the producer set none."""
        return self.properties.message_id or ""

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.properties.headers or {})

    @property
    def content_type(self) -> str:
        return self.properties.content_type or ""

    def text(self, encoding: str = "utf-8") -> str:
        return self.body.decode(encoding)


Handler = Callable[[Delivery], Any]


def print_delivery(delivery: Delivery) -> None:
    """The default handler: prints the body like the RabbitMQ tutorial's receiver."""
    print(f" [x] Received {delivery.body!r}", flush=True)


def discard(delivery: Delivery) -> None:
    """A handler that does nothing (the receipt is still written)."""


DEFAULT_HANDLER = "messaging.handlers.print_delivery"


class ChannelProxy:
    """What a tutorial-style ``callback(ch, method, properties, body)`` gets as ``ch``.

    The consumer owns the real channel (and acks only after the receipt is committed),
    so the callback's ``basic_ack``/``basic_nack``/``basic_reject`` are recorded as its
    decision and carried out once, after the commit.
    """

    def __init__(self) -> None:
        self.decision: Reject | None = None
        self.acked = False

    def basic_ack(self, delivery_tag: int = 0, multiple: bool = False) -> None:
        self.acked = True

    def basic_nack(self, delivery_tag: int = 0, multiple: bool = False, requeue: bool = True):
        self.decision = Reject("handler called basic_nack", requeue=requeue)

    def basic_reject(self, delivery_tag: int = 0, requeue: bool = True) -> None:
        self.decision = Reject("handler called basic_reject", requeue=requeue)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"runconsumer owns the channel: ch.{name} is not available to a handler "
            "(basic_ack, basic_nack and basic_reject are); publish with messaging.publish()"
        )


def pika_style(callback: Callable[..., Any]) -> Handler:
    """Adapt a four-argument pika callback to a ``Delivery`` handler."""

    def handler(delivery: Delivery) -> None:
        ch = ChannelProxy()
        callback(ch, delivery.method, delivery.properties, delivery.body)
        if ch.decision is not None:
            raise ch.decision

    handler.__name__ = getattr(callback, "__name__", "pika_callback")
    handler.__qualname__ = getattr(callback, "__qualname__", handler.__name__)
    handler.wrapped = callback  # type: ignore[attr-defined]
    return handler


def _is_pika_style(func: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return len(positional) == 4


def as_handler(func: Callable[..., Any]) -> Handler:
    """Accept a ``Delivery`` handler or a four-argument pika callback."""
    if not callable(func):
        raise HandlerImportError(f"handler {func!r} is not callable")
    return pika_style(func) if _is_pika_style(func) else func


def load_handler(path: str) -> Handler:
    """Import a handler by dotted path; a clear one-line error if it does not import."""
    try:
        func = import_string(path)
    except ImportError as exc:
        raise HandlerImportError(f"handler {path!r} does not import: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - the module itself crashed on import
        raise HandlerImportError(
            f"handler {path!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(func):
        raise HandlerImportError(f"handler {path!r} is not callable")
    return as_handler(func)


def handler_path_for(queue: str, override: str | None = None) -> str:
    """``--handler`` if given, else ``MESSAGING["CONSUMERS"][queue]``, else the default."""
    if override:
        return override
    return conf.get("CONSUMERS").get(queue, DEFAULT_HANDLER)
