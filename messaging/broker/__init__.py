"""The one package that talks to pika (with the consumer engine): commands, the admin, the
consumer and the tests go through it. Every name below is importable from here.

- :mod:`.connecting` — pika parameters from a URL and the settings, connection names,
  trying each URL in turn (:func:`connect_first`), :func:`connect` / :func:`connection`.
- :mod:`.errors` — pika's exceptions as :mod:`messaging.exceptions` (:func:`translate`,
  the :func:`translating` block) and which of them are temporary (:func:`is_temporary`).
- :mod:`.message_properties` — AMQP properties of a message and of a dead-letter copy.
- :mod:`.topology` — :class:`QueueSpec`, declaring, inspecting and purging one queue or
  many, and the :class:`DeclarationCache` (once per connection).
- :mod:`.exchanges` — :class:`ExchangeSpec` / :class:`BindingSpec`, declaring exchanges
  and bindings (one, or many over one connection) and checking them without declaring.
- :mod:`.deadletter` — :class:`DeadLetterer` (from a consumer's connection) and
  :func:`move_messages`.
- :mod:`.rpc` — request/reply over direct reply-to (:func:`messaging.call`).
- :mod:`.deadletter` — :class:`DeadLetterer` (from a consumer's connection),
  :func:`move_messages` (all, or given message_ids), :func:`peek_messages` and
  :func:`discard_messages` (the admin's dead-letter browser).
- :mod:`.delay` — :class:`DelayPublisher`: a failed message's copy to its delay queue.
- :mod:`.publisher` — :class:`PipelinedPublisher`, many confirms in flight, built from
  :mod:`.loop` (its connection), :mod:`.confirms` and :mod:`.batch` (publishing) and
  :mod:`.calls` (declarations and other RPCs).
- :mod:`.management` — RabbitMQ's management HTTP API (``MANAGEMENT_URL``): the unacked
  counts AMQP cannot report, every queue of the vhost in one cached request
  (:func:`management.queue_counts`).
- :mod:`.process` — :func:`process_publisher`, the one long-lived publisher of a process
  (threads, fork, reconnect; :mod:`.keeper` services it while idle), and
  :func:`set_publisher_factory`, what it is built from.
"""

from .. import conf  # noqa: F401 - reached as broker.conf by tests (until the seams land)
from ..exceptions import (
    AccessRefused,
    AuthenticationFailed,
    BrokerError,
    BrokerUnavailable,
    ConfirmTimeout,
    ConsumerTimedOut,
    ExchangeMismatch,
    MessageRefused,
    NotFound,
    PublishInterrupted,
    PublishNacked,
    QueueMismatch,
    QueueUnavailable,
    Unroutable,
)
from . import management_api as management  # noqa: F401 - broker.management (old name)
from . import reply_to as rpc  # noqa: F401 - broker.rpc (old name)
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
from .dead_letters import (
    DeadLetterer,
    MoveResult,
    Peeked,
    discard_messages,
    move_messages,
    peek_messages,
)
from .delay_publisher import DelayPublisher
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
from .exchanges import (
    MATCHES,
    BindingSpec,
    ExchangeSpec,
    bindings_of_queues,
    check_exchanges,
    check_queues,
    declare_binding,
    declare_binding_rows,
    declare_bindings,
    declare_exchange,
    declare_exchanges,
    exchange_spec,
)
from .pika_properties import (
    ATTEMPTS_HEADER,
    DEATH_HEADER,
    PERSISTENT,
    RETRY_HEADER,
    TRANSIENT,
    check_headers,
    copy_properties,
    properties,
    reply_properties,
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
from .queues import (
    DeclarationCache,
    DeclareResult,
    QueueSpec,
    declare_dead_letter_queue,
    declare_queue,
    declare_queues,
    inspect_and_compare,
    inspect_queue,
    inspect_queues,
    purge_queue,
    purge_queues,
    queue_name_problem,
    queues_down,
)
from .subscriptions import declare_subscription, missing_exchanges

__all__ = [
    "MATCHES",
    "BindingSpec",
    "ExchangeSpec",
    "bindings_of_queues",
    "check_exchanges",
    "check_queues",
    "declare_binding",
    "declare_binding_rows",
    "declare_bindings",
    "declare_exchange",
    "declare_exchanges",
    "exchange_spec",
    "ATTEMPTS_HEADER",
    "CALLS_AT_ONCE",
    "CONNECTION_ERRORS",
    "DEATH_HEADER",
    "DEFAULT_WINDOW",
    "ENCODE_ERRORS",
    "PERSISTENT",
    "RETRY_HEADER",
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
    "DelayPublisher",
    "MessageRefused",
    "MoveResult",
    "NotFound",
    "Outgoing",
    "Peeked",
    "PipelinedPublisher",
    "PublishInterrupted",
    "PublishNacked",
    "ProcessPublisher",
    "PublisherBase",
    "ExchangeMismatch",
    "PublisherFactory",
    "QueueMismatch",
    "QueueSpec",
    "QueueUnavailable",
    "Unroutable",
    "check_headers",
    "close_process_publisher",
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
    "declare_subscription",
    "default_connection_name",
    "inspect_and_compare",
    "get_publisher_factory",
    "inspect_queue",
    "inspect_queues",
    "error_class",
    "is_queue_down",
    "is_temporary",
    "missing_exchanges",
    "discard_messages",
    "temporary_error_classes",
    "move_messages",
    "peek_messages",
    "open_channel",
    "process_publisher",
    "properties",
    "publisher_connection_name",
    "purge_queue",
    "purge_queues",
    "queue_name_problem",
    "queues_down",
    "refusal",
    "reply_properties",
    "set_publisher_factory",
    "translate",
    "translating",
]
