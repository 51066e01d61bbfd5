"""``manage.py declarequeues`` — declare every Queue row on the broker, report drift."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from messaging import broker
from messaging.exceptions import BrokerError, QueueMismatch
from messaging.models import Queue


class Command(BaseCommand):
    help = (
        "Declare every Queue row on the broker (idempotent). A queue that exists with other "
        "arguments is reported as drift and the command exits non-zero."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("names", nargs="*", metavar="QUEUE", help="Only these queues.")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = Queue.objects.all()
        if options["names"]:
            rows = rows.filter(name__in=options["names"])
            missing = set(options["names"]) - {q.name for q in rows}
            if missing:
                raise CommandError(f"no Queue row named {', '.join(sorted(missing))}")
        drifted = []
        try:
            with broker.connection() as conn:
                for queue in rows:
                    channel = conn.channel()
                    try:
                        ready = broker.declare_queue(channel, queue)
                    except QueueMismatch as exc:
                        drifted.append(queue.name)
                        self.stderr.write(self.style.WARNING(f"drift: {exc}"))
                        continue
                    if channel.is_open:
                        channel.close()
                    if options["verbosity"] >= 1:
                        self.stdout.write(f"declared {queue.name} ({ready} ready)")
        except BrokerError as exc:
            raise CommandError(str(exc)) from exc
        if drifted:
            raise CommandError(
                f"{len(drifted)} queue(s) differ from their Queue row: {', '.join(drifted)}"
            )
