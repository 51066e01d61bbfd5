"""The task results page: list, filters, a result's page, and "run again"."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from messaging.models import Message, TaskRecord
from messaging.testing import capture
from tests.tasks import jobs

pytestmark = pytest.mark.django_db(transaction=True)

NO_BROKER = {**settings.MESSAGING, "BROKER_URL": "amqp://guest:guest@127.0.0.1:1/%2F"}
LIST = "admin:messaging_taskrecord_changelist"


@pytest.fixture(autouse=True)
def no_broker(settings) -> None:
    settings.MESSAGING = NO_BROKER


def failed_result() -> TaskRecord:
    with capture() as captured:
        result = jobs.always_fails.enqueue("for the admin")
        captured.deliver()
    return TaskRecord.objects.get(result_id=result.id)


def test_the_list_shows_status_task_args_attempts_and_last_error(admin_client) -> None:
    record = failed_result()
    page = admin_client.get(reverse(LIST)).content.decode()
    assert "always_fails" in page and "&quot;for the admin&quot;" in page
    assert "KeyError: &#x27;for the admin&#x27;" in page and ">failed</span>" in page
    filtered = admin_client.get(reverse(LIST), {"status__exact": "SUCCESSFUL"}).content.decode()
    assert record.result_id not in filtered and "0 task results" in filtered
    by_task = admin_client.get(reverse(LIST), {"task_path": record.task_path}).content.decode()
    assert "1 task result" in by_task


def test_a_result_s_page_links_its_message_and_receipts_and_shows_errors(admin_client) -> None:
    record = failed_result()
    page = admin_client.get(
        reverse("admin:messaging_taskrecord_change", args=[record.pk])
    ).content.decode()
    message = Message.objects.get(message_id=record.result_id)
    assert reverse("admin:messaging_message_change", args=[message.pk]) in page
    assert f"?q={record.result_id}" in page
    assert page.count("builtins.KeyError") == len(record.errors) >= 2


def test_run_again_needs_its_permission_and_is_audited(client, admin_client) -> None:
    record = failed_result()
    staff = User.objects.create_user("viewer", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_taskrecord"))
    client.force_login(staff)
    action = {"action": "run_again", "_selected_action": [record.pk]}
    page = client.get(reverse(LIST)).content.decode()
    assert "run_again" not in page
    client.post(reverse(LIST), action)
    assert TaskRecord.objects.count() == 1

    with capture() as captured:
        admin_client.post(reverse(LIST), action, follow=True)
        (message,) = captured.filter(task=jobs.always_fails)
    again = TaskRecord.objects.get(rerun_of=record.result_id)
    assert again.result_id == message.message_id and again.args == ["for the admin"]
    assert again.status == "READY" and again.enqueued_at <= timezone.now()
    entry = LogEntry.objects.get(object_id=str(again.pk))
    assert record.result_id in entry.change_message
