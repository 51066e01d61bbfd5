"""The one module that talks to pika.

Connection parameters, queue declaration, publishing with confirms and the
translation of pika's exceptions into :mod:`messaging.exceptions` all live here;
commands, the admin, the consumer engine and the tests go through it.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pika
import pika.exceptions as pe
from django.core.exceptions import ValidationError
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection, ReturnedMessage
from pika.adapters.select_connection import IOLoop

from . import conf
from .exceptions import (
    AccessRefused,
    AuthenticationFailed,
    BrokerError,
    BrokerUnavailable,
    ConfirmTimeout,
    ConsumerTimedOut,
    MessageRefused,
    NotFound,
    PublishInterrupted,
    PublishNacked,
    QueueMismatch,
    Unroutable,
)
from .validators import first_message, validate_message_fields, validate_queue_name

logger = logging.getLogger(__name__)

PERSISTENT = pika.DeliveryMode.Persistent.value  # 2
TRANSIENT = pika.DeliveryMode.Transient.value  # 1

#: Errors that mean "the connection is gone" (as opposed to "we did something wrong").
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    pe.AMQPConnectionError,
    pe.ConnectionWrongStateError,
    pe.StreamLostError,
    ConnectionError,
    OSError,
)

#: What pika raises while *encoding* one message or method (it marshals every frame
#: before writing any, so the channel is intact): the message's fault, never retried.
ENCODE_ERRORS: tuple[type[BaseException], ...] = (
    pe.ShortStringTooLong,
    pe.UnsupportedAMQPFieldException,
    UnicodeError,
    struct.error,
    TypeError,
    ValueError,
    AttributeError,
    OverflowError,
    RecursionError,
)


# --------------------------------------------------------------------------- parameters


def connection_parameters(url: str, *, connection_name: str | None = None) -> pika.URLParameters:
    """Turn one broker URL into pika parameters.

    Heartbeat, connection and blocked-connection timeouts come from
    ``settings.MESSAGING`` unless the URL's query string sets them
    (``?heartbeat=30``). ``amqps://`` enables TLS with certificate and host name
    verification.
    """
    params = pika.URLParameters(url)
    query = parse_qs(urlsplit(url).query)
    if "heartbeat" not in query:
        params.heartbeat = conf.get("HEARTBEAT")
    timeout = conf.get("CONNECTION_TIMEOUT") or None
    if "socket_timeout" not in query:
        params.socket_timeout = timeout
    if "stack_timeout" not in query:  # TCP connect + TLS + AMQP handshake, all together
        params.stack_timeout = timeout and timeout + 1
    if "blocked_connection_timeout" not in query:
        params.blocked_connection_timeout = conf.get("BLOCKED_CONNECTION_TIMEOUT") or None
    if params.ssl_options is not None and params.ssl_options.server_hostname is None:
        params.ssl_options = pika.SSLOptions(
            params.ssl_options.context, server_hostname=params.host
        )
    params.client_properties = {
        "connection_name": connection_name or default_connection_name(),
        "product": "django messaging",
    }
    return params


def default_connection_name() -> str:
    return f"messaging@{socket.gethostname()}:{os.getpid()}"


def connect(
    urls: Iterable[str] | None = None, *, connection_name: str | None = None
) -> BlockingConnection:
    """Open a blocking connection, trying each URL in turn (cluster nodes).

    Raises :class:`BrokerUnavailable`, :class:`AuthenticationFailed` or
    :class:`AccessRefused`, never a pika exception.
    """
    urls = list(urls) if urls is not None else conf.broker_urls()
    errors: list[BrokerError] = []
    for url in urls:
        try:
            return pika.BlockingConnection(
                connection_parameters(url, connection_name=connection_name)
            )
        except Exception as exc:  # noqa: BLE001 - translated below
            error = translate(exc, url=url)
            if isinstance(error, AuthenticationFailed | AccessRefused):
                raise error from exc
            errors.append(error)
    if len(errors) == 1:
        raise errors[0]
    raise BrokerUnavailable("no broker answered: " + "; ".join(str(e) for e in errors))


@contextmanager
def connection(
    urls: Iterable[str] | None = None, *, connection_name: str | None = None
) -> Iterator[BlockingConnection]:
    conn = connect(urls, connection_name=connection_name)
    try:
        yield conn
    finally:
        close_quietly(conn)


def close_quietly(conn: BlockingConnection | None) -> None:
    if conn is None:
        return
    try:
        if conn.is_open:
            conn.close()
    except Exception:  # noqa: BLE001 - closing a dead connection must not mask the real error
        logger.debug("error while closing a broker connection", exc_info=True)


# --------------------------------------------------------------------------- errors

_INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<arg>[^']+)' for queue '(?P<queue>[^']*)' in vhost '[^']*': "
    r"received (?P<received>.+?) but current is (?P<current>.+)$"
)


def translate(exc: BaseException, *, url: str | None = None, queue: str = "") -> BrokerError:
    """Map a pika (or socket) exception to our own, with a one-line message."""
    if isinstance(exc, BrokerError):
        return exc
    where = f" at {conf.redact_url(url)}" if url else ""
    if isinstance(exc, pe.ProbableAuthenticationError | pe.AuthenticationError):
        return AuthenticationFailed(f"broker refused the username/password{where}")
    if isinstance(exc, pe.ProbableAccessDeniedError):
        return AccessRefused(f"broker refused access to the virtual host{where}: {_reply(exc)}")
    if isinstance(exc, pe.UnroutableError):
        returned = exc.messages[0].method if exc.messages else None
        if returned is not None:
            exchange = returned.exchange or "(default)"
            return Unroutable(
                f"unroutable: no queue bound for exchange {exchange} "
                f"routing key {returned.routing_key}"
            )
        return Unroutable("unroutable: the broker returned the message")
    if isinstance(exc, pe.NackError):
        return PublishNacked("the broker nacked the message (basic.nack): not stored")
    if isinstance(exc, pe.ChannelClosedByBroker | pe.ConnectionClosedByBroker):
        code, text = exc.reply_code, exc.reply_text
        if code == 406 and "acknowledgement" in text and "timed out" in text:
            return ConsumerTimedOut(
                f"the broker's consumer_timeout expired before a delivery was acked: {text}"
            )
        if code == 406:
            match = _INEQUIVALENT.search(text)
            if match:
                return QueueMismatch(
                    f"queue {match['queue']!r} already exists on the broker with other "
                    f"arguments: {match['arg']} is {match['current']} on the broker but "
                    f"{match['received']} was declared (PRECONDITION_FAILED)",
                    queue=match["queue"],
                    argument=match["arg"],
                )
            return QueueMismatch(f"broker refused the declaration: {text}", queue=queue)
        if code == 403:
            return AccessRefused(f"broker refused access: {text}")
        if code == 404:
            return NotFound(f"broker says not found: {text}")
        if code in (320, 302) or isinstance(exc, pe.ConnectionClosedByBroker):
            return BrokerUnavailable(f"broker closed the connection{where}: ({code}) {text}")
        return BrokerError(f"broker closed the channel: ({code}) {text}")
    if isinstance(exc, CONNECTION_ERRORS):
        return BrokerUnavailable(f"cannot reach the broker{where}: {_describe(exc)}")
    if isinstance(exc, ENCODE_ERRORS):
        return refusal(exc)
    return BrokerError(f"{type(exc).__name__}: {exc}")


def refusal(exc: BaseException, item: Outgoing | None = None) -> MessageRefused:
    """The one-line :class:`MessageRefused` for an ``item`` (or a method) pika could not
    encode: what the validators say is wrong with it, else pika's own words."""
    if item is not None:
        try:
            validate_message_fields(
                exchange=item.exchange,
                routing_key=item.routing_key,
                content_type=item.content_type,
                headers=item.headers,
            )
        except ValidationError as error:
            return MessageRefused(f"cannot be sent: {first_message(error)}")
    if isinstance(exc, pe.ShortStringTooLong):
        value = exc.args[0] if exc.args else b""
        size = len(value) if isinstance(value, bytes | str) else "over 255"
        text = f"a name or property is {size} bytes; AMQP allows at most 255"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return MessageRefused(f"cannot be sent: {' '.join(text.split())[:300]}")


