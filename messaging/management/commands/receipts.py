"""``manage.py receipts`` — print the latest receipts as a table."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from messaging.management.commandline import bounded_int
from messaging.models import Receipt

#: Most rows ``--limit`` prints.
MAX_LIMIT = 1_000_000


class Command(BaseCommand):
    help = "Print the latest receipts (newest first)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--queue", default="", help="Only this queue.")
        parser.add_argument(
            "--limit",
            type=bounded_int(0, MAX_LIMIT),
            default=20,
            help=f"How many, 0..{MAX_LIMIT} (default 20).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        receipts = Receipt.objects.all()
        if options["queue"]:
            receipts = receipts.filter(queue_name=options["queue"])
        rows = [
            (
                timezone.localtime(r.received_at).strftime("%Y-%m-%d %H:%M:%S"),
                r.queue_name,
                r.message_id or "(none)",
                r.outcome,
                "yes" if r.redelivered else "no",
                r.consumer_name,
                f"{(r.finished_at - r.received_at).total_seconds() * 1000:.1f}",
                (r.error or "").splitlines()[0][:50] if r.error else "",
            )
            for r in receipts[: options["limit"]]
        ]
        header = (
            "received",
            "queue",
            "message_id",
            "outcome",
            "redelivered",
            "consumer",
            "ms",
            "error",
        )
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        line = "  ".join(f"{{:<{w}}}" for w in widths)
        self.stdout.write(line.format(*header).rstrip())
        self.stdout.write(line.format(*("-" * w for w in widths)).rstrip())
        for row in rows:
            self.stdout.write(line.format(*row).rstrip())
        if not rows:
            self.stdout.write("(no receipts)")
