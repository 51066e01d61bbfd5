"""Unacked counts on the queue list and the overview, from RabbitMQ's real management API.

CI's broker (5672) has no management plugin, so this module starts a node of its own
with ``rabbitmq_management``: ``msgm1@localhost``, AMQP on 127.0.0.1:5677, the API on
15677, Erlang distribution on 25677 (a :class:`tests.support.rabbitnode.Node`, config and data in
a temporary directory, stopped in ``finally`` when the module is done), holding
:data:`LOCK_FILE` meanwhile so two test runs on one machine take turns. Without
``rabbitmq-server`` these tests are skipped, as the cluster suite is. For development,
``MESSAGING_TEST_MANAGEMENT="AMQP_URL MANAGEMENT_URL"`` points them at a running node
with the plugin instead.

A consumer that holds N deliveries without acking them is a real pika channel
(``basic_consume``, prefetch N, no ack) kept open while the pages are fetched.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pytest
from django.test import Client
from django.urls import reverse

from messaging import broker
from messaging.broker import management_api as management
from messaging.models import Queue, dead_letter_queue_name
from tests.support.admin import url
from tests.support.counting_proxy import proxied
from tests.support.rabbitnode import (
    Node,
    give_to_rabbitmq,
    held_lock,
    port_open,
    rabbitmq_installed,
    reclaim,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db

#: ``short name, AMQP port, distribution port, management port`` of the module's node.
NODE = ("msgm1", 5677, 25677, 15677)
LOCK_FILE = Path(tempfile.gettempdir()) / "messaging-management-node.lock"
LOCK_WAIT = 600
#: ``"AMQP_URL MANAGEMENT_URL"`` of a running node with the plugin (development only).
GIVEN_NODE = "MESSAGING_TEST_MANAGEMENT"
OVERVIEW = "admin:messaging_overview"


@dataclass(frozen=True)
class ManagementBroker:
    url: str
    management_url: str


@pytest.fixture(scope="module")
def management_broker() -> Iterator[ManagementBroker]:
    """A RabbitMQ with the management plugin (see the module docstring)."""
    given = os.environ.get(GIVEN_NODE)
    if given:
        amqp_url, management_url = given.split()
        yield ManagementBroker(amqp_url, management_url)
        return
    if not rabbitmq_installed():
        pytest.skip("rabbitmq-server is not installed: these tests run their own node")
    with held_lock(LOCK_FILE, LOCK_WAIT):
        yield from _run_node()


def _run_node() -> Iterator[ManagementBroker]:
    short, port, dist_port, management_port = NODE
    base = Path(tempfile.mkdtemp(prefix="messaging-management-"))
    base.chmod(0o755)
    node = Node(short, port, dist_port, base / short, management_port=management_port)
    reclaim(node, "the unacked tests need 5677 free")
    if port_open(management_port):
        pytest.fail(f"port {management_port} is taken: the unacked tests need it free")
    node.prepare()
    give_to_rabbitmq(base)
    try:
        node.start()
        request = management.api_request(node.management_url, "/")
        wait_for(
            lambda: management.fetch_queues(request).available,
            60,
            "the management API",
            interval=0.2,
        )
        yield ManagementBroker(node.url, node.management_url)
    finally:
        node.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def on_node(management_broker: ManagementBroker, settings: Any) -> Iterator[Callable[..., None]]:
    """``on_node(**messaging)``: MESSAGING's BROKER_URL is the node, MANAGEMENT_URL its API
    unless overridden (``MANAGEMENT_URL=None`` to unset); the answer cache is cleared."""

    def use(**overrides: Any) -> None:
        values = {
            **settings.MESSAGING,
            "BROKER_URL": management_broker.url,
            "MANAGEMENT_URL": management_broker.management_url,
            **overrides,
        }
        settings.MESSAGING = {k: v for k, v in values.items() if v is not None}
        management.clear_cache()

    use()
    yield use
    management.clear_cache()


@pytest.fixture
def queues(management_broker: ManagementBroker) -> Iterator[Callable[[int], list[str]]]:
    """``queues(n)``: n Queue rows declared on the node (with their ``.dlq``); both are
    deleted from it afterwards."""
    names: list[str] = []

    def make(count: int) -> list[str]:
        made = [f"test.unacked.{uuid.uuid4().hex[:8]}" for _ in range(count)]
        rows = [Queue.objects.create(name=name) for name in made]
        assert broker.declare_queues(rows).declared == made
        names.extend(made)
        return made

    yield make
    with _connection(management_broker.url) as conn:
        for name in names:
            conn.channel().queue_delete(name)
            conn.channel().queue_delete(dead_letter_queue_name(name))


@contextmanager
def _connection(amqp_url: str) -> Iterator[pika.BlockingConnection]:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        yield conn
    finally:
        if conn.is_open:
            conn.close()


def put(amqp_url: str, queue: str, count: int) -> None:
    with _connection(amqp_url) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        for index in range(count):
            channel.basic_publish("", queue, f"m{index}".encode())


@contextmanager
def holding(amqp_url: str, queue: str, count: int) -> Iterator[None]:
    """A consumer holding ``count`` deliveries of ``queue`` unacked for the block."""
    with _connection(amqp_url) as conn:
        channel = conn.channel()
        channel.basic_qos(prefetch_count=count)
        held: list[int] = []
        channel.basic_consume(
            queue, lambda _ch, method, _props, _body: held.append(method.delivery_tag)
        )
        deadline = time.monotonic() + 20
        while len(held) < count and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.1)
        assert len(held) == count
        yield


def reported(broker_: ManagementBroker, queue: str, unacked: int) -> None:
    """Wait until the API's statistics show ``unacked`` for ``queue`` (every 500 ms on the
    module's node), then forget cached answers so the pages ask afresh."""
    request = management.api_request(broker_.management_url, "/")
    wait_for(
        lambda: management.fetch_queues(request).unacked(queue) == unacked,
        30,
        f"the management API to report {unacked} unacked in {queue}",
        interval=0.2,
    )
    management.clear_cache()


