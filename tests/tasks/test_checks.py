"""The backend's system checks and its refusal to enqueue when misconfigured."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from messaging.models import Queue
from messaging.task_backend.compat import InvalidTask, task_backends
from tests.tasks import jobs
from tests.tasks.conftest import PREFIX

pytestmark = pytest.mark.django_db


def backend_with(**params: object) -> object:
    config = {"BACKEND": "messaging.task_backend.RabbitMQBackend", **params}
    with override_settings(TASKS={"default": config}):
        return task_backends["default"]


def test_the_test_backends_are_fine() -> None:
    assert list(task_backends["default"].check()) == []
    assert [m for m in run_checks(databases=["default"]) if m.id.startswith("messaging.")] == []


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"OPTIONS": {"QUEUE_PREFIX": "amq."}}, "QUEUE_PREFIX must be"),
        ({"OPTIONS": {"QUEUE_PREFIX": "x" * 250}}, "task queue 'xxx"),
        ({"QUEUES": []}, "QUEUES is empty"),
        ({"OPTIONS": {"QUEUE_TYP": "quorum"}}, "unknown option 'QUEUE_TYP'"),
    ],
)
def test_a_misconfigured_backend_is_an_error(params: dict, says: str) -> None:
    backend = backend_with(**params)
    (error,) = backend.check()
    assert error.id == "messaging.E040" and says in error.msg


def test_a_task_queue_declared_otherwise_is_a_database_warning() -> None:
    Queue.objects.create(name=f"{PREFIX}other", queue_type="classic", arguments={})
    assert not [m for m in run_checks() if m.id == "messaging.W041"]  # not without databases
    (warning,) = [m for m in run_checks(databases=["default"]) if m.id == "messaging.W041"]
    assert warning.id == "messaging.W041"
    assert f"'{PREFIX}other' is a classic queue with no priorities" in warning.msg


def test_a_misconfigured_backend_refuses_to_enqueue() -> None:
    with (
        override_settings(
            TASKS={
                "default": {
                    "BACKEND": "messaging.task_backend.RabbitMQBackend",
                    "OPTIONS": {"MAX_PRIORITY": 0},
                }
            }
        ),
        pytest.raises(InvalidTask, match="misconfigured: MAX_PRIORITY must be"),
    ):
        jobs.add.enqueue(1, 2)
