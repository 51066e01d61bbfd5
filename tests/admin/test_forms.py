"""The admin forms: names refused as typed (never silently stripped), JSON too deep to
parse is a form error (not a 500), JSON body mode, and the queue's schema checked when
composing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from messaging.models import Message, Queue
from tests.support.admin import change_form_data, url
from tests.support.examples import ORDER_SCHEMA

pytestmark = pytest.mark.django_db

DEEP = "[" * 50_000 + "]" * 50_000


def compose(client: Client, **fields: Any) -> Any:
    data = {
        "exchange": "",
        "routing_key": "",
        "content_type": "",
        "body_text": "",
        "body_format": "text",
        "headers": "{}",
        "persistent": "on",
        "_save": "Save",
        **fields,
    }
    return client.post(url("message_add"), data)


def add_queue(client: Client, name: str, **fields: Any) -> Any:
    data = {
        "name": name,
        "durable": "on",
        "queue_type": "classic",
        "dead_lettering": "on",
        "arguments": "{}",
        "schema": "",
        "_save": "Save",
        **fields,
    }
    return client.post(url("queue_add"), data)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bad\nname", "control character U+000A"),
        (" lead", "whitespace"),
        ("trail ", "whitespace"),
        ("a" * 252, "&lt;name&gt;.dlq would pass"),
    ],
)
def test_queue_add_form_refuses_bad_names_as_typed(
    admin_client: Client, name: str, expected: str
) -> None:
    response = add_queue(admin_client, name)
    assert response.status_code == 200
    assert expected in response.content.decode()
    assert not Queue.objects.exists()


def test_queue_add_form_refuses_an_invalid_schema_and_deep_json(admin_client: Client) -> None:
    response = add_queue(admin_client, "orders", schema='{"type": 5}')
    assert response.status_code == 200
    assert "Not a valid JSON Schema" in response.content.decode()
    response = add_queue(admin_client, "orders", arguments=DEEP)
    assert response.status_code == 200
    assert "nested too deeply" in response.content.decode()
    assert not Queue.objects.exists()
    response = add_queue(admin_client, "orders", schema=json.dumps(ORDER_SCHEMA))
    assert response.status_code == 302
    assert Queue.objects.get().schema == ORDER_SCHEMA


def test_compose_refuses_deep_headers_without_a_500(admin_client: Client) -> None:
    queue = Queue.objects.create(name="compose.queue")
    response = compose(admin_client, queue=queue.pk, headers=DEEP)
    assert response.status_code == 200
    assert "nested too deeply" in response.content.decode()
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"exchange": " logs", "routing_key": "k"}, "whitespace"),
        ({"exchange": "logs", "routing_key": "r" * 256}, "at most 255 characters"),
        ({"exchange": "logs", "routing_key": "é" * 200}, "400 bytes"),
        ({"content_type": "é" * 200}, "400 bytes"),
        ({"headers": '{"x-death": []}'}, "reserved"),
        ({"headers": '{"' + "k" * 300 + '": 1}'}, "300 bytes"),
    ],
)
def test_compose_refuses_bad_fields(admin_client: Client, fields: dict, expected: str) -> None:
    queue = Queue.objects.create(name="compose.queue")
    if "exchange" not in fields:
        fields = {"queue": queue.pk, **fields}
    response = compose(admin_client, **fields)
    assert response.status_code == 200
    assert expected in response.content.decode()
    assert not Message.objects.exists()


def test_compose_json_body_mode(admin_client: Client) -> None:
    queue = Queue.objects.create(name="compose.queue")
    response = compose(
        admin_client,
        queue=queue.pk,
        body_format="json",
        body_text='{\n  "id": 7,\n  "name": "Zoë <b>"\n}',
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    message = Message.objects.get()
    assert message.body_bytes == '{"id":7,"name":"Zoë <b>"}'.encode()
    assert message.content_type == "application/json"

    page = admin_client.get(url("message_change", message.pk))
    form = page.context["adminform"].form
    assert form["body_format"].value() == "json"
    assert form["body_text"].value() == '{\n  "id": 7,\n  "name": "Zoë <b>"\n}'
    assert "Zoë &lt;b&gt;" in page.content.decode()  # pretty-printed and escaped

    # Saving the page unchanged keeps the stored (compact) bytes.
    admin_client.post(url("message_change", message.pk), change_form_data(page))
    message.refresh_from_db()
    assert message.body_bytes == '{"id":7,"name":"Zoë <b>"}'.encode()


def test_compose_json_mode_refuses_invalid_json(admin_client: Client) -> None:
    queue = Queue.objects.create(name="compose.queue")
    response = compose(admin_client, queue=queue.pk, body_format="json", body_text="{oops")
    assert response.status_code == 200
    assert "Not valid JSON" in response.content.decode()
    assert not Message.objects.exists()


def test_compose_checks_the_queue_schema(admin_client: Client) -> None:
    queue = Queue.objects.create(name="orders", schema=ORDER_SCHEMA)
    response = compose(
        admin_client, queue=queue.pk, body_format="json", body_text='{"id": "x", "items": []}'
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "Does not match the schema of queue orders: $.id: &#x27;x&#x27; is not of type" in text
    assert not Message.objects.exists()
    response = compose(
        admin_client, queue=queue.pk, body_format="json", body_text='{"id": 1, "items": []}'
    )
    assert response.status_code == 302
    assert Message.objects.get().body_bytes == b'{"id":1,"items":[]}'


def test_published_json_body_is_shown_pretty_and_escaped(admin_client: Client) -> None:
    queue = Queue.objects.create(name="orders")
    message = Message.objects.create(
        queue=queue,
        body=b'{"a":"<script>"}',
        content_type="application/json",
        status=Message.Status.PUBLISHED,
    )
    page = admin_client.get(url("message_change", message.pk)).content.decode()
    assert "{\n  &quot;a&quot;: &quot;&lt;script&gt;&quot;\n}" in page
    assert "<script>" not in page.split("<body", 1)[1].replace("<script src", "")


def test_a_queue_row_with_messages_cannot_be_deleted(admin_client: Client) -> None:
    queue = Queue.objects.create(name="orders")
    Message.objects.create(queue=queue, body=b"kept")
    page = admin_client.get(url("queue_delete", queue.pk))
    assert page.status_code == 200
    assert "would require deleting the following protected related objects" in (
        page.content.decode()
    )
    admin_client.post(url("queue_delete", queue.pk), {"post": "yes"})
    assert Queue.objects.filter(pk=queue.pk).exists()
    assert Message.objects.count() == 1


def test_replay_refuses_an_old_row_with_an_invalid_name(admin_client: Client, manage) -> None:
    from messaging.admin import replay_selected

    queue = Queue.objects.create(name="fine")
    Queue.objects.filter(pk=queue.pk).update(name="bad\nname")  # saved before the rules
    outcome = replay_selected(Queue.objects.all())
    assert "control character U+000A" in str(outcome.failed["bad\nname"])
    result = manage("replaydlq", "bad\nname")
    assert result.returncode == 1
    assert "control character U+000A" in result.stderr.decode()
    assert len(result.stderr.decode().strip().splitlines()) == 1
