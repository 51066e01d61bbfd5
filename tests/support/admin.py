"""The admin as a test drives it: page URLs, staff users with chosen permissions, rows in
each state, posting actions and change forms, the messages a page shows; queues declared
on the broker with messages in them."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from messaging import broker
from messaging.models import Message, Queue
from messaging.publishing import build_message

#: MESSAGING overrides that point the broker at a port nothing listens on.
CLOSED_PORT = {"BROKER_URL": "amqp://guest:guest@127.0.0.1:1/%2F"}
#: User data with markup in it, and how a page must show it (escaped).
SCRIPT = "<script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:messaging_{name}", args=args)


def pending(queue: Queue | str, body: bytes | str = b"hello", **kwargs: Any) -> Message:
    message = build_message(queue, body, **kwargs)
    message.save()
    return message


def published(queue: Queue, body: bytes | str = b"sent") -> Message:
    message = build_message(queue, body)
    message.status = Message.Status.PUBLISHED
    message.published_at = timezone.now()
    message.attempts = 1
    message.save()
    return message


def change_form_data(response: Any, **overrides: str) -> dict[str, Any]:
    """What a browser would POST back from a change page (plus ``overrides``)."""
    form = response.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
    data["_save"] = "Save"
    data.update(overrides)
    return data


def run_action(client: Client, model: str, action: str, *rows: Any, follow: bool = True) -> Any:
    return client.post(
        url(f"{model}_changelist"),
        {"action": action, "_selected_action": [str(row.pk) for row in rows]},
        follow=follow,
    )


def shown_messages(response: Any) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in response.context["messages"]]


def errors(response: Any) -> list[str]:
    return [text for level, text in shown_messages(response) if level == messages.ERROR]


def staff(*perms: str) -> User:
    user = User.objects.create_user(f"staff-{uuid.uuid4().hex[:6]}", is_staff=True)
    for codename in perms:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="messaging", codename=codename)
        )
    return user


def declared(name: str, messages_in: int = 0, **fields: Any) -> Queue:
    """A Queue row declared on the broker with ``messages_in`` ready messages."""
    row = Queue.objects.create(name=name, **fields)
    result = broker.declare_queues([row])
    assert result.declared == [name], result
    put(name, messages_in)
    return row


def put(name: str, count: int) -> None:
    if not count:
        return
    with broker.connection() as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        for index in range(count):
            channel.basic_publish("", name, f"m{index}".encode())


def purge(client: Client, *rows: Queue, confirm: bool) -> Any:
    data: dict[str, Any] = {
        "action": "purge_queues",
        "_selected_action": [str(row.pk) for row in rows],
    }
    if confirm:
        data["post"] = "yes"
    return client.post(url("queue_changelist"), data, follow=True)
