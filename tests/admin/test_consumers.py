"""Consumer admin: the runconsumer registry, read-only, with a "lost" status."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from messaging.admin import filter_status
from messaging.models import Consumer
from tests.support.admin import ESCAPED_SCRIPT, SCRIPT, staff, url

pytestmark = pytest.mark.django_db


def consumer(name: str, *, silent: float = 0, state: str = "running", **kw: Any) -> Consumer:
    now = timezone.now()
    values: dict[str, Any] = {
        "host": "host-a",
        "pid": 1234,
        "queues": ["orders", "emails"],
        "prefetch": 10,
        "started_at": now - timedelta(hours=1),
        "last_heartbeat": now - timedelta(seconds=silent),
        "processed": 42,
        "failed": 3,
        "state": state,
    }
    values.update(kw)
    return Consumer.objects.create(name=name, **values)


@pytest.fixture
def registry() -> dict[str, Consumer]:
    # CONSUMER_HEARTBEAT_INTERVAL defaults to 5 s: silent for more than 15 s is lost.
    return {
        "live": consumer("live", silent=1),
        "lost": consumer("lost", silent=60),
        "stopping": consumer("stopping", silent=1, state="stopping"),
        "stuck": consumer("stuck", silent=60, state="stopping"),
        "stopped": consumer("stopped", silent=3600, state="stopped", stopped_at=timezone.now()),
    }


def test_list_shows_every_consumer_with_its_status(
    admin_client: Client, registry: dict[str, Consumer]
) -> None:
    page = admin_client.get(url("consumer_changelist"))

    assert page.status_code == 200
    content = page.content.decode()
    for name, status in [
        ("live", "running"),
        ("lost", "lost"),
        ("stopping", "stopping"),
        ("stuck", "lost"),
        ("stopped", "stopped"),
    ]:
        assert registry[name].status == status
        assert f'class="messaging-consumer-{status}"' in content
    assert "orders, emails" in content
    assert "host-a" in content


@pytest.mark.parametrize(
    ("status", "names"),
    [
        ("running", {"live"}),
        ("lost", {"lost", "stuck"}),
        ("stopping", {"stopping"}),
        ("stopped", {"stopped"}),
    ],
)
def test_status_filter(
    admin_client: Client, registry: dict[str, Consumer], status: str, names: set[str]
) -> None:
    page = admin_client.get(url("consumer_changelist") + f"?status={status}")

    assert page.status_code == 200
    assert {c.name for c in page.context["cl"].result_list} == names
    assert {c.name for c in filter_status(Consumer.objects.all(), status)} == names
    assert all(c.status == status for c in page.context["cl"].result_list)


def test_lost_follows_the_heartbeat_interval(
    admin_client: Client, registry: dict[str, Consumer]
) -> None:
    with override_settings(MESSAGING={"CONSUMER_HEARTBEAT_INTERVAL": 60}):
        page = admin_client.get(url("consumer_changelist") + "?status=lost")
    assert {c.name for c in page.context["cl"].result_list} == set()


def test_consumers_are_read_only(admin_client: Client, registry: dict[str, Consumer]) -> None:
    row = registry["live"]

    assert admin_client.get(url("consumer_add")).status_code == 403
    page = admin_client.get(url("consumer_change", row.pk))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert admin_client.post(url("consumer_change", row.pk), {"name": "x"}).status_code == 403
    row.refresh_from_db()
    assert row.name == "live"


def test_consumer_fields_are_escaped(admin_client: Client) -> None:
    row = consumer(SCRIPT, last_error=SCRIPT, queues=[SCRIPT])

    for page in (url("consumer_changelist"), url("consumer_change", row.pk)):
        content = admin_client.get(page).content.decode()
        assert SCRIPT not in content
        assert ESCAPED_SCRIPT in content


def test_view_permission_is_enough_to_read(client: Client, registry: dict[str, Consumer]) -> None:
    client.force_login(staff("view_consumer"))
    assert client.get(url("consumer_changelist")).status_code == 200
    client.force_login(staff("view_queue"))
    assert client.get(url("consumer_changelist")).status_code == 403
