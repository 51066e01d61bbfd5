"""The one package that talks to pika (with the consumer's I/O side): commands, the admin,
the consumer, publishing and the tests go through it.

The public surface is :data:`__all__`: the process's publisher and what it is built from,
connecting, declaring queues and bindings, moving dead letters and the error rules. Every
other name the package exported before is still importable from here (looked up in its
module on first use, see :data:`_HOMES`); new code imports it from its module:

- :mod:`.connecting` — pika parameters from a URL and the settings, connection names,
  trying each URL in turn (:func:`connect_first`), :func:`connect` / :func:`connection`.
- :mod:`.errors` — pika's exceptions as :mod:`messaging.exceptions` (:func:`translate`,
  the :func:`translating` block) and which of them are temporary (:func:`is_temporary`).
- :mod:`.pika_properties` — AMQP properties of a message and of a dead-letter copy.
- :mod:`.queue_ops` — :class:`QueueSpec`, declaring, inspecting and purging one queue on a
  channel, the :class:`DeclarationCache` (once per connection); :mod:`.queues` — many
  queues at once over one connection (:func:`declare_queues`, :func:`inspect_queues`).
- :mod:`.exchanges` — :class:`ExchangeSpec` / :class:`BindingSpec` from rows, declaring an
  exchange or binding on a channel; :mod:`.declare_many` — many over one connection, and
  checking exchanges and queues without declaring them.
- :mod:`.dead_letters` — :class:`DeadLetterer` (from a consumer's connection),
  :func:`move_messages` (all, or given message_ids), :func:`peek_messages` and
  :func:`discard_messages` (the admin's dead-letter browser).
- :mod:`.delay_publisher` — :class:`DelayPublisher`: a failed message's copy to its delay
  queue.
- :mod:`.reply_to` — request/reply over direct reply-to (:func:`messaging.call`).
- :mod:`.subscriptions` — ``runconsumer --bind``: a server-named queue bound to exchanges.
- :mod:`.publisher` — :class:`PipelinedPublisher`, many confirms in flight, built from
  :mod:`.loop` (its connection), :mod:`.confirms` and :mod:`.batch` (publishing) and
  :mod:`.channel_calls` (declarations and other RPCs); :class:`Outgoing`
  (:mod:`.outgoing`) is one message for it.
- :mod:`.management_api` — RabbitMQ's management HTTP API (``MANAGEMENT_URL``): the
  unacked counts AMQP cannot report, every queue of the vhost in one cached request.
- :mod:`.process` — :func:`process_publisher`, the one long-lived publisher of a process
  (threads, fork, reconnect; :mod:`.keeper` services it while idle), and
  :func:`set_publisher_factory`, what it is built from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..moved import moved_names

if TYPE_CHECKING:
    from .connecting import connect, connection
    from .dead_letters import move_messages
    from .errors import is_temporary, translate, translating
    from .exchanges import BindingSpec, ExchangeSpec, declare_bindings
    from .outgoing import Outgoing
    from .process import (
        ProcessPublisher,
        PublisherFactory,
        close_process_publisher,
        process_publisher,
        set_publisher_factory,
    )
    from .publisher import PipelinedPublisher, PublisherBase
    from .queue_ops import QueueSpec, declare_queue
    from .queues import declare_queues

__all__ = [
    "BindingSpec",
    "ExchangeSpec",
    "Outgoing",
    "PipelinedPublisher",
    "ProcessPublisher",
    "PublisherBase",
    "PublisherFactory",
    "QueueSpec",
    "close_process_publisher",
    "connect",
    "connection",
    "declare_bindings",
    "declare_queue",
    "declare_queues",
    "is_temporary",
    "move_messages",
    "process_publisher",
    "set_publisher_factory",
    "translate",
    "translating",
]

#: Module (relative to this package) → the names it gives this package. A name is
#: imported from its module the first time it is asked for, so importing the package (or
#: any of its modules) imports nothing else.
_MODULES: dict[str, tuple[str, ...]] = {
    ".connecting": (
        "close_quietly",
        "connect",
        "connect_first",
        "connected_node",
        "connection",
        "connection_parameters",
        "default_connection_name",
        "describe_node",
        "open_channel",
        "ordered_urls",
    ),
    ".dead_letters": (
        "DeadLetterer",
        "MoveResult",
        "Peeked",
        "discard_messages",
        "move_messages",
        "peek_messages",
    ),
    ".delay_publisher": ("DelayPublisher",),
    ".errors": (
        "CONNECTION_ERRORS",
        "ENCODE_ERRORS",
        "error_class",
        "is_queue_down",
        "is_temporary",
        "refusal",
        "temporary_error_classes",
        "translate",
        "translating",
    ),
    ".exchanges": (
        "BindingSpec",
        "ExchangeSpec",
        "bindings_of_queues",
        "declare_binding",
        "declare_bindings",
        "declare_exchange",
        "exchange_spec",
    ),
    ".declare_many": (
        "MATCHES",
        "check_exchanges",
        "check_queues",
        "declare_binding_rows",
        "declare_exchanges",
    ),
    ".outgoing": ("Outgoing",),
    ".pika_properties": (
        "ATTEMPTS_HEADER",
        "DEATH_HEADER",
        "PERSISTENT",
        "RETRY_HEADER",
        "TRANSIENT",
        "check_headers",
        "copy_properties",
        "properties",
        "reply_properties",
    ),
    ".process": (
        "ProcessPublisher",
        "PublisherFactory",
        "close_process_publisher",
        "get_publisher_factory",
        "process_publisher",
        "publisher_connection_name",
        "set_publisher_factory",
    ),
    ".publisher": ("CALLS_AT_ONCE", "DEFAULT_WINDOW", "PipelinedPublisher", "PublisherBase"),
    ".queue_ops": (
        "DeclarationCache",
        "DeclareResult",
        "QueueSpec",
        "declare_dead_letter_queue",
        "declare_queue",
        "inspect_queue",
        "purge_queue",
        "queue_name_problem",
    ),
    ".queues": (
        "declare_queues",
        "inspect_and_compare",
        "inspect_queues",
        "purge_queues",
        "queues_down",
    ),
    ".subscriptions": ("declare_subscription", "missing_exchanges"),
    # The broker's errors, as they were re-exported here.
    "messaging.exceptions": (
        "AccessRefused",
        "AuthenticationFailed",
        "BrokerError",
        "BrokerUnavailable",
        "ConfirmTimeout",
        "ConsumerTimedOut",
        "ExchangeMismatch",
        "MessageRefused",
        "NotFound",
        "PublishInterrupted",
        "PublishNacked",
        "QueueMismatch",
        "QueueUnavailable",
        "Unroutable",
    ),
}

#: Old names of modules: ``broker.management`` and ``broker.rpc``.
_MODULE_ALIASES = {"management": ".management_api", "rpc": ".reply_to"}

#: Name → the module it is looked up in.
_HOMES: dict[str, str] = {name: module for module, names in _MODULES.items() for name in names}


__getattr__ = moved_names(__name__, _HOMES, modules=_MODULE_ALIASES, warn=False)


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES, *_MODULE_ALIASES})
