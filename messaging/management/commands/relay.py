"""``manage.py relay [--once]`` — publish the outbox's due pending messages."""

from __future__ import annotations

import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from messaging import conf
from messaging.management.commandline import configure_logging, positive_float
from messaging.management.observing import add_observing_arguments, observing
from messaging.management.shutdown import GracefulStop
from messaging.publishing import relay
from messaging.publishing.relay import RelayResult


class Command(BaseCommand):
    help = (
        "Publish pending messages that are due (the transactional outbox), in id order, in "
        "batches with pipelined confirms; several relays can run at once. Loops every "
        "RELAY_INTERVAL seconds until SIGTERM/SIGINT (the batch in hand is finished within "
        "--shutdown-timeout; a second signal a second later exits at once); --once makes one "
        "pass and exits. While it runs it "
        "keeps a relay@<host> row in the Consumer registry fresh (the admin and the check "
        "messaging.W002 warn when pending messages wait and no relay ran)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once",
            action="store_true",
            help="One pass (until nothing is due) then exit; non-zero if the broker is down.",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Seconds between passes (default MESSAGING['RELAY_INTERVAL']).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="Messages claimed and published per batch (default RELAY_BATCH_SIZE).",
        )
        parser.add_argument(
            "--shutdown-timeout",
            type=positive_float,
            default=None,
            metavar="SECONDS",
            help="After SIGTERM/SIGINT, give the batch in hand this long, then exit 1 (its "
            "rows stay pending for the next relay; default MESSAGING['SHUTDOWN_TIMEOUT']).",
        )
        add_observing_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] is not None and options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        if options["interval"] is not None and options["interval"] <= 0:
            raise CommandError("--interval must be more than 0")
        verbosity = options["verbosity"]
        configure_logging(verbosity)
        stop = threading.Event()
        timeout = options["shutdown_timeout"] or float(conf.get("SHUTDOWN_TIMEOUT"))
        restore = GracefulStop(stop.set, what="batch", timeout=timeout, command="relay").install()

        def report(result: RelayResult) -> None:
            if result.batches and verbosity >= 1:
                self.stdout.write(f" [x] Relayed: {result}")

        try:
            with observing(options):
                total = relay.run(
                    once=options["once"],
                    interval=options["interval"],
                    batch_size=options["batch_size"],
                    stop=stop,
                    report=report,
                )
        finally:
            restore()
        if options["once"] and total.error is not None:
            raise CommandError(f"relay: {total.error} (pending messages stay pending)")
        if verbosity >= 1 and not options["once"]:
            self.stdout.write(f" [*] Relay stopped: {total} in all")