@pytest.fixture
def api_calls(management_broker: ManagementBroker, on_node) -> Iterator[list[str]]:
    """The request line (``GET /api/queues/%2F?columns=… HTTP/1.1``) of every request the
    app sends to the management API during the test: ``MANAGEMENT_URL`` leads through a
    :class:`~tests.support.counting_proxy.CountingProxy`, and urllib opens one connection
    per request (the test's own :func:`reported` asks the API directly, uncounted)."""
    with proxied(management_broker.management_url) as (through, proxy):
        on_node(MANAGEMENT_URL=through)
        yield proxy.first_lines


def changelist_row(content: str, name: str) -> str:
    """The queue list's ``<tr>`` of queue ``name``."""
    (row,) = [r for r in content.split("<tr")[1:] if f">{name}</a>" in r]
    return row


def cell(row: str, field: str) -> str:
    match = re.search(rf'<td class="field-{field}">(.*?)</td>', row, re.S)
    assert match, row
    return match.group(1)


def overview_cell(content: str, name: str, css: str) -> str:
    row = content.split(f'data-queue="{name}"', 1)[1].split("</tr>", 1)[0]
    match = re.search(rf'<td class="num {css}">(.*?)</td>', row, re.S)
    assert match, row
    return match.group(1)


# --------------------------------------------------------------------------- tests


def test_a_consumer_holding_messages_shows_as_unacked_on_both_pages(
    admin_client: Client, management_broker: ManagementBroker, on_node, queues, api_calls
) -> None:
    busy, idle = queues(2)
    put(management_broker.url, busy, 5)

    with holding(management_broker.url, busy, 3):
        reported(management_broker, busy, 3)
        api_calls.clear()
        page = admin_client.get(url("queue_changelist"))
        list_calls = list(api_calls)
        management.clear_cache()
        overview = admin_client.get(reverse(OVERVIEW))

    assert page.status_code == 200
    content = page.content.decode()
    assert cell(changelist_row(content, busy), "unacked") == "3"
    assert cell(changelist_row(content, busy), "ready") == "2"  # from AMQP, beside it
    assert cell(changelist_row(content, busy), "consumers") == "1"
    assert cell(changelist_row(content, idle), "unacked") == "0"
    assert "Unacked counts are missing" not in content
    assert len(list_calls) == 1  # one request for the whole page, not one per queue
    method, target, _version = list_calls[0].split(" ")
    assert method == "GET"
    assert target.split("?")[0].endswith("/api/queues/%2F")

    assert overview.status_code == 200
    text = overview.content.decode()
    assert overview_cell(text, busy, "unacked") == "3"
    assert overview_cell(text, idle, "unacked") == "0"
    assert overview_cell(text, busy, "ready") == "2"
    assert '<span id="total-unacked">3</span>' in text
    assert '<span id="total-ready">2</span>' in text
    assert len(api_calls) == 2  # the overview asked once too
    (stats,) = [r["stats"] for r in overview.context["rows"] if r["stats"].name == busy]
    assert stats.unacked == 3


