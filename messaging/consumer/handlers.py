"""Handlers: what runconsumer calls for each delivery, and how one is looked up."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pika
from asgiref.sync import async_to_sync
from django.utils.module_loading import import_string

from .. import conf
from ..amqp.schemas import decode_json
from ..exceptions import HandlerImportError, Reject
from ..rpc.replies import CallbackPublishes, Outbound


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

    @property
    def correlation_id(self) -> str:
        return self.properties.correlation_id or ""

    @property
    def reply_to(self) -> str:
        """Where the producer wants the reply; a handler's return value goes there."""
        return self.properties.reply_to or ""

    @property
    def priority(self) -> int | None:
        return self.properties.priority

    @property
    def expiration(self) -> int | None:
        """The per-message TTL in milliseconds, ``None`` when not set."""
        value = self.properties.expiration
        return int(value) if value not in (None, "") else None

    @property
    def type(self) -> str:
        return self.properties.type or ""

    @property
    def app_id(self) -> str:
        return self.properties.app_id or ""

    @property
    def timestamp(self) -> datetime | None:
        """The AMQP timestamp (when the producer sent it, whole seconds, UTC)."""
        value = self.properties.timestamp
        if value is None:
            return None
        return datetime.fromtimestamp(value, tz=UTC)

    @property
    def stream_offset(self) -> int | None:
        """The ``x-stream-offset`` of a delivery from a stream, else ``None``."""
        value = (self.properties.headers or {}).get("x-stream-offset")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def text(self, encoding: str = "utf-8") -> str:
        return self.body.decode(encoding)

    def json(self) -> Any:
        """The body parsed as JSON; ``ValueError`` with one line when it is not JSON
        (raised from a handler, that is a failed attempt like any other exception)."""
        return decode_json(self.body)


Handler = Callable[[Delivery], Any]


#: Bytes of a body the default handler prints; a longer body is cut and its size shown.
PREVIEW_BYTES = 256


def preview(body: bytes, limit: int = PREVIEW_BYTES) -> str:
    """``repr(body)``, or for a body over ``limit`` bytes the repr of its first ``limit``
    bytes followed by `` … (N bytes)``."""
    if len(body) <= limit:
        return repr(body)
    return f"{body[:limit]!r} … ({len(body)} bytes)"


def print_delivery(delivery: Delivery) -> None:
    """The default handler: prints the body like the RabbitMQ tutorial's receiver (a
    body over :data:`PREVIEW_BYTES` is cut, with its size)."""
    print(f" [x] Received {preview(delivery.body)}", flush=True)


def discard(delivery: Delivery) -> None:
    """A handler that does nothing (the receipt is still written)."""


DEFAULT_HANDLER = "messaging.consumer.handlers.print_delivery"


class ChannelProxy:
    """What a tutorial-style ``callback(ch, method, properties, body)`` gets as ``ch``.

    The consumer owns the real channel (and acks only after the receipt is committed),
    so the callback's ``basic_ack``/``basic_nack``/``basic_reject`` are recorded as its
    decision and carried out once, after the commit.
    """

    def __init__(self) -> None:
        self.decision: Reject | None = None
        self.acked = False
        self.published = CallbackPublishes()

    def basic_publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes | str,
        properties: pika.BasicProperties | None = None,
        mandatory: bool = False,
    ) -> None:
        """Recorded, and published after the receipt commits and before the ack (the
        RPC tutorial's server replies this way)."""
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        content_type = (properties.content_type if properties is not None else None) or ""
        correlation = properties.correlation_id if properties is not None else None
        self.published.append(
            Outbound(exchange, routing_key, data, correlation, content_type, properties)
        )

    def basic_ack(self, delivery_tag: int = 0, multiple: bool = False) -> None:
        self.acked = True

    def basic_nack(self, delivery_tag: int = 0, multiple: bool = False, requeue: bool = True):
        self.decision = Reject("handler called basic_nack", requeue=requeue)

    def basic_reject(self, delivery_tag: int = 0, requeue: bool = True) -> None:
        self.decision = Reject("handler called basic_reject", requeue=requeue)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"runconsumer owns the channel: ch.{name} is not available to a handler "
            "(basic_ack, basic_nack, basic_reject and basic_publish are); publish with "
            "messaging.publish()"
        )


