"""The one package that talks to pika (with the consumer engine): commands, the admin, the
consumer and the tests go through it. Every name below is importable from here.

- :mod:`.connecting` — pika parameters from a URL and the settings, connection names,
  trying each URL in turn (:func:`connect_first`), :func:`connect` / :func:`connection`.
- :mod:`.errors` — pika's exceptions as :mod:`messaging.exceptions` (:func:`translate`,
  the :func:`translating` block) and which of them are temporary (:func:`is_temporary`).
- :mod:`.message_properties` — AMQP properties of a message and of a dead-letter copy.
- :mod:`.topology` — :class:`QueueSpec`, declaring, inspecting and purging one queue or
  many, and the :class:`DeclarationCache` (once per connection).
- :mod:`.deadletter` — :class:`DeadLetterer` (from a consumer's connection) and
  :func:`move_messages`.
- :mod:`.publisher` — :class:`PipelinedPublisher`, many confirms in flight, built from
  :mod:`.loop` (its connection), :mod:`.confirms` and :mod:`.batch` (publishing) and
  :mod:`.calls` (declarations and other RPCs).
"""

from .. import conf  # noqa: F401 - reached as broker.conf by tests
from ..exceptions import (
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
    QueueUnavailable,
    Unroutable,
)
from .connecting import (
    close_quietly,
    connect,
    connect_first,
    connected_node,
    connection,
    connection_parameters,
    default_connection_name,
    describe_node,
    open_channel,
    ordered_urls,
)
from .deadletter import DeadLetterer, MoveResult, move_messages
from .errors import (
    CONNECTION_ERRORS,
    ENCODE_ERRORS,
    error_class,
    is_queue_down,
    is_temporary,
    refusal,
    temporary_error_classes,
    translate,
    translating,
)
from .message_properties import (
    DEATH_HEADER,
    PERSISTENT,
    TRANSIENT,
    check_headers,
    copy_properties,
    properties,
)
from .publisher import (
    CALLS_AT_ONCE,
    DEFAULT_WINDOW,
    Outgoing,
    PipelinedPublisher,
    PublisherBase,
)
from .topology import (
    DeclarationCache,
    DeclareResult,
    QueueSpec,
    declare_dead_letter_queue,
    declare_queue,
    declare_queues,
    inspect_queue,
    inspect_queues,
    purge_queue,
    purge_queues,
    queue_name_problem,
    queues_down,
)

__all__ = [
    "CALLS_AT_ONCE",
    "CONNECTION_ERRORS",
    "DEATH_HEADER",
    "DEFAULT_WINDOW",
    "ENCODE_ERRORS",
    "PERSISTENT",
    "TRANSIENT",
    "AccessRefused",
    "AuthenticationFailed",
    "BrokerError",
    "BrokerUnavailable",
    "ConfirmTimeout",
    "ConsumerTimedOut",
    "DeadLetterer",
    "DeclarationCache",
    "DeclareResult",
    "MessageRefused",
    "MoveResult",
    "NotFound",
    "Outgoing",
    "PipelinedPublisher",
    "PublishInterrupted",
    "PublishNacked",
    "PublisherBase",
    "QueueMismatch",
    "QueueSpec",
    "QueueUnavailable",
    "Unroutable",
    "check_headers",
    "close_quietly",
    "connect",
    "connect_first",
    "connected_node",
    "describe_node",
    "ordered_urls",
    "connection",
    "connection_parameters",
    "copy_properties",
    "declare_dead_letter_queue",
    "declare_queue",
    "declare_queues",
    "default_connection_name",
    "inspect_queue",
    "inspect_queues",
    "error_class",
    "is_queue_down",
    "is_temporary",
    "temporary_error_classes",
    "move_messages",
    "open_channel",
    "properties",
    "purge_queue",
    "purge_queues",
    "queue_name_problem",
    "queues_down",
    "refusal",
    "translate",
    "translating",
]
