"""Settings of the ``tasks`` phase (bench/measure/tasks.py): the bench settings plus
Django's Tasks framework — ``default`` is this app's RabbitMQBackend, ``db`` the
``django-tasks-db`` database backend (its ``db_worker`` is the peer)."""

import importlib.util
import os

from bench.settings import *  # noqa: F403
from bench.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db"]
if importlib.util.find_spec("django.tasks") is None:
    INSTALLED_APPS.append("django_tasks")  # the backport on Django 5.2

TASKS = {
    "default": {
        "BACKEND": "messaging.task_backend.RabbitMQBackend",
        "QUEUES": ["default"],
        "OPTIONS": {
            "QUEUE_PREFIX": os.environ.get("BENCH_TASKS_PREFIX", "bench.tasks."),
            "TASK_MODULES": ["bench"],
        },
    },
    "db": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]},
}
