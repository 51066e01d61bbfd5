"""One exception hierarchy for everything the app raises.

Each broker failure pika can report is translated (in :mod:`messaging.broker`) into one
of these, with a one-line message a user can act on.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class MessagingError(Exception):
    """Base class of every error raised by the messaging app."""

    #: True when the same attempt may succeed later (the broker was unreachable, did not
    #: answer or did not confirm): never the fault of the message or the configuration.
    #: Asked through :func:`messaging.broker.is_temporary`; the outbox retries exactly these.
    temporary: bool = False


class MessagingConfigurationError(MessagingError, ImproperlyConfigured):
    """A setting, queue definition or handler path is wrong."""


class InvalidQueueName(MessagingConfigurationError, ValueError):
    """A queue name the broker would refuse (too long, ``amq.`` prefix, empty)."""


class InvalidMessage(MessagingError, ValueError):
    """A message that can never be sent as it is (a header, property or destination the
    broker cannot take); refused before anything is saved."""


class HandlerImportError(MessagingConfigurationError, ImportError):
    """A handler's dotted path does not import or is not callable."""


class BrokerError(MessagingError):
    """Something went wrong talking to RabbitMQ."""

    temporary = False


class BrokerUnavailable(BrokerError, ConnectionError):
    """No broker answered at the configured URL(s) (refused, timeout, DNS, connection lost)."""

    temporary = True


class ConsumerTimedOut(BrokerUnavailable):
    """The broker closed the channel because a delivery stayed unacked longer than its
    ``consumer_timeout``; the consumer reconnects and the message is redelivered."""

    temporary = True


class QueueUnavailable(BrokerUnavailable):
    """The queue exists but cannot be reached now: its home node (classic queue) is down
    or inaccessible, or it has no leader (quorum queue, while a node is lost) — a node
    loss, so temporary: consumers reconnect, rows stay ``pending``."""

    temporary = True


class AuthenticationFailed(BrokerError):
    """The broker refused the username/password."""

    temporary = False


class AccessRefused(BrokerError):
    """The broker refused access (vhost, permissions, reserved name)."""

    temporary = False


class QueueMismatch(BrokerError):
    """A queue exists on the broker with other arguments than the ones declared
    (``PRECONDITION_FAILED``)."""

    temporary = False

    def __init__(self, message: str, queue: str = "", argument: str = "") -> None:
        super().__init__(message)
        self.queue = queue
        self.argument = argument


class ExchangeMismatch(QueueMismatch):
    """An exchange exists on the broker with another type, flags or arguments than the
    ones declared (``PRECONDITION_FAILED``); a kind of declaration drift, like
    :class:`QueueMismatch`."""

    temporary = False

    def __init__(self, message: str, exchange: str = "", argument: str = "") -> None:
        super().__init__(message, argument=argument)
        self.exchange = exchange


class NotFound(BrokerError):
    """The broker has no such exchange or queue (``NOT_FOUND``)."""

    temporary = False


class PublishError(BrokerError):
    """A publish was not confirmed by the broker."""

    temporary = False


class Unroutable(PublishError):
    """The broker returned a ``mandatory`` message: no queue is bound for it."""

    temporary = False


class PublishNacked(PublishError):
    """The broker answered a publish with ``basic.nack``."""

    temporary = True


class ConfirmTimeout(PublishError):
    """No publisher confirm arrived within ``MESSAGING["CONFIRM_TIMEOUT"]`` seconds (the
    message may or may not be on the broker; it is retried with the same message_id)."""

    temporary = True


class MessageRefused(BrokerError):
    """A message or declaration that can never be sent as it is: a field AMQP cannot
    encode (a short string over 255 bytes, a value of no AMQP type) or a name or property
    the validators refuse. Never retried: the row is ``failed`` with this one line."""

    temporary = False


class PublishInterrupted(PublishError):
    """The channel or connection closed before the broker confirmed (or before the message
    was sent); retried with the same message_id."""

    temporary = True


class RequestTimeout(MessagingError, TimeoutError):
    """:func:`messaging.call` got no reply within its ``timeout``. The request may still
    be handled (and its reply then goes nowhere): call again with the same
    ``message_id`` to get the stored reply instead of running the handler twice."""


class Reject(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raise from a handler to refuse a delivery without it counting as a crash.

    ``Reject()`` drops the message from the queue (to the queue's dead-letter
    exchange when it has one); ``Reject(requeue=True)`` puts it back. Any database
    work the handler did is rolled back, and the receipt says ``rejected`` or
    ``requeued`` with ``reason``.
    """

    def __init__(self, reason: str = "", *, requeue: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.requeue = requeue
