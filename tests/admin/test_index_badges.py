"""The app index's badges: dead letters waiting (per queue, to its dead-letter browser)
and queues with ready messages but no consumer (to the queue's page), from one broker
snapshot; nothing when all is well; a note when the broker is down; escaped names."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from messaging.models import Queue
from tests.support.admin import CLOSED_PORT, ESCAPED_SCRIPT, SCRIPT, declared, put, staff, url

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:app_list", args=["messaging"])


def badges(content: str) -> str:
    if 'id="messaging-badges"' not in content:
        return ""
    return content.split('id="messaging-badges"', 1)[1].split("</ul>", 1)[0]


def test_dead_letters_and_unconsumed_queues_are_badges(
    admin_client: Client, queue_name: str, request: pytest.FixtureRequest
) -> None:
    quiet = declared(request.node.make_queue_name(".quiet"), 0, dead_lettering=True)
    waiting = declared(queue_name, 14, dead_lettering=True)
    put(waiting.dead_letter_queue, 2)

    shown = badges(admin_client.get(INDEX).content.decode())

    assert f'href="{url("queue_dead_letters", waiting.pk)}"' in shown
    assert f'2 dead letters: <span class="messaging-ellipsis">{queue_name}</span>' in shown
    assert f'href="{url("queue_change", waiting.pk)}"' in shown
    assert f'14 ready, no consumer: <span class="messaging-ellipsis">{queue_name}<' in shown
    assert quiet.name not in shown


def test_no_badges_when_all_is_well(admin_client: Client, queue_name: str) -> None:
    declared(queue_name, 0, dead_lettering=True)
    assert badges(admin_client.get(INDEX).content.decode()) == ""


def test_the_broker_down_is_a_note_not_an_error(admin_client: Client) -> None:
    Queue.objects.create(name="down.queue")
    with override_settings(MESSAGING=CLOSED_PORT):
        response = admin_client.get(INDEX)
    assert response.status_code == 200
    assert "The broker is unreachable" in badges(response.content.decode())


def test_badges_escape_names_and_need_permission(client: Client) -> None:
    Queue.objects.create(name=SCRIPT)
    client.force_login(staff("view_queue"))
    with override_settings(MESSAGING=CLOSED_PORT):
        content = client.get(INDEX).content.decode()
    assert SCRIPT not in content

    client.force_login(staff("view_message"))
    content = client.get(INDEX).content.decode()
    assert 'id="messaging-badges"' not in content
    assert ESCAPED_SCRIPT not in badges(content)