def pika_style(callback: Callable[..., Any]) -> Handler:
    """Adapt a four-argument pika callback to a ``Delivery`` handler."""

    def handler(delivery: Delivery) -> CallbackPublishes | None:
        ch = ChannelProxy()
        result = callback(ch, delivery.method, delivery.properties, delivery.body)
        if result is not None and inspect.isawaitable(result):
            raise awaitable_error(result)
        if ch.decision is not None:
            raise ch.decision
        return ch.published or None

    handler.__name__ = getattr(callback, "__name__", "pika_callback")
    handler.__qualname__ = getattr(callback, "__qualname__", handler.__name__)
    handler.wrapped = callback  # type: ignore[attr-defined]
    return handler


def _binds(signature: inspect.Signature | None, count: int) -> bool:
    """Can a callable with ``signature`` be called with ``count`` positional arguments?"""
    if signature is None:
        return True
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


def _signature(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # some builtins and C callables have none
        return None


def _is_async(func: Any) -> bool:
    """An ``async def`` function or async generator function, an object whose
    ``__call__`` is one, or a :func:`functools.partial` of any of these."""
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    if inspect.isfunction(func) or inspect.ismethod(func) or inspect.isclass(func):
        return False
    call = getattr(func, "__call__", None)  # noqa: B004 - the instance's own __call__
    return inspect.iscoroutinefunction(call)


def _is_async_generator(func: Any) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.isasyncgenfunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - the instance's own __call__
    return not inspect.isfunction(func) and inspect.isasyncgenfunction(call)


def _is_pika_style(func: Callable[..., Any]) -> bool:
    """Takes the four pika arguments but not one ``Delivery``."""
    signature = _signature(func)
    if signature is None:
        return False
    return not _binds(signature, 1) and _binds(signature, 4)


def check_handler(func: Any, name: str = "") -> None:
    """Raise :class:`HandlerImportError` (one line) unless ``func`` can be a handler: a
    callable (plain or ``async def``) taking one ``Delivery`` or the four pika arguments
    ``(ch, method, properties, body)``. Callables without a signature are accepted."""
    shown = name or getattr(func, "__qualname__", None) or repr(func)
    if not callable(func):
        raise HandlerImportError(f"handler {shown!r} is not callable")
    if _is_async_generator(func):
        raise HandlerImportError(
            f"handler {shown!r} is an async generator: a handler returns (or raises) once"
        )
    signature = _signature(func)
    if not (_binds(signature, 1) or _binds(signature, 4)):
        raise HandlerImportError(
            f"handler {shown!r} cannot be called with one Delivery nor with the four pika "
            f"arguments (ch, method, properties, body): its signature is {signature}"
        )


def run_async(func: Callable[..., Any]) -> Callable[..., Any]:
    """An ``async def`` handler as a plain one, for the worker thread that holds the
    receipt's transaction: asgiref's ``async_to_sync`` runs the coroutine in an event
    loop of its own while this thread waits, and the coroutine's
    ``sync_to_async(thread_sensitive=True)`` calls (Django's async ORM: ``acreate``,
    ``aget``, ...) come back to run on this thread, on its connection, inside the
    transaction. ``--threads N`` runs up to N at once."""

    async def awaited(*args: Any) -> Any:
        return await func(*args)

    call = async_to_sync(awaited)

    @functools.wraps(func)
    def handler(*args: Any) -> Any:
        return call(*args)

    handler.is_async_handler = True  # type: ignore[attr-defined]
    return handler


def awaitable_error(result: Any) -> TypeError:
    """The error for a handler that returned ``result``, an awaitable, instead of doing
    its work; a coroutine is closed first (so Python warns of nothing never awaited)."""
    close = getattr(result, "close", None)
    if callable(close):
        close()
    return TypeError(
        f"the handler returned {type(result).__name__} instead of running to completion "
        "(declare it `async def` and runconsumer awaits it)"
    )


def as_handler(func: Callable[..., Any], name: str = "") -> Handler:
    """Accept a ``Delivery`` handler or a four-argument pika callback, plain or ``async
    def`` (checked with :func:`check_handler`)."""
    check_handler(func, name)
    pika = _is_pika_style(func)
    if _is_async(func):
        func = run_async(func)
    return pika_style(func) if pika else func


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
    return as_handler(func, path)


def handler_path_for(queue: str, override: str | None = None) -> str:
    """``--handler`` if given, else ``MESSAGING["CONSUMERS"][queue]``, else the default."""
    if override:
        return override
    return conf.get("CONSUMERS").get(queue, DEFAULT_HANDLER)
