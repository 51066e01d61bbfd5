"""``manage.py declarequeues`` — declare every Exchange, Queue and Binding row on the
broker (in that order), report drift; ``--check`` reports without declaring."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from messaging import broker
from messaging.amqp.queue_types import CLASSIC_ON_CLUSTER, classic_on_cluster
from messaging.broker.declare_many import (
    MATCHES,
    check_exchanges,
    check_queues,
    declare_binding_rows,
    declare_exchanges,
)
from messaging.broker.queue_ops import DeclareResult
from messaging.exceptions import BrokerError, QueueMismatch
from messaging.models import Binding, Exchange, Queue


class Command(BaseCommand):
    help = (
        "Declare every Exchange row, then every Queue row, then every Binding row on the "
        "broker (idempotent). An exchange or queue that exists with other settings is "
        "reported as drift and the command exits non-zero. --check declares nothing."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("names", nargs="*", metavar="QUEUE", help="Only these queues.")
        parser.add_argument(
            "--check",
            action="store_true",
            help=(
                "Report what is missing or differs from its row without declaring anything "
                "(for CI and deploy checks); exits non-zero if anything does."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        queues = Queue.objects.all()
        exchanges = Exchange.objects.all()
        bindings = Binding.objects.select_related("source", "queue", "destination_exchange")
        if options["names"]:
            queues = queues.filter(name__in=options["names"])
            missing = set(options["names"]) - {q.name for q in queues}
            if missing:
                raise CommandError(f"no Queue row named {', '.join(sorted(missing))}")
            bindings = bindings.filter(queue__in=queues)
            exchanges = exchanges.filter(bindings__in=bindings).distinct()
        self.verbose = options["verbosity"] >= 1
        for name in classic_on_cluster(list(queues)):
            self.stderr.write(self.style.WARNING(f"{name}: {CLASSIC_ON_CLUSTER}"))
        if options["check"]:
            self._check(list(exchanges), list(queues), list(bindings))
            return
        problems = [
            (kind, self._declare(declare(rows), kind))
            for kind, declare, rows in (
                ("exchange", declare_exchanges, exchanges),
                ("queue", broker.declare_queues, queues),
                ("binding", declare_binding_rows, bindings),
            )
        ]
        texts = [
            f"{len(names)} {kind}(s) differ from their {kind.title()} row or were refused: "
            f"{', '.join(names)}"
            for kind, names in problems
            if names
        ]
        if texts:
            raise CommandError("; ".join(texts))

    def _declare(self, result: DeclareResult, kind: str) -> list[str]:
        """Report one kind's result; returns the names that failed."""
        for name in result.declared:
            if self.verbose:
                ready = f" ({result.ready[name]} ready)" if name in result.ready else ""
                text = f"declared {name}{ready}" if kind == "queue" else f"declared {kind} {name}"
                self.stdout.write(text)
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
        return list(result.failed)

    # ------------------------------------------------------------------ --check

    def _check(self, exchanges: list[Exchange], queues: list[Queue], bindings: list[Any]) -> None:
        try:
            exchange_states = check_exchanges(exchanges)
            queue_states = check_queues(queues)
            extra = self._binding_ends(bindings, exchanges, queues)
            extra_states = check_exchanges([name for name, _ in extra])
        except BrokerError as exc:
            raise CommandError(str(exc)) from exc
        problems: list[str] = []
        present: dict[str, bool] = {}
        for row, state in zip(exchanges, exchange_states, strict=True):
            present[f"exchange {row.name}"] = state == MATCHES
            self._report(f"exchange {row.name}", state, problems)
        for queue, state in zip(queues, queue_states, strict=True):
            present[f"queue {queue.name}"] = isinstance(state, tuple)
            self._report(f"queue {queue.name}", state, problems)
        for (_name, key), state in zip(extra, extra_states, strict=True):
            present[key] = state == MATCHES
        for binding in bindings:
            spec = broker.BindingSpec.of(binding)
            ends = [f"exchange {spec.source.name}", _destination_key(spec)]
            gone = [end for end in ends if not present.get(end, False)]
            if gone:
                self.stderr.write(
                    self.style.WARNING(f"missing: binding {spec.label} ({', '.join(gone)} absent)")
                )
                problems.append(f"binding {spec.label}")
            elif self.verbose:
                self.stdout.write(
                    f"ok: binding {spec.label} (both ends exist; bindings cannot be read over AMQP)"
                )
        if problems:
            raise CommandError(
                f"{len(problems)} item(s) missing or differing from their row: "
                f"{', '.join(problems)}"
            )

    def _binding_ends(
        self, bindings: list[Any], exchanges: list[Exchange], queues: list[Queue]
    ) -> list[tuple[str, str]]:
        """Exchanges a binding names that the exchange list above does not cover (only with
        QUEUE names given): checked passively as (name, key)."""
        known = {e.name for e in exchanges}
        wanted: dict[str, str] = {}
        for binding in bindings:
            spec = broker.BindingSpec.of(binding)
            for exchange in (spec.source, spec.destination):
                if exchange is not None and exchange.name not in known:
                    wanted[exchange.name] = f"exchange {exchange.name}"
        return list(wanted.items())

    def _report(self, what: str, state: Any, problems: list[str]) -> None:
        if state is None:
            self.stderr.write(self.style.WARNING(f"missing: {what} is not on the broker"))
            problems.append(what)
        elif isinstance(state, BrokerError):
            label = "drift" if isinstance(state, QueueMismatch) else "error"
            self.stderr.write(self.style.WARNING(f"{label}: {state}"))
            problems.append(what)
        elif self.verbose:
            detail = f" ({state[0]} ready)" if isinstance(state, tuple) else ""
            self.stdout.write(f"ok: {what}{detail}")


def _destination_key(spec: broker.BindingSpec) -> str:
    if spec.queue is not None:
        return f"queue {spec.queue}"
    return f"exchange {spec.destination_name}"
