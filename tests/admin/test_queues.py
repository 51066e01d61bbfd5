"""Queue admin against the real broker: live state over one connection, purge with a
confirmation page, replaying dead letters, the publish link, deleting rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib import messages
from django.test import Client, override_settings

from messaging import broker
from messaging.admin import purge_selected, replay_selected
from messaging.models import Queue
from tests.support.admin import (
    CLOSED_PORT,
    SCRIPT,
    declared,
    errors,
    purge,
    put,
    run_action,
    shown_messages,
    staff,
    url,
)
from tests.support.counting_proxy import counted_connections
from tests.support.rabbitmq import queue_depth

pytestmark = pytest.mark.django_db


@pytest.fixture
def connections(settings: Any) -> Iterator[list[Any]]:
    """Every broker connection (blocking or asynchronous) opened during the test, as the
    proxy that BROKER_URL leads through saw them."""
    with counted_connections(settings) as opened:
        yield opened


# --------------------------------------------------------------------------- live state


def test_changelist_shows_live_state_over_one_connection(
    admin_client: Client, queue_name: str, request: pytest.FixtureRequest, connections: list
) -> None:
    full = declared(queue_name, 3)
    put(full.dead_letter_queue, 2)
    empty = declared(request.node.make_queue_name(), dead_lettering=False)
    missing = Queue.objects.create(name=request.node.make_queue_name())
    with broker.connection() as conn:  # a consumer on ``empty``
        conn.channel().basic_consume(empty.name, lambda *a: None)
        connections.clear()

        page = admin_client.get(url("queue_changelist"))

    assert page.status_code == 200
    assert len(connections) == 1  # one connection for the whole page
    rows = {row.name: row for row in page.context["cl"].result_list}
    assert rows[full.name].broker_state == (3, 0)
    assert rows[full.name].dlq_state == (2, 0)
    assert rows[empty.name].broker_state == (0, 1)
    assert not hasattr(rows[empty.name], "dlq_state")  # dead-lettering off: no .dlq
    assert rows[missing.name].broker_state is None  # the 404 did not spoil the rest
    content = page.content.decode()
    assert "not on broker" in content
    assert ">unreachable<" not in content


def test_changelist_with_broker_down_says_unreachable(admin_client: Client) -> None:
    Queue.objects.create(name="down.queue")

    with override_settings(MESSAGING=CLOSED_PORT):
        page = admin_client.get(url("queue_changelist"))

    assert page.status_code == 200
    content = page.content.decode()
    assert 'class="messaging-unreachable">unreachable<' in content
    (warning,) = [text for level, text in shown_messages(page) if level == messages.WARNING]
    assert "broker is unreachable" in warning
    assert "cannot reach the broker" in warning


def test_action_posts_do_not_ask_the_broker_for_the_list(
    admin_client: Client, queue_name: str, connections: list
) -> None:
    row = declared(queue_name)
    connections.clear()

    admin_client.post(
        url("queue_changelist"),
        {"action": "declare_on_broker", "_selected_action": [str(row.pk)]},
    )

    assert len(connections) == 1  # the declare itself, not the list


def test_change_page_shows_the_queue_on_the_broker(admin_client: Client, queue_name: str) -> None:
    row = declared(queue_name, 2)
    put(row.dead_letter_queue, 1)

    content = admin_client.get(url("queue_change", row.pk)).content.decode()
    assert "2 ready messages, 0 consumers; 1 in " in content

    with override_settings(MESSAGING=CLOSED_PORT):
        page = admin_client.get(url("queue_change", row.pk))
    assert page.status_code == 200
    assert "unreachable: cannot reach the broker" in page.content.decode()


def test_queue_names_are_escaped(admin_client: Client) -> None:
    Queue.objects.create(name=SCRIPT)

    with override_settings(MESSAGING=CLOSED_PORT):
        content = admin_client.get(url("queue_changelist")).content.decode()

    assert SCRIPT not in content


# --------------------------------------------------------------------------- publish link


def test_publish_link_opens_compose_form_with_queue_preselected(
    admin_client: Client, client: Client
) -> None:
    row = Queue.objects.create(name="link.queue")
    add = url("message_add") + f"?queue={row.pk}"

    with override_settings(MESSAGING=CLOSED_PORT):
        content = admin_client.get(url("queue_changelist")).content.decode()
    assert f'href="{add}"' in content
    form = admin_client.get(add).context["adminform"].form
    assert str(form["queue"].value()) == str(row.pk)

    client.force_login(staff("view_queue", "view_message"))  # may not add messages
    with override_settings(MESSAGING=CLOSED_PORT):
        content = client.get(url("queue_changelist")).content.decode()
    assert "Publish a message" not in content


# --------------------------------------------------------------------------- declare


def test_declare_reports_drift_with_what_to_do(admin_client: Client, queue_name: str) -> None:
    with broker.connection() as conn:
        conn.channel().queue_declare(queue_name, durable=True)
    row = Queue.objects.create(name=queue_name, arguments={"x-max-length": 10})

    response = run_action(admin_client, "queue", "declare_on_broker", row)

    (error,) = errors(response)
    assert f"Queue “{queue_name}” differs on the broker" in error
    assert "x-max-length" in error
    assert "Nothing was changed" in error


# --------------------------------------------------------------------------- purge


def test_purge_asks_for_confirmation_stating_the_count(
    admin_client: Client, queue_name: str, request: pytest.FixtureRequest
) -> None:
    row = declared(queue_name, 3)
    other = declared(request.node.make_queue_name(), 1)

    page = purge(admin_client, row, other, confirm=False)

    assert page.status_code == 200
    assert [t.name for t in page.templates][0] == "admin/messaging/queue/purge_confirmation.html"
    content = page.content.decode()
    assert "4 ready messages will be dropped" in content
    assert queue_depth(queue_name) == 3  # nothing dropped yet
    assert 'name="post" value="yes"' in content
    assert "csrfmiddlewaretoken" in content

    done = purge(admin_client, row, other, confirm=True)

    assert queue_depth(queue_name) == 0
    assert queue_depth(other.name) == 0
    shown = shown_messages(done)
    assert (messages.SUCCESS, f"Queue “{queue_name}”: 3 messages dropped.") in shown
    assert (messages.SUCCESS, f"Queue “{other.name}”: 1 message dropped.") in shown


def test_purge_of_a_queue_missing_on_the_broker(admin_client: Client, queue_name: str) -> None:
    row = Queue.objects.create(name=queue_name)

    page = purge(admin_client, row, confirm=False)
    assert "not on the broker: nothing to purge" in page.content.decode()
    assert "0 ready messages will be dropped" in page.content.decode()

    done = purge(admin_client, row, confirm=True)
    assert (
        messages.WARNING,
        f"Queue “{queue_name}” is not on the broker: nothing to purge.",
    ) in shown_messages(done)
    assert queue_depth(queue_name) is None  # purge never creates the queue


def test_purge_with_broker_down(admin_client: Client, queue_name: str) -> None:
    row = declared(queue_name, 2)

    with override_settings(MESSAGING=CLOSED_PORT):
        page = purge(admin_client, row, confirm=False)
        assert page.status_code == 200
        content = page.content.decode()
        assert "cannot be asked how many messages would be dropped" in content
        assert 'name="post"' not in content  # no way to confirm blind

        done = purge(admin_client, row, confirm=True)

    (error,) = errors(done)
    assert "1 queue not purged: cannot reach the broker" in error
    assert queue_depth(queue_name) == 2


def test_purge_needs_the_purge_permission(client: Client, queue_name: str) -> None:
    row = declared(queue_name, 2)
    client.force_login(staff("view_queue", "change_queue", "delete_queue", "publish_message"))

    page = client.get(url("queue_changelist"))
    assert page.status_code == 200
    assert "Purge on broker" not in page.content.decode()

    asked = purge(client, row, confirm=False)
    forged = purge(client, row, confirm=True)

    for response in (asked, forged):
        assert response.status_code == 200
        assert "purge_confirmation" not in [t.name for t in response.templates][0]
    assert queue_depth(queue_name) == 2


def test_purge_permission_shows_the_action(client: Client, queue_name: str) -> None:
    row = declared(queue_name, 1)
    client.force_login(staff("view_queue", "purge_queue"))

    assert "Purge on broker" in client.get(url("queue_changelist")).content.decode()
    purge(client, row, confirm=True)

    assert queue_depth(queue_name) == 0


def test_purge_selected_works_without_a_request(
    queue_name: str, request: pytest.FixtureRequest
) -> None:
    declared(queue_name, 2)
    missing = request.node.make_queue_name()

    result = purge_selected([missing, queue_name])

    assert result.purged == {queue_name: 2}
    assert result.missing == [missing]
    assert result.error is None
    with override_settings(MESSAGING=CLOSED_PORT):
        down = purge_selected([queue_name])
    assert down.not_purged == [queue_name]
    assert "cannot reach the broker" in str(down.error)


# --------------------------------------------------------------------------- replay


def test_replay_moves_dead_letters_back(admin_client: Client, queue_name: str) -> None:
    row = declared(queue_name)
    put(row.dead_letter_queue, 2)

    response = run_action(admin_client, "queue", "replay_dead_letters", row)

    assert response.status_code == 200
    assert (
        messages.SUCCESS,
        f"Queue “{queue_name}”: 2 dead letters moved back.",
    ) in shown_messages(response)
    assert queue_depth(queue_name) == 2
    assert queue_depth(row.dead_letter_queue) == 0


def test_replay_skips_queues_without_a_dead_letter_queue(
    admin_client: Client, queue_name: str
) -> None:
    row = declared(queue_name, dead_lettering=False)

    response = run_action(admin_client, "queue", "replay_dead_letters", row)

    (warning,) = [t for level, t in shown_messages(response) if level == messages.WARNING]
    assert "has no dead-letter queue managed by this app" in warning


def test_replay_reports_broker_errors(admin_client: Client, queue_name: str) -> None:
    row = Queue.objects.create(name=queue_name)

    with override_settings(MESSAGING=CLOSED_PORT):
        response = run_action(admin_client, "queue", "replay_dead_letters", row)
    (error,) = errors(response)
    assert f"Dead letters of “{queue_name}” not replayed: cannot reach the broker" in error

    outcome = replay_selected([row])  # the queue is not on the broker
    assert queue_name in outcome.failed


def test_replay_needs_the_publish_permission(client: Client, queue_name: str) -> None:
    row = declared(queue_name)
    put(row.dead_letter_queue, 1)
    client.force_login(staff("view_queue", "change_queue", "purge_queue"))

    assert "Replay dead letters" not in client.get(url("queue_changelist")).content.decode()
    forged = run_action(client, "queue", "replay_dead_letters", row)

    assert forged.status_code == 200
    assert queue_depth(row.dead_letter_queue) == 1
    assert queue_depth(queue_name) == 0

    client.force_login(staff("view_queue", "publish_message"))
    assert "Replay dead letters" in client.get(url("queue_changelist")).content.decode()


# --------------------------------------------------------------------------- deleting


def test_delete_confirmation_says_the_broker_queue_stays(
    admin_client: Client, queue_name: str
) -> None:
    row = declared(queue_name, 1)

    page = admin_client.get(url("queue_delete", row.pk))
    assert "This deletes the row only" in page.content.decode()
    selected = admin_client.post(
        url("queue_changelist"),
        {"action": "delete_selected", "_selected_action": [str(row.pk)]},
    )
    assert "This deletes the rows only" in selected.content.decode()

    done = admin_client.post(url("queue_delete", row.pk), {"post": "yes"}, follow=True)

    assert not Queue.objects.exists()
    assert queue_depth(queue_name) == 1
    assert any(
        "Only the row was deleted" in text and queue_name in text
        for _level, text in shown_messages(done)
    )


def test_actions_need_the_csrf_token(admin_user: Any, queue_name: str) -> None:
    row = declared(queue_name, 2)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    forged = client.post(
        url("queue_changelist"),
        {"action": "purge_queues", "_selected_action": [str(row.pk)], "post": "yes"},
    )

    assert forged.status_code == 403
    assert queue_depth(queue_name) == 2


# --------------------------------------------------------------------------- the queue's page


def test_help_texts_are_shown_as_text(admin_client: Client) -> None:
    row = Queue.objects.create(name="help.texts")
    for page in (url("queue_add"), url("queue_change", row.pk)):
        content = admin_client.get(page).content.decode()
        assert "so that &lt;name&gt;.dlq fits" in content
        assert "Declare &lt;name&gt;.dlq;" in content
        assert "<name>" not in content


def test_the_queue_page_has_its_broker_state_on_top_with_links(
    admin_client: Client, queue_name: str
) -> None:
    row = declared(queue_name, 2, dead_lettering=True)
    content = admin_client.get(url("queue_change", row.pk)).content.decode()
    state = content.index('id="queue-broker-state"')
    assert state < content.index('id="queue_form"')  # above the form
    assert "2 ready messages, 0 consumers; 0 in " in content
    assert f'href="{url("queue_dead_letters", row.pk)}" id="queue-dead-letters"' in content
    assert f'href="{url("message_changelist")}?queue__id__exact={row.pk}"' in content
    assert f"{url('receipt_changelist')}?queue_name={queue_name}" in content
    assert f'href="{url("overview")}" id="queue-overview"' in content
    assert 'id="queue-compose"' in content
    assert "field-on_broker" not in content  # no longer a field at the bottom


def test_the_queue_page_buttons_follow_the_permissions(client: Client, queue_name: str) -> None:
    row = declared(queue_name, 1, dead_lettering=True)
    page = url("queue_change", row.pk)

    client.force_login(staff("view_queue"))
    content = client.get(page).content.decode()
    assert 'id="queue-broker-state"' in content
    assert 'id="queue-buttons"' not in content

    client.force_login(staff("change_queue", "purge_queue", "publish_message"))
    content = client.get(page).content.decode()
    for action in ("declare_on_broker", "purge_queues", "replay_dead_letters"):
        assert f'<input type="hidden" name="action" value="{action}">' in content
        assert f"queue-action-{action}" in content
    assert f'name="_selected_action" value="{row.pk}"' in content
    assert f'action="{url("queue_changelist")}"' in content

    client.force_login(staff("change_queue"))
    content = client.get(page).content.decode()
    assert "queue-action-declare_on_broker" in content
    assert "queue-action-purge_queues" not in content
    assert "queue-action-replay_dead_letters" not in content


def test_the_queue_page_purge_button_asks_first(admin_client: Client, queue_name: str) -> None:
    row = declared(queue_name, 3)
    # What the button posts: the changelist's action for this row, no confirmation yet.
    response = admin_client.post(
        url("queue_changelist"), {"action": "purge_queues", "_selected_action": [str(row.pk)]}
    )
    assert "3 ready messages will be dropped" in response.content.decode()
    assert queue_depth(queue_name) == 3


def test_the_queue_page_with_the_broker_down(admin_client: Client, queue_name: str) -> None:
    row = Queue.objects.create(name=queue_name)
    with override_settings(MESSAGING=CLOSED_PORT):
        response = admin_client.get(url("queue_change", row.pk))
    assert response.status_code == 200
    assert 'id="queue-broker-state"' in response.content.decode()
    assert "unreachable: cannot reach the broker" in response.content.decode()


def test_the_queue_list_flags_ready_messages_without_a_consumer(
    admin_client: Client, queue_name: str, request: pytest.FixtureRequest
) -> None:
    idle = declared(queue_name, 14)
    empty = declared(request.node.make_queue_name(".empty"), 0)
    content = admin_client.get(url("queue_changelist")).content.decode()
    rows = {row.name: row for row in (idle, empty)}
    cells = {name: content.split(f">{name}</a>", 1)[1].split("</tr>", 1)[0] for name in rows}
    assert 'class="messaging-flag messaging-unconsumed"' in cells[idle.name]
    assert "messaging-unconsumed" not in cells[empty.name]
