"""Settings for the test suite: the demo project's, pointed at the services found
by :mod:`tests.support.services`.

The broker is not looked for here: BROKER_URL is ``MESSAGING_BROKER_URL`` when set,
else a placeholder that the ``live_broker`` fixture (tests/conftest.py) replaces once a
test that needs the broker runs."""

import importlib.util
import json
import os

import dj_database_url

from project.settings import *  # noqa: F403
from project.settings import MESSAGING
from tests.support.services import database_url, known_broker_url

MESSAGING = {**MESSAGING, "BROKER_URL": known_broker_url(), "RECONNECT_DELAY": 0.2}

DATABASES = {"default": dj_database_url.parse(database_url())}
# One test database per pytest process, so two runs on one machine never collide.
_run = os.getpid()
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {"timeout": 30}
    # A file, not :memory:, so runconsumer subprocesses see the same test database.
    DATABASES["default"]["TEST"] = {
        "NAME": str(DATABASES["default"]["NAME"]).replace(".sqlite3", f"-test-{_run}.sqlite3")
    }
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_messaging_{_run}"}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# A test's own Celery queue for the tasks the app queues without naming one (the admin's
# publish_messages_task.delay): see tests.support.celery_queues.
CELERY_TASK_ROUTES = ["tests.support.celery_queues.route"]
LOGGING = {"version": 1, "disable_existing_loggers": False}

# The fault-injection tests (tests/faults/) hand settings to runconsumer subprocesses as
# JSON: MESSAGING_TEST_SETTINGS='{"MAX_ATTEMPTS": 3}' is merged into MESSAGING, and
# MESSAGING_TEST_DB_OPTIONS='{"timeout": 1}' into the database OPTIONS.
MESSAGING.update(json.loads(os.environ.get("MESSAGING_TEST_SETTINGS") or "{}"))
DATABASES["default"].setdefault("OPTIONS", {}).update(
    json.loads(os.environ.get("MESSAGING_TEST_DB_OPTIONS") or "{}")
)

# Django's Tasks framework on RabbitMQ (tests/tasks/): task queues of this test run only
# (the prefix is inherited by the runconsumer subprocesses through the environment).
# Each pytest-xdist worker has its own (its subprocesses inherit it with the worker id).
_worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
if not os.environ.get("MESSAGING_TEST_TASK_PREFIX", "").startswith(f"test.tasks.{_worker}."):
    os.environ["MESSAGING_TEST_TASK_PREFIX"] = f"test.tasks.{_worker}.{_run}."
_TASK_OPTIONS = {
    "QUEUE_PREFIX": os.environ["MESSAGING_TEST_TASK_PREFIX"],
    "TASK_MODULES": ["tests.tasks"],
}
TASKS = {
    "default": {
        "BACKEND": "messaging.task_backend.RabbitMQBackend",
        "QUEUES": ["default", "other"],
        "OPTIONS": _TASK_OPTIONS,
    },
    "quorum": {
        "BACKEND": "messaging.task_backend.RabbitMQBackend",
        "QUEUES": ["default"],
        "OPTIONS": {
            **_TASK_OPTIONS,
            "QUEUE_PREFIX": _TASK_OPTIONS["QUEUE_PREFIX"] + "quorum.",
            "QUEUE_TYPE": "quorum",
        },
    },
}
if importlib.util.find_spec("django.tasks") is None and importlib.util.find_spec("django_tasks"):
    INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks"]  # noqa: F405 - the backport's checks
