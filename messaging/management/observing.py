"""``--metrics-port`` (runconsumer, relay) and ``--health-file`` (runconsumer): the
arguments and the block that serves / touches them while the command runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.management.base import CommandError, CommandParser

from messaging.management.commandline import bounded_int
from messaging.observability.health import HealthFile
from messaging.observability.server import start_metrics_server


def add_observing_arguments(parser: CommandParser, *, health_file: bool = False) -> None:
    parser.add_argument(
        "--metrics-port",
        type=bounded_int(1, 65535),
        default=None,
        metavar="PORT",
        help="Serve Prometheus metrics at http://0.0.0.0:PORT/metrics (needs the 'metrics' "
        "extra, prometheus_client).",
    )
    if health_file:
        parser.add_argument(
            "--health-file",
            default=None,
            metavar="PATH",
            help="Touch PATH every 2 s while the consumer's loop and I/O thread are alive "
            "(for an exec liveness probe: the file's age says whether it is stuck).",
        )


@contextmanager
def observing(options: dict[str, Any]) -> Iterator[HealthFile | None]:
    """Serve ``/metrics`` and touch the health file for the duration of the block (the
    block gets the :class:`HealthFile`, None without ``--health-file``)."""
    server = health = None
    if options.get("metrics_port"):
        try:
            server = start_metrics_server(options["metrics_port"])
        except (RuntimeError, OSError) as exc:
            raise CommandError(f"--metrics-port {options['metrics_port']}: {exc}") from exc
    if options.get("health_file"):
        health = HealthFile(options["health_file"])
        health.start()
    try:
        yield health
    finally:
        if health is not None:
            health.stop()
        if server is not None:
            server.stop()
