"""No silent waiting: a running relay keeps a ``relay@<host>`` row in the Consumer
registry; pending rows older than RELAY_WARNING_AFTER while no relay ran within that time
are a stalled outbox, shown as a banner (the site's /admin/ index, the app index, the
message list, the overview), as the
system check ``messaging.W002``, and on the compose page ("Save" waits for a relay)."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from messaging.checks import check_outbox
from messaging.models import Consumer, Message
from messaging.publishing import relay
from tests.support.admin import pending, staff, url

pytestmark = pytest.mark.django_db

AFTER = 60.0


def old_pending(queue_name: str, seconds: float = 600) -> Message:
    message = pending(queue_name)
    Message.objects.filter(pk=message.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )
    return message


def relay_row(seconds_ago: float) -> Consumer:
    at = timezone.now() - timedelta(seconds=seconds_ago)
    return Consumer.objects.create(
        name=f"{relay.RELAY_PREFIX}{socket.gethostname()}",
        host=socket.gethostname(),
        pid=1,
        queues=[],
        started_at=at,
        last_heartbeat=at,
    )


@override_settings(MESSAGING={"RELAY_WARNING_AFTER": AFTER})
def test_old_pending_rows_and_no_relay_are_a_stall(queue_name: str) -> None:
    assert not relay.outbox_backlog().stalled  # nothing pending
    pending(queue_name)
    backlog = relay.outbox_backlog()
    assert backlog.count == 1 and not backlog.stalled  # young: the relay has time
    old_pending(queue_name)
    backlog = relay.outbox_backlog()
    assert backlog.count == 2 and backlog.age >= 599 and backlog.last_relay is None
    assert backlog.stalled

    relay_row(seconds_ago=5)
    assert not relay.outbox_backlog().stalled  # a relay ran: it is just slow or retrying
    Consumer.objects.update(last_heartbeat=timezone.now() - timedelta(seconds=AFTER * 2))
    assert relay.outbox_backlog().stalled


@override_settings(MESSAGING={"RELAY_WARNING_AFTER": AFTER})
def test_held_rows_wait_for_a_user_not_for_a_relay(queue_name: str) -> None:
    message = old_pending(queue_name)
    Message.objects.filter(pk=message.pk).update(status=Message.Status.HELD)
    assert relay.outbox_backlog().count == 0
    assert not relay.outbox_backlog().stalled


@pytest.mark.django_db(transaction=True)
def test_manage_py_relay_writes_its_heartbeat_row(queue_name: str) -> None:
    message = pending(queue_name)
    relay.run(once=True)
    row = Consumer.objects.get(name__startswith=relay.RELAY_PREFIX)
    assert row.name == f"relay@{socket.gethostname()}"
    assert row.queues == []
    assert row.state == Consumer.State.STOPPED and row.stopped_at is not None
    assert row.processed == 1  # the message it published
    message.refresh_from_db()
    assert message.status == Message.Status.PUBLISHED
    assert relay.last_relay_heartbeat() == row.last_heartbeat


@override_settings(MESSAGING={"RELAY_WARNING_AFTER": AFTER})
def test_the_banner_on_the_indexes_message_list_and_overview(
    admin_client: Client, queue_name: str
) -> None:
    pages = [
        reverse("admin:index"),  # the site-wide /admin/ index too
        reverse("admin:app_list", args=["messaging"]),
        url("message_changelist"),
        reverse("admin:messaging_overview"),
    ]
    for page in pages:
        assert 'id="relay-warning"' not in admin_client.get(page).content.decode(), page

    old_pending(queue_name)
    for page in pages:
        content = admin_client.get(page).content.decode()
        assert 'id="relay-warning"' in content, page
        assert "1 pending message waits to be sent, the oldest for 10 min" in content
        assert "no relay has ever run" in content
        assert "?status__exact=pending" in content

    relay_row(seconds_ago=1)
    for page in pages:
        assert 'id="relay-warning"' not in admin_client.get(page).content.decode(), page


@override_settings(MESSAGING={"RELAY_WARNING_AFTER": AFTER})
def test_the_overview_shows_the_backlog_age(admin_client: Client, queue_name: str) -> None:
    content = admin_client.get(reverse("admin:messaging_overview")).content.decode()
    assert "nothing pending" in content and "no relay has run here" in content

    old_pending(queue_name, seconds=150)
    relay_row(seconds_ago=1)
    content = admin_client.get(reverse("admin:messaging_overview")).content.decode()
    assert '<span id="backlog-age">150 s</span>' in content
    assert "1 pending message</a>" in content
    assert 'id="backlog-relay"' in content and "last relay heartbeat" in content
    assert " s ago)</span>" in content


@override_settings(MESSAGING={"RELAY_WARNING_AFTER": AFTER})
def test_the_banner_needs_permission_to_see_messages(client: Client, queue_name: str) -> None:
    old_pending(queue_name)
    client.force_login(staff("view_queue"))
    content = client.get(reverse("admin:app_list", args=["messaging"])).content.decode()
    assert 'id="relay-warning"' not in content
    content = client.get(reverse("admin:index")).content.decode()
    assert 'id="relay-warning"' not in content and "Queues" in content  # the index itself


@override_settings(MESSAGING={"RELAY_WARNING_AFTER": AFTER})
def test_system_check_w002(queue_name: str) -> None:
    assert check_outbox(databases=["default"]) == []
    old_pending(queue_name)
    assert check_outbox() == []  # not a database run (`manage.py check` alone)
    warnings = check_outbox(databases=["default"])
    assert [w.id for w in warnings] == ["messaging.W002"]
    assert "1 pending message(s) wait to be sent" in warnings[0].msg
    assert "no relay has ever run" in warnings[0].msg
    assert "manage.py relay" in warnings[0].hint
    assert "messaging.W002" in [w.id for w in run_checks(databases=["default"])]

    relay_row(seconds_ago=1)
    assert check_outbox(databases=["default"]) == []


@override_settings(MESSAGING={"RELAY_WARNING_AFTER": AFTER})
def test_the_compose_page_says_what_save_does(client: Client, queue_name: str) -> None:
    add = url("message_add")
    client.force_login(staff("add_message", "view_queue"))
    content = client.get(add).content.decode()
    assert 'id="compose-note"' in content
    assert "Save keeps the message held" in content

    client.force_login(staff("add_message", "view_queue", "publish_message"))
    content = client.get(add).content.decode()
    assert "Save leaves the message pending: a relay (manage.py relay) sends it." in content
    assert "No relay has run in the last 60 s" in content

    relay_row(seconds_ago=1)
    content = client.get(add).content.decode()
    assert "Save leaves the message pending" in content
    assert "No relay has run" not in content