def _reply(exc: BaseException) -> str:
    text = str(exc)
    match = re.search(r"\((\d+)\) '([^']*)'", text)
    return match.group(2) if match else text


def _describe(exc: BaseException) -> str:
    """The most specific text in pika's nest of wrapped connection errors."""
    chain: list[BaseException] = [exc]
    while len(chain) < 6:
        current = chain[-1]
        inner = getattr(current, "exception", None)  # pika's connector errors wrap here
        if not isinstance(inner, BaseException) and current.args:
            inner = current.args[0]
        if not isinstance(inner, BaseException):
            break
        chain.append(inner)
    for candidate in reversed(chain):
        if isinstance(candidate, OSError) and candidate.strerror:
            return candidate.strerror.lower()
    last = chain[-1]
    return f"{type(last).__name__}: {last}" if str(last) else type(last).__name__


# --------------------------------------------------------------------------- declaring


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


def declare_dead_letter_queue(channel: BlockingChannel, queue: str, dlq: str) -> int:
    """Declare the ``messaging.dlx`` direct exchange, the durable ``dlq`` and the binding
    that routes ``queue``'s dead letters (routing key ``queue``) into it."""
    from .models import DEAD_LETTER_EXCHANGE

    try:
        channel.exchange_declare(
            exchange=DEAD_LETTER_EXCHANGE, exchange_type="direct", durable=True
        )
        result = channel.queue_declare(queue=dlq, durable=True)
        channel.queue_bind(queue=dlq, exchange=DEAD_LETTER_EXCHANGE, routing_key=queue)
    except Exception as exc:  # noqa: BLE001 - translated
        raise translate(exc, queue=dlq) from exc
    return result.method.message_count


def declare_queue(channel: BlockingChannel, queue: Any) -> int:
    """Declare ``queue`` exactly as its row says; returns the ready-message count.

    A queue that exists with other arguments raises :class:`QueueMismatch` naming the
    argument that differs. The channel is closed by the broker in that case.
    """
    spec = QueueSpec.of(queue)
    if spec.dead_letter_queue and not spec.passive:
        declare_dead_letter_queue(channel, spec.name, spec.dead_letter_queue)
    try:
        if spec.passive:
            result = channel.queue_declare(queue=spec.name, passive=True)
        else:
            result = channel.queue_declare(
                queue=spec.name, durable=spec.durable, arguments=dict(spec.arguments or {}) or None
            )
    except Exception as exc:  # noqa: BLE001 - translated
        raise translate(exc, queue=spec.name) from exc
    return result.method.message_count


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
    publisher = PipelinedPublisher(urls, connection_name=f"{default_connection_name()} declare")
    try:
        publisher.open()
        for index, spec in enumerate(specs):
            try:
                result.ready[spec.name] = publisher.declare(spec)
            except BrokerUnavailable as exc:
                if publisher.is_open:  # only this declaration went unanswered
                    result.failed[spec.name] = exc
                    continue
                result.error = exc
                result.not_declared = [s.name for s in specs[index:]]
                break
            except BrokerError as exc:
                result.failed[spec.name] = exc
            else:
                result.declared.append(spec.name)
    except BrokerError as exc:  # could not connect at all
        result.error = exc
        result.not_declared = [s.name for s in specs]
    finally:
        publisher.close()
    return result


