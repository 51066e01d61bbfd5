"""What ``messaging.broker`` exports: a small ``__all__``, every name it exported before
still importable (looked up in its module on first use), and importing the package
imports none of its modules."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from messaging import broker

pytestmark = pytest.mark.unit

#: Everything ``messaging.broker`` exported before its surface was made small.
EARLIER = [
    "ATTEMPTS_HEADER",
    "AccessRefused",
    "AuthenticationFailed",
    "BindingSpec",
    "BrokerError",
    "BrokerUnavailable",
    "CALLS_AT_ONCE",
    "CONNECTION_ERRORS",
    "ConfirmTimeout",
    "ConsumerTimedOut",
    "DEATH_HEADER",
    "DEFAULT_WINDOW",
    "DeadLetterer",
    "DeclarationCache",
    "DeclareResult",
    "DelayPublisher",
    "ENCODE_ERRORS",
    "ExchangeMismatch",
    "ExchangeSpec",
    "MATCHES",
    "MessageRefused",
    "MoveResult",
    "NotFound",
    "Outgoing",
    "PERSISTENT",
    "Peeked",
    "PipelinedPublisher",
    "ProcessPublisher",
    "PublishInterrupted",
    "PublishNacked",
    "PublisherBase",
    "PublisherFactory",
    "QueueMismatch",
    "QueueSpec",
    "QueueUnavailable",
    "RETRY_HEADER",
    "TRANSIENT",
    "Unroutable",
    "bindings_of_queues",
    "check_exchanges",
    "check_headers",
    "check_queues",
    "close_process_publisher",
    "close_quietly",
    "connect",
    "connect_first",
    "connected_node",
    "connection",
    "connection_parameters",
    "copy_properties",
    "declare_binding",
    "declare_binding_rows",
    "declare_bindings",
    "declare_dead_letter_queue",
    "declare_exchange",
    "declare_exchanges",
    "declare_queue",
    "declare_queues",
    "declare_subscription",
    "default_connection_name",
    "describe_node",
    "discard_messages",
    "error_class",
    "exchange_spec",
    "get_publisher_factory",
    "inspect_and_compare",
    "inspect_queue",
    "inspect_queues",
    "is_queue_down",
    "is_temporary",
    "missing_exchanges",
    "move_messages",
    "open_channel",
    "ordered_urls",
    "peek_messages",
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
    "temporary_error_classes",
    "translate",
    "translating",
]


@pytest.mark.parametrize("name", EARLIER)
def test_every_earlier_name_still_imports(name: str) -> None:
    value = getattr(broker, name)
    assert value is not None
    exec(f"from messaging.broker import {name}", {})  # the import statement itself


def test_the_old_module_names_are_the_modules() -> None:
    assert broker.management is importlib.import_module("messaging.broker.management_api")
    assert broker.rpc is importlib.import_module("messaging.broker.reply_to")


def test_the_surface_is_small_and_every_name_of_it_imports() -> None:
    assert len(broker.__all__) <= 24
    for name in broker.__all__:
        assert getattr(broker, name) is not None
    with pytest.raises(AttributeError):
        broker.conf  # noqa: B018 - gone: tests read messaging.conf


def test_importing_the_package_imports_none_of_its_modules() -> None:
    code = (
        "import sys, messaging.broker; "
        "print(sorted(m for m in sys.modules if m.startswith('messaging.broker.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
