"""``manage.py healthcheck`` — exit 0 when the database, the broker and the queues are
as they should be, 1 otherwise with one line per failed check (for cron, CI, probes)."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from messaging.management.commandline import non_negative_float, non_negative_int
from messaging.observability.health import Report, run_checks


class Command(BaseCommand):
    help = (
        "Check the database, the broker (connect; every Queue row exists with its declared "
        "arguments) and, when asked, live consumers, the oldest pending message and the "
        "dead-letter queues. Exit 0 if healthy, 1 with one line per failed check."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--consumers",
            nargs="*",
            default=None,
            metavar="QUEUE",
            help="Each QUEUE (default: every queue in MESSAGING['CONSUMERS']) has at least "
            "one live consumer in the registry.",
        )
        parser.add_argument(
            "--max-pending-age",
            type=non_negative_float,
            default=None,
            metavar="SECONDS",
            help="Fail when a pending message is older than SECONDS.",
        )
        parser.add_argument(
            "--max-dead-letters",
            type=non_negative_int,
            default=None,
            metavar="N",
            help="Fail when a queue's <queue>.dlq holds more than N messages.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the whole report as JSON on stdout."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = run_checks(
            consumers=options["consumers"],
            max_pending_age=options["max_pending_age"],
            max_dead_letters=options["max_dead_letters"],
        )
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        elif options["verbosity"] >= 2:
            for check in report.checks:
                mark = "ok" if check.ok else "FAILED"
                self.stdout.write(f"{mark}: {check.line()}")
        if not report.ok:
            if not options["json"]:
                for check in report.failures():
                    self.stderr.write(check.line())
            raise Unhealthy(report)
        if not options["json"] and options["verbosity"] == 1:
            self.stdout.write(f"healthy ({len(report.checks)} checks passed)")

    def run_from_argv(self, argv: list[str]) -> None:
        """Exit 1 when unhealthy, with the failed checks' lines only (a CommandError
        would add one of its own)."""
        try:
            super().run_from_argv(argv)
        except Unhealthy:
            connections.close_all()
            sys.exit(1)


class Unhealthy(Exception):
    """Raised by ``call_command("healthcheck")`` when a check failed (``report``)."""

    def __init__(self, report: Report) -> None:
        super().__init__("; ".join(c.line() for c in report.failures()))
        self.report = report