def queue_name_problem(name: str) -> str | None:
    """Why :func:`validate_queue_name` refuses ``name`` (one line), or ``None``."""
    try:
        validate_queue_name(name)
    except ValidationError as exc:
        return first_message(exc)
    return None


def inspect_queue(channel: BlockingChannel, name: str) -> tuple[int, int] | None:
    """(ready messages, consumers) for an existing queue, ``None`` if it does not exist.

    Uses a passive declare, which closes the channel when the queue is missing: pass a
    channel you can throw away.
    """
    try:
        result = channel.queue_declare(queue=name, passive=True)
    except pe.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return None
        raise translate(exc, queue=name) from exc
    except Exception as exc:  # noqa: BLE001
        raise translate(exc, queue=name) from exc
    return result.method.message_count, result.method.consumer_count


def purge_queue(channel: BlockingChannel, name: str) -> int:
    """Drop every ready message of queue ``name``; returns how many were dropped.

    Unacked messages (held by consumers) are not touched. A missing queue raises
    :class:`NotFound` (the broker closes the channel).
    """
    try:
        result = channel.queue_purge(queue=name)
    except Exception as exc:  # noqa: BLE001 - translated
        raise translate(exc, queue=name) from exc
    return result.method.message_count


def inspect_queues(
    names: Iterable[str], urls: Iterable[str] | None = None
) -> list[tuple[int, int] | None | BrokerError]:
    """Per name: (ready messages, consumers), ``None`` (no such queue) or the
    :class:`BrokerError` for that name alone; asked all at once over one connection within
    CONNECTION_TIMEOUT (connecting included, plus 1 s at most). Raises a
    :class:`BrokerError` only when it cannot connect."""
    names = list(names)
    answers = _ask_each("queue_declare", [{"queue": n, "passive": True} for n in names], urls)
    states: list[tuple[int, int] | None | BrokerError] = []
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, pe.ChannelClosedByBroker) and answer.reply_code == 404:
            states.append(None)
        elif isinstance(answer, BaseException):
            states.append(translate(answer, queue=name))
        else:
            states.append((answer.method.message_count, answer.method.consumer_count))
    return states


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
    started = _monotonic()
    name = f"{default_connection_name()} admin"
    with PipelinedPublisher(urls, connection_name=name) as publisher:
        left = publisher.rpc_timeout - (_monotonic() - started)
        return publisher.call_each(method, calls, max(left, 1.0))


# --------------------------------------------------------------------------- dead letters

#: Header the consumer appends to when it moves a message to ``<queue>.dlq``: a list of
#: tables {queue, reason, attempts, error, consumer, time} (newest last).
DEATH_HEADER = "x-messaging-death"
#: Broker-managed header (quorum queues) that must not travel with a copy.
_BROKER_ONLY_HEADERS = ("x-delivery-count",)


def copy_properties(
    props: pika.BasicProperties, *, extra_death: Mapping[str, Any] | None = None
) -> pika.BasicProperties:
    """The same properties (message_id, headers, content type, …) for a re-published
    copy, minus broker-managed headers; ``extra_death`` is appended to the death history."""
    headers = {k: v for k, v in (props.headers or {}).items() if k not in _BROKER_ONLY_HEADERS}
    if extra_death is not None:
        headers[DEATH_HEADER] = [*list(headers.get(DEATH_HEADER) or []), dict(extra_death)]
    return pika.BasicProperties(
        content_type=props.content_type,
        content_encoding=props.content_encoding,
        headers=headers or None,
        delivery_mode=props.delivery_mode,
        priority=props.priority,
        correlation_id=props.correlation_id,
        reply_to=props.reply_to,
        expiration=None,  # a dead letter must not expire out of its queue
        message_id=props.message_id,
        timestamp=props.timestamp,
        type=props.type,
        user_id=props.user_id,
        app_id=props.app_id,
    )


