"""Exchange and Binding admin and the topology page, against the real broker: live state
and drift, a broker that is down ("unreachable", never a 500), the declare actions and
their permissions, publishing to an exchange row, and the topology SVG (no CDN)."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from messaging import broker
from messaging.models import Binding, Exchange, Message, Queue
from tests.support.admin import CLOSED_PORT, SCRIPT, errors, run_action, shown_messages, staff, url

pytestmark = pytest.mark.django_db(transaction=True)

TOPOLOGY = "admin:messaging_topology"


def build(topo_names: Any) -> tuple[Exchange, Exchange, Queue, Queue]:
    orders = Exchange.objects.create(name=topo_names("orders"), exchange_type="topic")
    audit = Exchange.objects.create(name=topo_names("audit"), exchange_type="fanout")
    created = Queue.objects.create(name=topo_names("created"))
    everything = Queue.objects.create(name=topo_names("all"))
    Binding.objects.create(source=orders, queue=created, routing_key="order.created")
    Binding.objects.create(source=orders, destination_exchange=audit, routing_key="#")
    Binding.objects.create(source=audit, queue=everything)
    return orders, audit, created, everything


def test_exchange_changelist_shows_live_state_and_drift(admin_client: Client, topo_names, channel):
    orders, audit, _created, _all = build(topo_names)
    missing = Exchange.objects.create(name=topo_names("missing"), exchange_type="direct")
    broker.declare_exchanges([orders])
    channel.exchange_declare(audit.name, exchange_type="direct", durable=True)  # drifted
    page = admin_client.get(url("exchange_changelist"))
    assert page.status_code == 200
    rows = {row.name: row.broker_state for row in page.context["cl"].result_list}
    assert rows[orders.name] == broker.MATCHES
    assert rows[missing.name] is None
    assert "type is 'direct' on the broker but 'fanout' was declared" in str(rows[audit.name])
    content = page.content.decode()
    assert "as its row says" in content and "not on broker" in content and "drift" in content
    assert f"?exchange={orders.name}" in content  # publish a message to this exchange
    change = admin_client.get(url("exchange_change", audit.pk))
    assert change.status_code == 200
    assert "drift" in change.content.decode()


def test_binding_changelist_shows_whether_both_ends_exist(admin_client: Client, topo_names):
    orders, _audit, created, _all = build(topo_names)
    broker.declare_exchanges([orders])
    page = admin_client.get(url("binding_changelist"))
    assert page.status_code == 200
    states = {
        (b.source.name, b.destination_label): b.broker_state for b in page.context["cl"].result_list
    }
    assert states[(orders.name, created.name)] is None  # the queue is not declared yet
    broker.declare_queues([created])
    page = admin_client.get(url("binding_changelist"))
    states = {
        (b.source.name, b.destination_label): b.broker_state for b in page.context["cl"].result_list
    }
    assert states[(orders.name, created.name)] == broker.MATCHES


@override_settings(MESSAGING=CLOSED_PORT)
def test_broker_down_shows_unreachable_never_a_500(admin_client: Client, topo_names):
    orders, _audit, _created, _all = build(topo_names)
    for name in ("exchange_changelist", "binding_changelist"):
        page = admin_client.get(url(name))
        assert page.status_code == 200
        assert "unreachable" in page.content.decode()
        assert any("The broker is unreachable" in text for _l, text in shown_messages(page))
    assert admin_client.get(url("exchange_change", orders.pk)).status_code == 200
    page = admin_client.get(reverse(TOPOLOGY), {"exchange": orders.name, "routing_key": "x"})
    assert page.status_code == 200
    assert "The broker is unreachable" in page.content.decode()
    response = run_action(admin_client, "exchange", "declare_on_broker", orders)
    assert response.status_code == 200
    assert errors(response)


def test_declare_actions_declare_exchanges_and_bindings(admin_client: Client, topo_names):
    orders, audit, created, everything = build(topo_names)
    response = run_action(admin_client, "exchange", "declare_on_broker", orders, audit)
    assert not errors(response)
    assert broker.check_exchanges([orders, audit]) == [broker.MATCHES] * 2
    broker.declare_queues([created, everything])
    response = run_action(admin_client, "binding", "declare_on_broker", *Binding.objects.all())
    assert not errors(response), shown_messages(response)
    with broker.connection() as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish(orders.name, "order.created", b"x")
    assert broker.inspect_queues([created.name, everything.name]) == [(1, 0), (1, 0)]


def test_actions_declare_their_permissions(topo_names):
    orders, _audit, _created, _all = build(topo_names)
    viewer = staff("view_exchange", "view_binding")
    client = Client()
    client.force_login(viewer)
    page = client.get(url("exchange_changelist"))
    assert page.status_code == 200
    assert "declare_on_broker" not in page.content.decode()  # needs change permission
    run_action(client, "exchange", "declare_on_broker", orders)
    assert broker.check_exchanges([orders]) == [None]  # nothing was declared
    changer = staff("view_exchange", "change_exchange")
    client.force_login(changer)
    assert "declare_on_broker" in client.get(url("exchange_changelist")).content.decode()


def test_bad_input_in_the_admin_saves_nothing(admin_client: Client, topo_names):
    exchange = Exchange.objects.create(name=topo_names("direct"), exchange_type="direct")
    queue = Queue.objects.create(name=topo_names("q"))
    response = admin_client.post(
        url("exchange_add"), {"name": "amq.mine", "exchange_type": "direct", "arguments": "{}"}
    )
    assert response.status_code == 200
    assert "reserved by the broker" in response.content.decode()
    response = admin_client.post(
        url("exchange_add"), {"name": topo_names("x"), "exchange_type": "fan", "arguments": "{}"}
    )
    assert "Select a valid choice" in response.content.decode()
    response = admin_client.post(
        url("binding_add"),
        {"source": exchange.pk, "queue": queue.pk, "routing_key": "a.#", "arguments": "{}"},
    )
    assert response.status_code == 200
    assert "a direct exchange matches keys literally" in response.content.decode()
    assert Exchange.objects.count() == 1 and not Binding.objects.exists()


def test_compose_to_an_exchange_row(admin_client: Client, topo_names, channel):
    orders, _audit, created, _all = build(topo_names)
    call_command("declarequeues", stdout=io.StringIO())
    page = admin_client.get(url("message_add") + f"?exchange={orders.name}")
    assert f'value="{orders.name}"' in page.content.decode()
    response = admin_client.post(
        url("message_add"),
        {
            "exchange": orders.name,
            "routing_key": "order.created",
            "body_text": "hello",
            "body_format": "text",
            "headers": "{}",
            "persistent": "on",
            "_publish": "Save and publish",
        },
        follow=True,
    )
    assert response.status_code == 200
    message = Message.objects.get()
    assert message.status == Message.Status.PUBLISHED, message.last_error
    assert broker.inspect_queues([created.name]) == [(1, 0)]


def test_topology_page_draws_and_routes_without_cdn(admin_client: Client, topo_names):
    orders, audit, created, everything = build(topo_names)
    broker.declare_queues([created])
    page = admin_client.get(
        reverse(TOPOLOGY), {"exchange": orders.name, "routing_key": "order.created"}
    )
    assert page.status_code == 200
    content = page.content.decode()
    assert content.count('<svg xmlns="http://www.w3.org/2000/svg" class="messaging-topology"') == 1
    for name in (orders.name, audit.name, created.name, everything.name):
        assert f'data-name="{name}"' in content
    assert "0 ready, 0 consumers" in content  # the live depth of the declared queue
    assert page.context["route"].queues == sorted([created.name, everything.name])
    assert content.count("topology-reached") == 2
    assert "cdn" not in re.sub(r'value="[A-Za-z0-9]{32,}"', "", content).lower()
    assert "<script" not in content.split('id="topology-chart"')[1]
    other = admin_client.get(reverse(TOPOLOGY), {"exchange": audit.name, "routing_key": "x"})
    assert other.context["route"].queues == [everything.name]
    miss = admin_client.get(reverse(TOPOLOGY), {"exchange": topo_names("nope"), "routing_key": "k"})
    assert "No Exchange row for" in miss.content.decode()


def test_topology_page_escapes_names_and_needs_permission(admin_client: Client, topo_names):
    exchange = Exchange.objects.create(name=topo_names("e") + SCRIPT, exchange_type="fanout")
    queue = Queue.objects.create(name=topo_names("q"))
    Binding.objects.create(source=exchange, queue=queue, routing_key=SCRIPT)
    content = admin_client.get(reverse(TOPOLOGY)).content.decode()
    assert SCRIPT not in content
    nobody = Client()
    nobody.force_login(staff())
    assert nobody.get(reverse(TOPOLOGY)).status_code == 403


def test_deleting_an_exchange_row_leaves_the_broker_alone(admin_client: Client, topo_names):
    orders, _audit, _created, _all = build(topo_names)
    broker.declare_exchanges([orders])
    response = admin_client.post(url("exchange_delete", orders.pk), {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert any("Only the rows were deleted" in text for _l, text in shown_messages(response))
    assert not Exchange.objects.filter(pk=orders.pk).exists()
    assert not Binding.objects.filter(source__name=orders.name).exists()
    assert broker.check_exchanges([orders.name]) == [broker.MATCHES]  # still on the broker


@override_settings(MESSAGING={"RETRY_DELAY": 1.0, "RETRY_MAX_DELAY": 30.0})
def test_topology_draws_what_the_app_declares_and_links_every_node(
    admin_client: Client, topo_names
):
    orders, audit, created, everything = build(topo_names)
    created.dead_lettering = True
    created.max_attempts = 3
    created.save()
    broker.declare_queues([created])
    delay_queue = f"{created.name}.delay.1000"
    with broker.connection() as conn:
        conn.channel().queue_declare(delay_queue, durable=True)
    try:
        content = admin_client.get(reverse(TOPOLOGY)).content.decode()
    finally:
        with broker.connection() as conn:
            conn.channel().queue_delete(delay_queue)

    chart = content.split('id="topology-chart"', 1)[1]
    # messaging.dlx → <name>.dlq, dashed, the binding labelled with the queue's name.
    assert '<g class="topology-exchange topology-dlx" data-name="messaging.dlx">' in chart
    assert f'<g class="topology-queue topology-dlq" data-name="{created.name}.dlq">' in chart
    assert f"messaging.dlx → {created.name}.dlq: {created.name}" in chart
    # The delay queue the broker has (1 s); the 2 s one was never declared: not drawn.
    assert f'<g class="topology-queue topology-delay" data-name="{delay_queue}">' in chart
    assert f"{created.name}.delay.2000" not in chart
    assert "retry delay 1 s" in chart
    # Every node links to its admin page.
    for exchange in (orders, audit):
        assert f'<a class="topology-link" href="{url("exchange_change", exchange.pk)}">' in chart
    for queue in (created, everything):
        assert f'<a class="topology-link" href="{url("queue_change", queue.pk)}">' in chart
    dead_letters = url("queue_dead_letters", created.pk)
    assert (
        f'<a class="topology-link" href="{dead_letters}"><g class="topology-queue topology-dlq"'
        in chart
    )
    assert chart.count(f'href="{url("queue_change", created.pk)}"') == 2  # the queue, its delay
