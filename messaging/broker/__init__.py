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
- :mod:`.process` — :func:`process_publisher`, the one long-lived publisher of a process
  (threads, fork, reconnect; :mod:`.keeper` services it while idle), and
  :func:`set_publisher_factory`, what it is built from.
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
    Unroutable,
)
from .connecting import (
    close_quietly,
    connect,
    connect_first,
    connection,
    connection_parameters,
    default_connection_name,
    open_channel,
)
from .deadletter import DeadLetterer, MoveResult, move_messages
from .errors import (
    CONNECTION_ERRORS,
    ENCODE_ERRORS,
    is_temporary,
    refusal,
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
from .process import (
    ProcessPublisher,
    PublisherFactory,
    close_process_publisher,
    get_publisher_factory,
    process_publisher,
    publisher_connection_name,
    set_publisher_factory,
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
    "ProcessPublisher",
    "PublisherBase",
    "PublisherFactory",
    "QueueMismatch",
    "QueueSpec",
    "Unroutable",
    "check_headers",
    "close_process_publisher",
    "close_quietly",
    "connect",
    "connect_first",
    "connection",
    "connection_parameters",
    "copy_properties",
    "declare_dead_letter_queue",
    "declare_queue",
    "declare_queues",
    "default_connection_name",
    "get_publisher_factory",
    "inspect_queue",
    "inspect_queues",
    "is_temporary",
    "move_messages",
    "open_channel",
    "process_publisher",
    "properties",
    "publisher_connection_name",
    "purge_queue",
    "purge_queues",
    "queue_name_problem",
    "refusal",
    "set_publisher_factory",
    "translate",
    "translating",
]
