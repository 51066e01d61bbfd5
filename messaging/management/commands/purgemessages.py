"""``manage.py purgemessages --older-than 30d [--status ...]`` — retention."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from messaging.management.commandline import age, bounded_int
from messaging.models import Message
from messaging.publishing import retention

#: Largest --batch-size: a batch's ids go into one IN (...) list, and SQLite takes at
#: most 32766 parameters per query.
MAX_BATCH_SIZE = 10_000


class Command(BaseCommand):
    help = (
        "Delete messages created before --older-than (30d, 12h, 90m, 45s, 2w) with the "
        "given statuses (default: published and failed; pending ones are the outbox and are "
        "purged only with --status pending), their receipts, and receipts older than that "
        "of messages not in the table. In batches, each its own transaction."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            required=True,
            type=age,
            metavar="AGE",
            help="e.g. 30d, 12h, 90m, 45s, 2w (at most 36500d).",
        )
        parser.add_argument(
            "--status",
            action="append",
            choices=Message.Status.values,
            dest="statuses",
            help="Message status to purge (repeatable; default published and failed).",
        )
        parser.add_argument(
            "--batch-size",
            type=bounded_int(1, MAX_BATCH_SIZE),
            default=retention.DEFAULT_BATCH_SIZE,
            help=f"Rows deleted per transaction, 1..{MAX_BATCH_SIZE} "
            f"(default {retention.DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count what would be deleted."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = options["older_than"]
        try:
            if isinstance(older_than, str):  # call_command(older_than="30d") skips argparse
                older_than = retention.parse_age(older_than)
            result = retention.purge(
                older_than,
                statuses=options["statuses"],
                batch_size=options["batch_size"],
                dry_run=options["dry_run"],
            )
        except (ValueError, OverflowError) as exc:
            raise CommandError(str(exc)) from exc
        verb = "Would delete" if result.dry_run else "Deleted"
        statuses = ", ".join(options["statuses"] or retention.DEFAULT_STATUSES)
        self.stdout.write(
            f"{verb} {result.messages} message(s) ({statuses}) and {result.receipts} "
            f"receipt(s) older than {result.cutoff:%Y-%m-%d %H:%M:%S %Z}"
        )
