"""Cluster policy without a broker: which errors a node loss produces and that they are
temporary (``messaging.broker.errors``), the per-process URL order, the type of derived
queues and the default queue type (``messaging.amqp.queue_types``), and what an outcome
writes to a row (``error_class``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace

import pika.exceptions as pe
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from messaging import conf
from messaging.amqp import queue_types
from messaging.broker import connecting as connecting_module
from messaging.broker import (
    error_class,
    is_queue_down,
    is_temporary,
    ordered_urls,
    temporary_error_classes,
    translate,
)
from messaging.broker.connecting import forget_url_orders
from messaging.broker.queues import QueueSpec
from messaging.exceptions import (
    AccessRefused,
    BrokerUnavailable,
    MessageRefused,
    NotFound,
    QueueMismatch,
    QueueUnavailable,
    Unroutable,
)
from messaging.models import Message
from messaging.publishing.outbox import outcome_fields

pytestmark = pytest.mark.unit

HOME_NODE_DOWN = (
    "NOT_FOUND - home node 'msgc2@localhost' of durable queue 'jobs.dlq' in vhost '/' "
    "is down or inaccessible"
)


def messaging(**values: object) -> override_settings:
    from django.conf import settings

    return override_settings(MESSAGING={**settings.MESSAGING, **values})


# --------------------------------------------------------------------------- translate


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        # A classic queue (or DLQ) whose home node is down: temporary, not "missing".
        (pe.ChannelClosedByBroker(404, HOME_NODE_DOWN), QueueUnavailable),
        (
            pe.ChannelClosedByBroker(
                404, "NOT_FOUND - queue 'q' in vhost '/' process is stopped by supervisor"
            ),
            QueueUnavailable,
        ),
        # A quorum queue without a leader for a moment.
        (
            pe.ChannelClosedByBroker(541, "INTERNAL_ERROR - timeout declaring queue"),
            QueueUnavailable,
        ),
        (pe.ChannelClosedByBroker(541, "INTERNAL_ERROR"), BrokerUnavailable),
        # The node shutting down.
        (
            pe.ConnectionClosedByBroker(
                320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"
            ),
            BrokerUnavailable,
        ),
        (pe.ChannelClosedByBroker(320, "CONNECTION_FORCED - shutdown"), BrokerUnavailable),
        # Connection and channel losses.
        (pe.StreamLostError("Transport indicated EOF"), BrokerUnavailable),
        (pe.ConnectionClosed(320, "CONNECTION_FORCED"), BrokerUnavailable),
        (pe.ChannelWrongStateError("Channel is closed."), BrokerUnavailable),
        (pe.ChannelClosedByClient(200, "Normal shutdown"), BrokerUnavailable),
        (ConnectionResetError(104, "Connection reset by peer"), BrokerUnavailable),
        # Truly the message's or the configuration's fault.
        (pe.ChannelClosedByBroker(404, "NOT_FOUND - no queue 'q' in vhost '/'"), NotFound),
        (pe.ChannelClosedByBroker(404, "NOT_FOUND - no exchange 'x' in vhost '/'"), NotFound),
        (pe.ChannelClosedByBroker(403, "ACCESS_REFUSED - access to queue 'amq.x'"), AccessRefused),
        (
            pe.ChannelClosedByBroker(
                406,
                "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in "
                "vhost '/': received the value 'quorum' of type 'longstr' but current is "
                "none",
            ),
            QueueMismatch,
        ),
    ],
)
def test_node_loss_is_temporary_and_only_real_faults_are_not(exc, cls):
    error = translate(exc)
    assert type(error) is cls, error
    assert is_temporary(error) is cls.temporary
    assert is_temporary(exc) is cls.temporary  # the same answer before translating
    assert "\n" not in str(error)


def test_a_missing_queue_and_a_queue_whose_node_is_down_are_told_apart():
    assert is_queue_down(HOME_NODE_DOWN)
    assert not is_queue_down("NOT_FOUND - no queue 'jobs.dlq' in vhost '/'")
    assert not is_queue_down("NOT_FOUND - no exchange 'messaging.dlx' in vhost '/'")
    # Words of the "node down" texts inside a queue's name say nothing about its node.
    for name in ("jobs.timeout.dlq", "minority-report", "unavailable", "is down"):
        assert not is_queue_down(f"NOT_FOUND - no queue '{name}' in vhost '/'"), name


def test_unroutable_and_refused_messages_stay_failed():
    for error in (Unroutable("unroutable"), MessageRefused("too long"), AccessRefused("no")):
        assert not is_temporary(error)


def test_error_class_names_the_translated_class():
    assert error_class(pe.ChannelClosedByBroker(404, HOME_NODE_DOWN)) == "QueueUnavailable"
    assert error_class(Unroutable("x")) == "Unroutable"
    assert error_class(ConnectionRefusedError(111, "refused")) == "BrokerUnavailable"


def test_temporary_error_classes_are_exactly_the_temporary_ones():
    names = temporary_error_classes()
    assert {"BrokerUnavailable", "QueueUnavailable", "ConfirmTimeout", "PublishNacked"} <= names
    assert not {"Unroutable", "NotFound", "QueueMismatch", "MessageRefused"} & names


# --------------------------------------------------------------------------- outcomes


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_an_outage_leaves_the_row_pending_with_its_error_class():
    outage = translate(pe.ChannelClosedByBroker(404, HOME_NODE_DOWN))
    fields = outcome_fields(outage, attempts=1, now=NOW, user_id=None)
    assert fields["status"] == Message.Status.PENDING
    assert fields["error_class"] == "QueueUnavailable"
    assert fields["next_attempt_at"] > NOW


def test_a_fault_of_the_message_fails_the_row_with_its_error_class():
    fields = outcome_fields(Unroutable("no route"), attempts=1, now=NOW, user_id=None)
    assert fields["status"] == Message.Status.FAILED
    assert fields["error_class"] == "Unroutable"
    published = outcome_fields(None, attempts=2, now=NOW, user_id=None)
    assert published["error_class"] == ""


def test_the_relay_takes_failed_rows_only_when_an_outage_failed_them():
    from messaging.publishing.relay import outage_failed

    condition = str(outage_failed())
    assert "QueueUnavailable" in condition and "BrokerUnavailable" in condition
    assert "'Unroutable'" not in condition


# --------------------------------------------------------------------------- URL order

URLS = [f"amqp://guest:guest@127.0.0.1:{port}/%2F" for port in (5673, 5674, 5675)]


@pytest.fixture
def no_url_orders() -> Iterator[None]:
    """The process starts the test with no URL order kept, and forgets the test's."""
    forget_url_orders()
    yield
    forget_url_orders()


