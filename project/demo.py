"""`make demo`: the RabbitMQ tutorial, end to end, through the messaging app.

Declares q1, sends "Hello World!", saves a second message in the outbox (pending, as the
admin's "Save" does) and runs the relay once to send it, consumes both with prefetch 1 and
manual ack, and prints the receipts table; then says what to run beside the admin (a
consumer and a relay: without a relay, a message saved in the admin is never sent).
Uses MESSAGING_BROKER_URL (default localhost:5672); if nothing answers there it starts
RabbitMQ with testcontainers when Docker is available.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

from project.services import answers, docker_available, start_rabbitmq

DEFAULT_URL = "amqp://guest:guest@localhost:5672/%2F"


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    return answers(parts.hostname or "localhost", port, timeout=2)


def ensure_broker() -> None:
    urls = os.environ.get("MESSAGING_BROKER_URL") or DEFAULT_URL
    if any(_answers(url.strip()) for url in urls.split(",") if url.strip()):
        return
    if docker_available():
        print("==> no broker answering; starting RabbitMQ with testcontainers", flush=True)
        os.environ["MESSAGING_BROKER_URL"] = start_rabbitmq()
        return
    sys.exit(
        "make demo: no RabbitMQ answers at localhost:5672 and Docker is not available — "
        "start one (`apt install rabbitmq-server`, or `docker run -d -p 5672:5672 "
        "rabbitmq:3`) or set MESSAGING_BROKER_URL."
    )


def main() -> None:
    ensure_broker()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from messaging.models import Queue
    from messaging.publishing import build_message

    def step(text: str) -> None:
        print(f"\n==> {text}", flush=True)

    step("migrate the database")
    call_command("migrate", verbosity=0)
    step("declare q1 (durable)")
    Queue.objects.get_or_create(name="q1", defaults={"durable": True})
    call_command("declarequeues", "q1")
    step('send "Hello World!" (persistent, publisher confirm)')
    call_command("send", "q1", "Hello World!")
    step("save a message in the outbox (pending, as the admin's Save does)")
    build_message("q1", b"Hello from the outbox!").save()
    step("relay the outbox once: pending messages are sent only by a relay")
    call_command("relay", "--once")
    step("consume q1 with prefetch 1 and manual ack (stops when idle for 1 s)")
    call_command("runconsumer", "q1", "--prefetch", "1", "--idle-timeout", "1")
    step("receipts")
    call_command("receipts", "--queue", "q1", "--limit", "5")
    print(RUN_BESIDE, flush=True)


#: What the demo prints last: what runs beside the admin console.
RUN_BESIDE = """
==> to use the admin console, run these side by side:
    python manage.py runserver          # the console: http://127.0.0.1:8000/admin/
    python manage.py runconsumer q1     # takes the messages of q1
    python manage.py relay              # sends pending messages (the admin's "Save")
    Without a relay, a message saved in the admin stays pending: nothing sends it (the
    admin warns when pending messages wait and no relay ran: messaging.W002)."""


if __name__ == "__main__":
    main()
