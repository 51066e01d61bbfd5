"""pika's (and the socket's) exceptions, translated into :mod:`messaging.exceptions`.

Code that calls pika wraps the call in :func:`translating`; whether an error is worth
trying again later is the error's own business (:func:`is_temporary`).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager

import pika.exceptions as pe
from django.core.exceptions import ValidationError

from .. import conf
from ..amqp.validators import first_message, validate_message_fields
from ..exceptions import (
    AccessRefused,
    AuthenticationFailed,
    BrokerError,
    BrokerUnavailable,
    ConsumerTimedOut,
    ExchangeMismatch,
    MessageRefused,
    MessagingError,
    NotFound,
    PublishNacked,
    QueueMismatch,
    QueueUnavailable,
    Unroutable,
)
from .outgoing import Outgoing

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

#: Channel-level failures that are not the broker's answer to what we sent (a channel
#: closed by us or under us, used after it closed): the connection may be fine, the
#: attempt is worth repeating on a new channel.
CHANNEL_ERRORS: tuple[type[BaseException], ...] = (
    pe.ChannelClosedByClient,
    pe.ChannelWrongStateError,
)

#: What RabbitMQ says (with 404 NOT_FOUND, or 541 INTERNAL_ERROR) about a queue that
#: exists but cannot be reached *now*: its home node is down (classic queue), its
#: process is stopped or restarting, or it has no leader (quorum queue) — a node loss.
QUEUE_DOWN = re.compile(
    r"is down or inaccessible|process is stopped by supervisor|\bis down\b|"
    r"\bnodedown\b|\bnoproc\b|\bnot_running\b|\btimeout\b|\bno leader\b|"
    r"\bminority\b|\bunavailable\b",
    re.IGNORECASE,
)

#: A quoted name in a reply text (queue, vhost, node): never read as a reason.
QUOTED = re.compile(r"'[^']*'")

#: Reply codes that say the broker (a node) is going away or failing, never the client's
#: fault: CONNECTION_FORCED (320, sent on shutdown), 302 (an old CONNECTION_FORCED),
#: INTERNAL_ERROR (541, e.g. a quorum queue without a leader).
UNAVAILABLE_CODES = frozenset({302, 320, 541})

_INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<arg>[^']+)' for queue '(?P<queue>[^']*)' in vhost '[^']*': "
    r"received (?P<received>.+?) but current is (?P<current>.+)$"
)

_INEQUIVALENT_EXCHANGE = re.compile(
    r"inequivalent arg '(?P<arg>[^']+)' for exchange '(?P<exchange>[^']*)' in vhost '[^']*': "
    r"received (?P<received>.+?) but current is (?P<current>.+)$"
)


@contextmanager
def translating(*, url: str | None = None, queue: str = "") -> Iterator[None]:
    """Re-raise any exception of the block that is not already a :class:`BrokerError`
    as :func:`translate` says (``from`` the original)."""
    try:
        yield
    except BrokerError:
        raise
    except Exception as exc:  # noqa: BLE001 - translated
        raise translate(exc, url=url, queue=queue) from exc


def is_temporary(exc: BaseException) -> bool:
    """True when trying again later may succeed: the broker (or the node a queue lives
    on) was unreachable, went away, did not answer or did not confirm; never the
    message's fault (``exc.temporary``). A pika or socket exception is translated
    first, so the answer is the same before and after :func:`translate`."""
    if not isinstance(exc, MessagingError):
        exc = translate(exc)
    return exc.temporary


def error_class(exc: BaseException) -> str:
    """The name stored with an outcome (``Message.error_class``): the translated class."""
    return type(exc if isinstance(exc, MessagingError) else translate(exc)).__name__


def temporary_error_classes() -> frozenset[str]:
    """Names of every :class:`BrokerError` class that is temporary — rows ``failed``
    with one of these were failed by an outage (under an older rule) and are retried."""
    found: set[str] = set()
    todo: list[type[BaseException]] = [BrokerError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if getattr(cls, "temporary", False):
            found.add(cls.__name__)
    return frozenset(found)


def is_queue_down(text: str) -> bool:
    """True when a NOT_FOUND / INTERNAL_ERROR text is about a queue whose node is down
    (or that has no leader), not about a queue that does not exist. Quoted names are
    left out: a queue named ``jobs.timeout`` that is missing is missing."""
    return bool(QUEUE_DOWN.search(QUOTED.sub("''", text)))


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
        return _unroutable(exc)
    if isinstance(exc, pe.NackError):
        return PublishNacked("the broker nacked the message (basic.nack): not stored")
    if isinstance(exc, pe.ChannelClosedByBroker | pe.ConnectionClosedByBroker):
        return _closed_by_broker(exc, where, queue)
    if isinstance(exc, CONNECTION_ERRORS):
        return BrokerUnavailable(f"cannot reach the broker{where}: {_describe(exc)}")
    if isinstance(exc, CHANNEL_ERRORS):
        return BrokerUnavailable(f"the channel closed{where}: {_describe(exc)}")
    if isinstance(exc, ENCODE_ERRORS):
        return refusal(exc)
    return BrokerError(f"{type(exc).__name__}: {exc}")


def _unroutable(exc: pe.UnroutableError) -> Unroutable:
    returned = exc.messages[0].method if exc.messages else None
    if returned is None:
        return Unroutable("unroutable: the broker returned the message")
    exchange = returned.exchange or "(default)"
    return Unroutable(
        f"unroutable: no queue bound for exchange {exchange} routing key {returned.routing_key}"
    )


def _closed_by_broker(
    exc: pe.ChannelClosedByBroker | pe.ConnectionClosedByBroker, where: str, queue: str
) -> BrokerError:
    code, text = exc.reply_code, exc.reply_text
    if code == 406 and "acknowledgement" in text and "timed out" in text:
        return ConsumerTimedOut(
            f"the broker's consumer_timeout expired before a delivery was acked: {text}"
        )
    if code == 406:
        exchange = _INEQUIVALENT_EXCHANGE.search(text)
        if exchange:
            return ExchangeMismatch(
                f"exchange {exchange['exchange']!r} already exists on the broker with other "
                f"settings: {exchange['arg']} is {exchange['current']} on the broker but "
                f"{exchange['received']} was declared (PRECONDITION_FAILED)",
                exchange=exchange["exchange"],
                argument=exchange["arg"],
            )
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
    if code in (404, 541) and is_queue_down(text):
        return QueueUnavailable(f"queue unavailable (a node is down): ({code}) {text}")
    if code == 404:
        return NotFound(f"broker says not found: {text}")
    if code in UNAVAILABLE_CODES or isinstance(exc, pe.ConnectionClosedByBroker):
        return BrokerUnavailable(f"broker closed the connection{where}: ({code}) {text}")
    return BrokerError(f"broker closed the channel: ({code}) {text}")


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