def test_each_process_shuffles_the_url_list_once(no_url_orders, monkeypatch):
    orders = set()
    for pid in range(40):  # 40 "processes"
        monkeypatch.setattr(os, "getpid", lambda pid=pid: 10_000 + pid)
        first = ordered_urls(URLS, shuffle=True)
        assert sorted(first) == sorted(URLS)
        assert ordered_urls(URLS, shuffle=True) == first  # stable within a process
        orders.add(tuple(first))
    assert len({order[0] for order in orders}) == 3  # every node comes first for some


def test_shuffling_can_be_turned_off():
    with messaging(SHUFFLE_BROKER_URLS=False):
        assert ordered_urls(URLS) == URLS
    assert ordered_urls(URLS[:1], shuffle=True) == URLS[:1]


def test_connect_first_tries_the_settings_urls_in_the_process_order(no_url_orders):
    tried: list[str] = []

    def attempt(url: str) -> str:
        tried.append(url)
        raise pe.AMQPConnectionError(ConnectionRefusedError(111, "Connection refused"))

    with messaging(BROKER_URL=URLS), pytest.raises(BrokerUnavailable):
        connecting_module.connect_first(None, attempt)
    assert tried == ordered_urls(URLS)


# --------------------------------------------------------------------------- queue types


def row(queue_type: str) -> SimpleNamespace:
    return SimpleNamespace(name="jobs", queue_type=queue_type)


def test_a_derived_queue_has_the_type_of_its_queue_by_default():
    assert queue_types.derived_queue_type(row("quorum")) == "quorum"
    assert queue_types.derived_queue_type(row("classic")) == "classic"
    spec = QueueSpec(name="jobs", arguments={"x-queue-type": "quorum"})
    assert queue_types.derived_queue_type(spec) == "quorum"
    assert queue_types.derived_queue_type(QueueSpec(name="jobs")) == "classic"
    assert queue_types.derived_queue_arguments(spec) == {"x-queue-type": "quorum"}
    assert queue_types.derived_queue_arguments(row("classic")) == {}


@pytest.mark.parametrize("choice", ["classic", "quorum"])
def test_the_dead_letter_queue_type_setting_overrides(choice):
    with messaging(DEAD_LETTER_QUEUE_TYPE=choice):
        assert queue_types.derived_queue_type(row("quorum")) == choice
        assert queue_types.derived_queue_type(row("classic")) == choice


