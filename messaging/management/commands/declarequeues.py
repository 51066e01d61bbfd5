"""``manage.py declarequeues`` — declare every Queue row on the broker, report drift."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from messaging import broker
from messaging.exceptions import QueueMismatch
from messaging.models import Queue
from messaging.queue_types import CLASSIC_ON_CLUSTER, classic_on_cluster


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
        for name in classic_on_cluster(rows):
            self.stderr.write(self.style.WARNING(f"{name}: {CLASSIC_ON_CLUSTER}"))
        result = broker.declare_queues(rows)
        for name in result.declared:
            if options["verbosity"] >= 1:
                self.stdout.write(f"declared {name} ({result.ready[name]} ready)")
        for exc in result.failed.values():
            if isinstance(exc, QueueMismatch):
                label = "drift"
            elif broker.is_temporary(exc):
                label = "unavailable (a node is down; run again later)"
            else:
                label = "refused"
            self.stderr.write(self.style.WARNING(f"{label}: {exc}"))
        if result.error is not None:
            raise CommandError(str(result.error))
        if result.failed:
            raise CommandError(
                f"{len(result.failed)} queue(s) differ from their Queue row or were refused: "
                f"{', '.join(result.failed)}"
            )
