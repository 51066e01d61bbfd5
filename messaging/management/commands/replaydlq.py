"""``manage.py replaydlq QUEUE [--limit N | --message-id ID ...]`` — move dead letters
back to their queue."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from messaging.consumer.replay import replay
from messaging.exceptions import MessagingError
from messaging.management.commandline import positive_int


class Command(BaseCommand):
    help = (
        "Move messages from QUEUE.dlq back to QUEUE (message_id, headers and the "
        "x-messaging-death history kept); each is removed from the DLQ only after the "
        "broker confirmed the copy."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("queue", metavar="QUEUE")
        which = parser.add_mutually_exclusive_group()
        which.add_argument(
            "--limit", type=positive_int, default=None, help="Move at most N (default: all)."
        )
        which.add_argument(
            "--message-id",
            action="append",
            dest="message_ids",
            metavar="ID",
            default=None,
            help="Move only the message with this message_id (repeatable); the others stay "
            "in the DLQ.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = replay(options["queue"], options["limit"], options["message_ids"])
        except MessagingError as exc:
            raise CommandError(str(exc)) from exc
        if options["verbosity"] >= 1:
            self.stdout.write(
                f"moved {result.moved} message(s) from {result.dead_letter_queue} to "
                f"{result.queue}; {result.remaining} left in {result.dead_letter_queue}"
            )
        if result.not_found:
            raise CommandError(f"not in {result.dead_letter_queue}: {', '.join(result.not_found)}")