def test_an_unknown_queue_follows_the_default_queue_type():
    assert queue_types.derived_queue_type(None) == "classic"
    with messaging(DEFAULT_QUEUE_TYPE="quorum"):
        assert queue_types.default_queue_type() == "quorum"
        assert queue_types.derived_queue_type(None) == "quorum"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DEFAULT_QUEUE_TYPE", "stream"),
        ("DEAD_LETTER_QUEUE_TYPE", "lazy"),
        ("SHUFFLE_BROKER_URLS", "yes"),
    ],
)
def test_bad_cluster_settings_name_the_key(key, value):
    with messaging(**{key: value}), pytest.raises(ImproperlyConfigured, match=key):
        conf.get(key)


@pytest.mark.parametrize(
    "key", ["DEFAULT_QUEUE_TYPE", "DEAD_LETTER_QUEUE_TYPE", "SHUFFLE_BROKER_URLS"]
)
def test_manage_check_reports_bad_cluster_settings(key):
    from messaging.checks import check_settings

    with messaging(**{key: 42}):
        errors = check_settings()
    assert [(e.id, key in e.msg) for e in errors] == [("messaging.E007", True)]
    with messaging():
        assert check_settings() == []


def test_classic_queues_are_pointed_out_only_on_a_cluster():
    queues = [row("classic"), SimpleNamespace(name="q2", queue_type="quorum")]
    with messaging(BROKER_URL=URLS[0]):
        assert queue_types.classic_on_cluster(queues) == []
    with messaging(BROKER_URL=URLS):
        assert queue_types.classic_on_cluster(queues) == ["jobs"]


# --------------------------------------------------------------------------- unroutable


class AnsweringPublisher:
    """Stands in for a PipelinedPublisher's ``call_each``: the broker's answers (pika's
    exception objects, as the real one returns them) to passive declares, by name."""

    def __init__(self, answers: dict[str, object] | BaseException) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def call_each(self, method: str, calls: list[dict[str, object]]) -> list[object]:
        assert method == "queue_declare" and all(c["passive"] for c in calls)
        if isinstance(self.answers, BaseException):
            raise self.answers
        self.asked.extend(str(c["queue"]) for c in calls)
        return [self.answers[str(c["queue"])] for c in calls]


def test_an_unroutable_message_to_a_queue_whose_node_is_down_stays_pending():
    from messaging.publishing.outbox import recheck_unroutable

    pub = AnsweringPublisher(
        {
            "down": pe.ChannelClosedByBroker(404, HOME_NODE_DOWN),
            "gone": pe.ChannelClosedByBroker(404, "NOT_FOUND - no queue 'gone' in vhost '/'"),
        }
    )
    returned = Unroutable("unroutable")
    outcomes = recheck_unroutable(
        pub, ["down", "gone", "down", "", "down"], [returned, returned, None, returned, returned]
    )
    assert [type(o).__name__ if o else None for o in outcomes] == [
        "QueueUnavailable",
        "Unroutable",  # the queue really is gone: the message's fault
        None,
        "Unroutable",  # sent to an exchange: no queue to ask about
        "QueueUnavailable",
    ]
    assert pub.asked == ["down", "gone"]  # each queue asked once


def test_unroutable_answers_are_kept_when_nothing_was_returned_or_the_broker_is_gone():
    from messaging.publishing.outbox import recheck_unroutable

    silent = AnsweringPublisher({})
    assert recheck_unroutable(silent, ["q"], [None]) == [None]
    assert silent.asked == []
    gone = AnsweringPublisher(BrokerUnavailable("the connection closed"))
    (outcome,) = recheck_unroutable(gone, ["q"], [Unroutable("unroutable")])
    assert is_temporary(outcome)  # cannot tell now: never failed by an outage


def test_a_nack_from_a_queue_whose_node_is_going_down_is_told_as_that_outage():
    """Stopping a classic queue's home node, the broker may nack a publish (the queue's
    process is gone) before it returns one: either way the row says QueueUnavailable."""
    from messaging.exceptions import PublishNacked
    from messaging.publishing.outbox import recheck_unroutable

    pub = AnsweringPublisher(
        {
            "down": pe.ChannelClosedByBroker(404, HOME_NODE_DOWN),
            "up": pe.ChannelClosedByBroker(404, "NOT_FOUND - no queue 'up' in vhost '/'"),
        }
    )
    nacked = PublishNacked("the broker nacked the message (basic.nack)")
    outcomes = recheck_unroutable(pub, ["down", "up"], [nacked, nacked])
    assert [type(o).__name__ for o in outcomes] == ["QueueUnavailable", "PublishNacked"]
    assert all(is_temporary(o) for o in outcomes)