def test_the_change_page_says_how_many_are_unacked(
    admin_client: Client, management_broker: ManagementBroker, on_node, queues
) -> None:
    (name,) = queues(1)
    put(management_broker.url, name, 2)

    with holding(management_broker.url, name, 2):
        reported(management_broker, name, 2)
        page = admin_client.get(url("queue_change", Queue.objects.get(name=name).pk))

    assert "0 ready messages, 1 consumer, 2 unacked" in page.content.decode()


def test_without_management_url_unacked_is_a_dash_and_no_call_is_made(
    admin_client: Client, management_broker: ManagementBroker, on_node, queues, api_calls
) -> None:
    on_node(MANAGEMENT_URL=None)
    (name,) = queues(1)
    put(management_broker.url, name, 3)

    with holding(management_broker.url, name, 2):
        page = admin_client.get(url("queue_changelist"))
        overview = admin_client.get(reverse(OVERVIEW))

    assert page.status_code == overview.status_code == 200
    row = changelist_row(page.content.decode(), name)
    assert cell(row, "ready") == "1"
    unacked = cell(row, "unacked")
    assert ">—</span>" in unacked
    assert "MANAGEMENT_URL" in unacked  # the tooltip says what to set
    assert "Unacked counts are missing" not in page.content.decode()  # no nagging
    text = overview.content.decode()
    assert ">—</span>" in overview_cell(text, name, "unacked")
    assert "MANAGEMENT_URL" in overview_cell(text, name, "unacked")
    assert 'id="unacked-error"' not in text
    assert api_calls == []


@pytest.mark.parametrize(
    ("api", "reason"),
    [
        pytest.param("http://guest:guest@127.0.0.1:1/", "connection refused", id="closed-port"),
        # The node's AMQP port: it answers, but not in HTTP.
        pytest.param("http://guest:guest@127.0.0.1:{amqp}/", "port?", id="amqp-port"),
        pytest.param(
            "http://guest:Wrong-Pa55@{api}/", "HTTP 401 Unauthorized", id="wrong-password"
        ),
    ],
)
def test_an_api_that_does_not_answer_gives_a_dash_and_the_reason(
    admin_client: Client,
    management_broker: ManagementBroker,
    on_node,
    queues,
    api: str,
    reason: str,
) -> None:
    amqp_port = pika.URLParameters(management_broker.url).port
    api_host = management_broker.management_url.split("@", 1)[1].strip("/")
    on_node(MANAGEMENT_URL=api.format(amqp=amqp_port, api=api_host))
    (name,) = queues(1)
    put(management_broker.url, name, 2)

    started = time.monotonic()
    page = admin_client.get(url("queue_changelist"))
    overview = admin_client.get(reverse(OVERVIEW))

    assert time.monotonic() - started < 2 * management.TIMEOUT + 3
    assert page.status_code == overview.status_code == 200
    content = page.content.decode()
    row = changelist_row(content, name)
    assert cell(row, "ready") == "2"  # AMQP still answers
    assert ">—</span>" in cell(row, "unacked")
    assert reason in cell(row, "unacked")  # the tooltip
    assert "Unacked counts are missing: the management API did not answer" in content
    text = overview.content.decode()
    assert ">—</span>" in overview_cell(text, name, "unacked")
    assert 'id="unacked-error"' in text
    assert reason in text.split('id="unacked-error"', 1)[1].split("</li>", 1)[0]
    assert "Wrong-Pa55" not in content + text