class DeadLetterer:
    """Publishes dead letters from a consumer's connection, on its own confirm-mode
    channel, declaring ``messaging.dlx`` + ``<queue>.dlq`` + binding once per queue.

    Used only from the thread that owns the connection (the consumer's I/O thread).
    """

    def __init__(self, conn: BlockingConnection) -> None:
        self._conn = conn
        self._channel: BlockingChannel | None = None
        self._declared: set[str] = set()

    def _ready_channel(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            self._channel = self._conn.channel()
            self._channel.confirm_delivery()
            self._declared.clear()
        return self._channel

    def publish(self, queue: str, dlq: str, body: bytes, props: pika.BasicProperties) -> None:
        """Put a copy in ``dlq`` (confirmed) or raise a :class:`BrokerError`."""
        from .models import DEAD_LETTER_EXCHANGE

        try:
            channel = self._ready_channel()
            if queue not in self._declared:
                declare_dead_letter_queue(channel, queue, dlq)
                self._declared.add(queue)
            channel.basic_publish(
                exchange=DEAD_LETTER_EXCHANGE,
                routing_key=queue,
                body=body,
                properties=props,
                mandatory=True,
            )
        except Exception as exc:  # noqa: BLE001 - translated
            raise translate(exc, queue=dlq) from exc


@dataclass
class MoveResult:
    moved: int = 0
    remaining: int = 0


def move_messages(
    source: str, destination: str, *, limit: int | None = None, urls: Iterable[str] | None = None
) -> MoveResult:
    """Move up to ``limit`` messages from queue ``source`` to queue ``destination`` (via
    the default exchange), keeping body and properties; each is acked on ``source`` only
    after the broker confirmed the copy, so a crash can duplicate but never lose one."""
    result = MoveResult()
    with connection(urls) as conn:
        try:
            get_channel = conn.channel()
            put_channel = conn.channel()
            put_channel.confirm_delivery()
            if inspect_queue(conn.channel(), destination) is None:
                raise NotFound(f"queue {destination!r} does not exist on the broker")
            state = inspect_queue(conn.channel(), source)
            if state is None:
                return result
            while limit is None or result.moved < limit:
                method, props, body = get_channel.basic_get(queue=source, auto_ack=False)
                if method is None:
                    break
                try:
                    put_channel.basic_publish(
                        exchange="",
                        routing_key=destination,
                        body=body,
                        properties=copy_properties(props),
                        mandatory=True,
                    )
                except Exception:
                    get_channel.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
                    raise
                get_channel.basic_ack(delivery_tag=method.delivery_tag)
                result.moved += 1
            state = inspect_queue(conn.channel(), source)
            result.remaining = state[0] if state else 0
        except BrokerError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated
            raise translate(exc, queue=source) from exc
    return result


# --------------------------------------------------------------------------- publishing


def check_headers(headers: Mapping[str, Any] | None) -> None:
    """Raise ``ValueError`` (one line) if ``headers`` cannot be sent as an AMQP table or
    sets a header the broker or the app owns (see :func:`validators.validate_headers`)."""
    from django.core.exceptions import ValidationError

    from .validators import first_message, validate_headers

    try:
        validate_headers(headers)
    except ValidationError as exc:
        raise ValueError(first_message(exc)) from None


def properties(
    *,
    message_id: str | None = None,
    content_type: str | None = None,
    headers: Mapping[str, Any] | None = None,
    persistent: bool = True,
) -> pika.BasicProperties:
    return pika.BasicProperties(
        message_id=message_id or None,
        content_type=content_type or None,
        headers=dict(headers) if headers else None,
        delivery_mode=PERSISTENT if persistent else TRANSIENT,
    )


class Publisher:
    """A connection + confirm-mode channel for publishing one or many messages.

    Every publish is ``mandatory`` and waits for the broker's confirm, so it either
    returns (the broker has the message) or raises a :class:`BrokerError` saying why not.
    A channel the broker closed (e.g. ``NOT_FOUND`` exchange) is reopened for the next
    message. Use as a context manager.
    """

    def __init__(self, urls: Iterable[str] | None = None, *, connection_name: str | None = None):
        self._urls = list(urls) if urls is not None else None
        self._connection_name = connection_name
        self._conn: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._declared: set[str] = set()

    def __enter__(self) -> Publisher:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        if self._conn is None or not self._conn.is_open:
            self._conn = connect(self._urls, connection_name=self._connection_name)
            self._channel = None
            self._declared.clear()

    @property
    def channel(self) -> BlockingChannel:
        self.open()
        assert self._conn is not None
        if self._channel is None or not self._channel.is_open:
            try:
                self._channel = self._conn.channel()
                self._channel.confirm_delivery()
            except Exception as exc:  # noqa: BLE001
                raise translate(exc) from exc
        return self._channel

    def declare(self, queue: Any) -> int:
        spec = QueueSpec.of(queue)
        return declare_queue(self.channel, spec)

    def ensure_declared(self, queue: Any) -> None:
        """Declare once per connection (cheap for repeated publishes to one queue)."""
        spec = QueueSpec.of(queue)
        if spec.name not in self._declared:
            self.declare(spec)
            self._declared.add(spec.name)

    def publish(
        self,
        *,
        exchange: str,
        routing_key: str,
        body: bytes,
        props: pika.BasicProperties,
    ) -> None:
        try:
            self.channel.basic_publish(
                exchange=exchange,
                routing_key=routing_key,
                body=body,
                properties=props,
                mandatory=True,
            )
        except Exception as exc:  # noqa: BLE001
            raise translate(exc) from exc

    def close(self) -> None:
        close_quietly(self._conn)
        self._conn = None
        self._channel = None


# --------------------------------------------------------------------------- pipelined publishing
#
# Bulk publishing (``send --count``, the admin's bulk publish, the outbox relay) keeps many
# confirms in flight on one channel instead of waiting for each. pika's BlockingChannel
# waits per message in confirm mode, so this uses pika's public asynchronous API
# (``SelectConnection``) with its I/O loop run in the calling thread while a call is in
# progress: no extra thread, and the caller sees plain blocking methods.

#: Most unconfirmed messages in flight on the channel at once.
DEFAULT_WINDOW = 1000
#: Most channels :meth:`PipelinedPublisher.call_each` opens at once.
CALLS_AT_ONCE = 100
_monotonic = time.monotonic


@dataclass(slots=True)
class Outgoing:
    """One message for :meth:`PipelinedPublisher.publish_many`."""

    exchange: str
    routing_key: str
    body: bytes
    message_id: str | None = None
    content_type: str = ""
    headers: Mapping[str, Any] | None = None
    persistent: bool = True


class _Batch:
    """Book-keeping of one :meth:`PipelinedPublisher.publish_many` call."""

    __slots__ = ("items", "results", "sent", "pending", "order", "by_id", "returned", "left")

    def __init__(self, items: list[Outgoing]) -> None:
        self.items = items
        self.results: list[BrokerError | None | bool] = [False] * len(items)  # False: unknown
        self.sent = 0  # items[:sent] were handed to pika
        self.pending: dict[int, int] = {}  # delivery tag -> index, awaiting a confirm
        self.order: deque[int] = deque()  # delivery tags awaiting a confirm, oldest first
        self.by_id: dict[str, int] = {}  # message_id -> index, for basic.return
        self.returned: dict[int, BrokerError] = {}  # index -> Unroutable
        self.left = len(items)  # outcomes still unknown

    def settle(self, index: int, outcome: BrokerError | None) -> None:
        if self.results[index] is False:
            self.results[index] = outcome
            self.left -= 1

    def settle_rest(self, error: BrokerError) -> None:
        for index in self.pending.values():
            self.settle(index, error)
        self.pending.clear()
        for index in range(self.sent, len(self.items)):
            self.settle(index, error)
        self.sent = len(self.items)


def _last_connect_error(exc: BaseException) -> BaseException:
    """The error of the last connection attempt, as BlockingConnection would raise it
    (the asynchronous adapter wraps every attempt in AMQPConnectionWorkflowFailed)."""
    from pika.adapters.utils import connection_workflow as workflow

    inner = exc.args[0] if isinstance(exc, pe.AMQPConnectionError) and exc.args else exc
    if isinstance(inner, workflow.AMQPConnectionWorkflowFailed) and inner.exceptions:
        last = inner.exceptions[-1]
        if isinstance(last, workflow.AMQPConnectorSocketConnectError):
            return pe.AMQPConnectionError(last)
        if isinstance(last, workflow.AMQPConnectorPhaseErrorBase):
            return last.exception
        return last
    return exc


class _SyncChannel:
    """A channel of a :class:`PipelinedPublisher`'s connection with blocking-style methods
    (``queue_declare(...)`` returns the ``*-ok`` frame or raises pika's exception), so
    :func:`declare_queue` works on it unchanged."""

    def __init__(self, publisher: PipelinedPublisher) -> None:
        self._publisher = publisher

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> Any:
            return self._publisher._rpc(name, kwargs)

        return call


_NO_ANSWER: Any = object()


def _no_answer(method: str, kwargs: Mapping[str, Any], timeout: float) -> BrokerUnavailable:
    what = kwargs.get("queue") or kwargs.get("exchange")
    about = f" for {what!r}" if what else ""
    amqp = method.replace("_", ".")  # queue_declare -> queue.declare
    return BrokerUnavailable(f"the broker did not answer {amqp}{about} within {timeout:.3g} s")


class _EachCall:
    """Book-keeping of :meth:`PipelinedPublisher.call_each`: one channel per call, each
    result the ``*-ok`` frame or the exception that ended its channel."""

    __slots__ = ("method", "calls", "results", "left", "channels", "loop")

    def __init__(self, method: str, calls: list[dict[str, Any]], loop: Any) -> None:
        self.method = method
        self.calls = calls
        self.results: list[Any] = [_NO_ANSWER] * len(calls)
        self.left = len(calls)
        self.channels: list[Any] = []
        self.loop = loop

    def finish(self, index: int, value: Any) -> None:
        if self.results[index] is _NO_ANSWER:
            self.results[index] = value
            self.left -= 1
            if self.left == 0:
                self.loop.stop()

    def opened(self, index: int, channel: Any) -> None:
        channel.add_on_close_callback(partial(self.closed, index))
        try:
            getattr(channel, self.method)(
                callback=partial(self.answered, index, channel), **self.calls[index]
            )
        except Exception as exc:  # noqa: BLE001 - an encoding error: this call's outcome
            self.finish(index, exc)

    def answered(self, index: int, channel: Any, frame: Any) -> None:
        self.finish(index, frame)
        if channel.is_open:
            channel.close()

    def closed(self, index: int, _channel: Any, reason: BaseException) -> None:
        self.finish(index, reason)

    def close_unanswered(self) -> None:
        for channel in self.channels:
            try:
                if channel.is_open or channel.is_opening:
                    channel.close()
            except Exception:  # noqa: BLE001 - abandoned either way
                logger.debug("error closing an unanswered channel", exc_info=True)


class PublisherBase:
    """What every publisher shares (the real one, and :mod:`messaging.testing`'s stand-in):
    a context manager around ``open()``/``close()``, and the confirm timeout."""

    _confirm_timeout: float | None = None

    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def confirm_timeout(self) -> float:
        """Seconds to wait for a publisher confirm (``MESSAGING["CONFIRM_TIMEOUT"]``)."""
        if self._confirm_timeout is not None:
            return self._confirm_timeout
        return float(conf.get("CONFIRM_TIMEOUT"))


class PipelinedPublisher(PublisherBase):
    """Publishes many messages over one connection with up to ``window`` publisher confirms
    in flight; every message is persistent (unless asked otherwise) and ``mandatory``.

    :meth:`publish_many` returns one outcome per message, in order: ``None`` (confirmed),
    or the :class:`BrokerError` saying why not — :class:`Unroutable` (returned),
    :class:`PublishNacked`, :class:`ConfirmTimeout` (no confirm for CONFIRM_TIMEOUT
    seconds), :class:`BrokerUnavailable` / :class:`PublishInterrupted` (connection or
    channel lost first). It raises only when it cannot connect at all. Queues are declared
    (:meth:`ensure_declared`) and exchanges checked (:meth:`check_exchange`) on a second
    channel of the same connection. An idle connection is replaced before use once it may
    have missed heartbeats. Use from one thread; as a context manager it closes itself.
    """

    def __init__(
        self,
        urls: Iterable[str] | None = None,
        *,
        connection_name: str | None = None,
        window: int = DEFAULT_WINDOW,
        confirm_timeout: float | None = None,
        rpc_timeout: float | None = None,
    ) -> None:
        self._urls = list(urls) if urls is not None else None
        self._connection_name = connection_name
        self.window = max(1, window)
        self._confirm_timeout = confirm_timeout
        self._rpc_timeout = rpc_timeout
        self._loop: Any = None
        self._conn: Any = None
        self._channel: Any = None  # confirm-mode publishing channel
        self._sync: Any = None  # channel for declarations
        self._tag = 0  # last delivery tag used on _channel
        self._batch: _Batch | None = None
        self._close_reason: BaseException | None = None
        self._channel_close_reason: BaseException | None = None
        self._declared: set[str] = set()
        self._exchanges: set[str] = set()
        self._abandoned: list[Any] = []  # channels dropped by _rpc, closing
        self._unanswered = False  # a call went unanswered: do not wait for close-ok
        self._heartbeat = 0
        self._last_used = 0.0
        self._props_key: tuple[Any, ...] | None = None
        self._props: pika.BasicProperties | None = None
        self._progress: dict[str, float] = {"progress": 0.0}

    # ----------------------------------------------------------------- connection

    @property
    def rpc_timeout(self) -> float:
        """Seconds a declaration (or another RPC) may wait for its answer:
        CONNECTION_TIMEOUT (CONFIRM_TIMEOUT when that is 0)."""
        if self._rpc_timeout is not None:
            return self._rpc_timeout
        return float(conf.get("CONNECTION_TIMEOUT") or self.confirm_timeout)

    @property
    def is_open(self) -> bool:
        return self._conn is not None and self._conn.is_open

    def open(self) -> None:
        """Connect (trying each URL in turn) unless an open, recently used connection is
        there. Raises :class:`BrokerUnavailable`, :class:`AuthenticationFailed` or
        :class:`AccessRefused`."""
        if self.is_open:
            idle = _monotonic() - self._last_used
            if self._heartbeat and idle > self._heartbeat / 2:
                self.close()  # it may have missed heartbeats while nobody ran its loop
            elif idle > 1:
                self._poll()  # notice a close the broker sent while we were away
        if self.is_open:
            return
        self.close()
        urls = self._urls if self._urls is not None else conf.broker_urls()
        errors: list[BrokerError] = []
        for url in urls:
            try:
                self._connect(url)
                return
            except BrokerError as error:
                self.close()
                if isinstance(error, AuthenticationFailed | AccessRefused):
                    raise
                errors.append(error)
        if len(errors) == 1:
            raise errors[0]
        raise BrokerUnavailable("no broker answered: " + "; ".join(str(e) for e in errors))

    def _connect(self, url: str) -> None:
        params = connection_parameters(url, connection_name=self._connection_name)
        loop = IOLoop()
        state: dict[str, Any] = {}

        def opened(_conn: Any) -> None:
            state["open"] = True
            loop.stop()

        def failed(_conn: Any, exc: BaseException) -> None:
            state["error"] = exc
            loop.stop()

        self._loop = loop
        self._close_reason = None
        self._conn = pika.SelectConnection(
            params,
            on_open_callback=opened,
            on_open_error_callback=failed,
            on_close_callback=self._on_connection_closed,
            custom_ioloop=loop,
        )
        while not state:
            loop.start()
        if "error" in state:
            self._conn = None
            raise translate(_last_connect_error(state["error"]), url=url)
        self._heartbeat = self._conn.params.heartbeat or 0
        self._channel = self._open_channel(confirm=True)
        self._last_used = _monotonic()

    def _open_channel(self, *, confirm: bool) -> Any:
        box: dict[str, Any] = {}

        def opened(channel: Any) -> None:
            box["channel"] = channel
            self._loop.stop()

        self._conn.channel(on_open_callback=opened)
        self._run(lambda: "channel" in box)
        channel = box["channel"]
        channel.add_on_close_callback(self._on_channel_closed)
        if confirm:
            channel.add_on_return_callback(self._on_return)
            channel.confirm_delivery(
                ack_nack_callback=self._on_confirm,
                callback=lambda _frame: (box.update(ok=True), self._loop.stop()),
            )
            self._run(lambda: "ok" in box or channel.is_closed)
            if channel.is_closed:
                raise translate(self._channel_close_reason or BrokerError("channel closed"))
            self._tag = 0
        return channel

    def _run(self, done: Callable[[], bool], timeout: float | None = None) -> None:
        """Run the I/O loop until ``done()``; raise if the connection closes or ``timeout``
        seconds pass first. Callbacks that may complete ``done`` stop the loop."""
        timeout = self.confirm_timeout if timeout is None else timeout
        deadline = _monotonic() + timeout
        timer = self._loop.call_later(timeout, self._loop.stop)
        try:
            while not done():
                if self._conn is None or not self._conn.is_open:
                    raise translate(self._close_reason or BrokerUnavailable("connection closed"))
                if _monotonic() >= deadline:
                    raise BrokerUnavailable(f"the broker did not answer within {timeout:g} s")
                self._loop.start()
        finally:
            self._loop.remove_timeout(timer)

    def _poll(self) -> None:
        """Handle whatever arrived while the loop was not running, without waiting."""
        self._loop.call_later(0, self._loop.stop)
        self._loop.start()

    def _on_connection_closed(self, _conn: Any, reason: BaseException) -> None:
        self._close_reason = reason
        self._channel = None
        self._sync = None
        self._abandoned = []
        self._declared.clear()
        self._exchanges.clear()
        if self._batch is not None:
            error = translate(reason)
            if not isinstance(error, BrokerUnavailable):
                error = BrokerUnavailable(f"connection lost before the broker confirmed: {error}")
            self._batch.settle_rest(error)
        if self._loop is not None:
            self._loop.stop()

    def _on_channel_closed(self, channel: Any, reason: BaseException) -> None:
        if any(channel is dropped for dropped in self._abandoned):
            self._abandoned = [c for c in self._abandoned if c is not channel]
            return  # a stuck channel _rpc gave up on: its close concerns nobody
        if channel is self._channel:
            self._channel = None
            batch = self._batch
            if batch is not None:
                error = translate(reason)
                if len(batch.pending) == 1 and batch.sent == len(batch.items):
                    # Only one message was unconfirmed and nothing else was sent: its fault.
                    batch.settle(next(iter(batch.pending.values())), error)
                    batch.pending.clear()
                batch.settle_rest(
                    PublishInterrupted(f"the broker closed the channel before confirming: {error}")
                )
        elif self._sync is not None and channel is self._sync:
            self._sync = None
        self._channel_close_reason = reason
        if self._loop is not None:
            self._loop.stop()

    def close(self) -> None:
        """Close the connection (waiting 2 s at most); never raises."""
        conn, loop = self._conn, self._loop
        wait = 0.2 if self._unanswered else 2  # a broker stuck on a call may not answer
        self._conn = self._channel = self._sync = None
        self._abandoned = []
        self._unanswered = False
        self._declared.clear()
        self._exchanges.clear()
        if conn is not None and loop is not None:
            try:
                if conn.is_open:
                    conn.close()
                if not conn.is_closed:  # wait briefly for close-ok (not for a dead peer)
                    deadline = _monotonic() + wait
                    timer = loop.call_later(wait, loop.stop)
                    while not conn.is_closed and _monotonic() < deadline:
                        loop.start()
                    loop.remove_timeout(timer)
            except Exception:  # noqa: BLE001 - closing a dead connection must not mask anything
                logger.debug("error while closing a publisher connection", exc_info=True)
        if loop is not None:
            try:
                loop.close()
            except Exception:  # noqa: BLE001
                logger.debug("error while closing an I/O loop", exc_info=True)
        self._loop = None

    # ----------------------------------------------------------------- declarations

    def _rpc(self, name: str, kwargs: dict[str, Any]) -> Any:
        """Call channel method ``name`` on the declarations channel and wait for its
        ``*-ok`` frame; a refusal raises pika's ChannelClosedByBroker (closing only that
        channel), as a BlockingChannel would. No answer within :attr:`rpc_timeout` raises
        :class:`BrokerUnavailable` and drops that channel (pika would queue every later
        call behind the unanswered one), so the next call gets a fresh one."""
        self.open()
        if self._sync is None or not self._sync.is_open:
            self._sync = self._open_channel(confirm=False)
        channel = self._sync
        box: dict[str, Any] = {}

        def answered(frame: Any) -> None:
            box["frame"] = frame
            self._loop.stop()

        self._channel_close_reason = None
        getattr(channel, name)(callback=answered, **kwargs)
        try:
            self._run(lambda: "frame" in box or channel.is_closed, self.rpc_timeout)
        except BrokerUnavailable as exc:
            if self.is_open:  # the connection works: only this call went unanswered
                self._drop_sync_channel(channel)
                raise _no_answer(name, kwargs, self.rpc_timeout) from exc
            raise
        finally:
            self._mark_used()
        if "frame" not in box:
            reason = self._channel_close_reason
            raise reason if reason is not None else BrokerError("channel closed")
        return box["frame"]

    def _drop_sync_channel(self, channel: Any) -> None:
        """Forget a declarations channel stuck on an unanswered call (and ask the broker
        to close it, without waiting)."""
        if channel is self._sync:
            self._sync = None
        self._abandoned.append(channel)
        self._unanswered = True
        try:
            channel.close()
        except Exception:  # noqa: BLE001 - it is abandoned either way
            logger.debug("error closing a stuck channel", exc_info=True)

    def declare(self, queue: Any) -> int:
        """Declare ``queue`` exactly as its row (or :class:`QueueSpec`) says."""
        return declare_queue(_SyncChannel(self), QueueSpec.of(queue))

    def ensure_declared(self, queue: Any) -> None:
        """Declare once per connection (cheap for repeated publishes to one queue)."""
        spec = QueueSpec.of(queue)
        self.open()
        if spec.name not in self._declared:
            self.declare(spec)
            self._declared.add(spec.name)

    def check_exchange(self, exchange: str) -> None:
        """Raise :class:`NotFound` if ``exchange`` does not exist (checked once per
        connection), so a missing exchange fails its own messages, not the channel."""
        self.open()
        if not exchange or exchange in self._exchanges:
            return
        try:
            self._rpc("exchange_declare", {"exchange": exchange, "passive": True})
        except BrokerError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated (NOT_FOUND names the exchange)
            raise translate(exc) from exc
        self._exchanges.add(exchange)

    def call_each(
        self, method: str, calls: Iterable[dict[str, Any]], timeout: float | None = None
    ) -> list[Any]:
        """Call channel method ``method`` once per kwargs in ``calls``, each on a channel of
        its own and all at once (a refusal or a hang then concerns that call only); wait
        ``timeout`` seconds (:attr:`rpc_timeout`) at most for all of them. Returns, per
        call, the ``*-ok`` frame or the exception: pika's ChannelClosedByBroker for a
        refusal, :class:`BrokerUnavailable` for no answer or a lost connection."""
        calls = list(calls)
        timeout = self.rpc_timeout if timeout is None else timeout
        deadline = _monotonic() + timeout
        results: list[Any] = []
        for start in range(0, len(calls), CALLS_AT_ONCE):
            chunk = calls[start : start + CALLS_AT_ONCE]
            results.extend(self._call_chunk(method, chunk, max(deadline - _monotonic(), 0.01)))
        return results

    def _call_chunk(self, method: str, calls: list[dict[str, Any]], timeout: float) -> list[Any]:
        self.open()
        each = _EachCall(method, calls, self._loop)
        for index in range(len(calls)):
            try:
                each.channels.append(
                    self._conn.channel(on_open_callback=partial(each.opened, index))
                )
            except Exception as exc:  # noqa: BLE001 - the connection is gone: its outcome
                each.finish(index, exc)
        error: BrokerError | None = None
        try:
            self._run(lambda: each.left == 0, timeout)
        except BrokerError as exc:
            error = exc
        finally:
            self._mark_used()
        for index, value in enumerate(each.results):
            if value is _NO_ANSWER:
                self._unanswered = True
                each.results[index] = (
                    _no_answer(method, calls[index], timeout)
                    if self.is_open
                    else error or BrokerUnavailable("the connection closed")
                )
        each.close_unanswered()
        return each.results

    def _mark_used(self) -> None:
        self._last_used = _monotonic()

    # ----------------------------------------------------------------- publishing

    def publish_many(self, items: Iterable[Outgoing]) -> list[BrokerError | None]:
        """Publish ``items`` in order with up to ``window`` confirms in flight; returns one
        outcome per item (``None`` = confirmed by the broker). Raises only if it cannot
        connect (then nothing was sent)."""
        items = list(items)
        if not items:
            return []
        self.open()
        if self._channel is None or not self._channel.is_open:
            self._channel = self._open_channel(confirm=True)
        batch = _Batch(items)
        self._batch = batch
        self._props_key = None  # keyed by id(headers): only valid while this batch lives
        timeout = self.confirm_timeout
        state = {"progress": 0.0}
        timer: list[Any] = [None]

        def watchdog() -> None:
            timer[0] = None
            if batch.left == 0:
                return
            idle = _monotonic() - state["progress"]
            if idle >= timeout:
                batch.settle_rest(
                    ConfirmTimeout(f"no publisher confirm from the broker within {timeout:g} s")
                )
                self._loop.stop()
            else:
                timer[0] = self._loop.call_later(timeout - idle, watchdog)

        try:
            state["progress"] = _monotonic()
            timer[0] = self._loop.call_later(timeout, watchdog)
            self._progress = state
            self._pump()
            while batch.left:
                if self._conn is None or not self._conn.is_open:
                    batch.settle_rest(
                        BrokerUnavailable(
                            f"connection lost before the broker confirmed: "
                            f"{translate(self._close_reason or ConnectionError('closed'))}"
                        )
                    )
                    break
                self._loop.start()
        finally:
            if timer[0] is not None and self._loop is not None:
                self._loop.remove_timeout(timer[0])
            self._batch = None
            self._mark_used()
        if any(isinstance(r, ConfirmTimeout) for r in batch.results):
            self.close()  # late confirms must not be taken for the next batch's
        return [
            PublishInterrupted("no outcome from the broker") if r is False else r  # type: ignore[misc]
            for r in batch.results
        ]

    def _properties(self, item: Outgoing) -> pika.BasicProperties:
        # One BasicProperties object per distinct (content type, headers, persistence):
        # basic_publish encodes it at once, so only message_id changes between messages.
        key = (item.content_type, id(item.headers), item.persistent)
        if key != self._props_key or self._props is None:
            self._props = properties(
                content_type=item.content_type,
                headers=item.headers,
                persistent=item.persistent,
            )
            self._props_key = key
        self._props.message_id = item.message_id or None
        return self._props

    def _pump(self) -> None:
        """Publish until the window is full or everything is sent."""
        batch = self._batch
        channel = self._channel
        if batch is None or channel is None:
            return
        items, pending, order, by_id = batch.items, batch.pending, batch.order, batch.by_id
        window, total = self.window, len(items)
        while batch.sent < total and len(pending) < window:
            index = batch.sent
            item = items[index]
            try:
                channel.basic_publish(
                    item.exchange,
                    item.routing_key,
                    item.body,
                    self._properties(item),
                    mandatory=True,
                )
            except ENCODE_ERRORS as exc:  # this item's fault: nothing was written
                batch.sent += 1
                batch.settle(index, refusal(exc, item))
                self._props = None  # it may hold the refused item's properties
                continue
            except Exception as exc:  # noqa: BLE001 - the channel or connection is gone
                batch.settle_rest(PublishInterrupted(f"not sent: {translate(exc)}"))
                self._loop.stop()
                return
            batch.sent += 1
            self._tag += 1
            pending[self._tag] = index
            order.append(self._tag)
            if item.message_id:
                by_id[item.message_id] = index
        if batch.left == 0:
            self._loop.stop()

    def _on_return(self, _channel: Any, method: Any, props: Any, body: bytes) -> None:
        batch = self._batch
        if batch is None:
            return
        index = batch.by_id.get(props.message_id) if props.message_id else None
        if index is None:  # no message_id: the oldest unconfirmed one with that destination
            for candidate in batch.pending.values():
                item = batch.items[candidate]
                if (item.exchange, item.routing_key) == (method.exchange, method.routing_key):
                    index = candidate
                    break
        if index is not None:
            returned = pe.UnroutableError([ReturnedMessage(method, props, body)])
            batch.returned[index] = translate(returned)

    def _on_confirm(self, frame: Any) -> None:
        batch = self._batch
        if batch is None:
            return
        method = frame.method
        nacked = isinstance(method, pika.spec.Basic.Nack)
        tag = method.delivery_tag
        pending, order = batch.pending, batch.order
        if method.multiple:
            tags = []
            while order and order[0] <= tag:
                tags.append(order.popleft())
        else:
            tags = [tag]
        for done in tags:
            index = pending.pop(done, None)
            if index is None:
                continue
            item = batch.items[index]
            if item.message_id:
                batch.by_id.pop(item.message_id, None)
            if nacked:
                batch.settle(index, PublishNacked("the broker nacked the message (basic.nack)"))
            else:
                batch.settle(index, batch.returned.pop(index, None))
        while order and order[0] not in pending:
            order.popleft()
        self._progress["progress"] = _monotonic()
        if batch.left == 0:
            self._loop.stop()
        else:
            self._pump()
