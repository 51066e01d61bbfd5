"""The demo project's Celery app (same RabbitMQ as the messaging app).

Run a worker and the beat scheduler next to the site::

    celery -A project worker -l info
    celery -A project beat -l info

Beat runs the outbox relay (``messaging.tasks.relay_outbox``) every few seconds and the
retention task (``messaging.tasks.purge_messages``) once a day.
"""

import os
from datetime import timedelta

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

#: How often beat runs the relay; each run drains what is due (at most 60 s of work).
RELAY_EVERY = timedelta(seconds=5)

app.conf.beat_schedule = {
    "messaging-relay-outbox": {
        "task": "messaging.tasks.relay_outbox",
        "schedule": RELAY_EVERY,
        # A run that waited longer than the interval is stale: the next one does its work.
        "options": {"expires": RELAY_EVERY.total_seconds()},
    },
    "messaging-purge-messages": {
        "task": "messaging.tasks.purge_messages",
        "schedule": crontab(hour=3, minute=30),
        "kwargs": {"older_than": "30d"},
    },
}
