"""``make bench``: raw pika vs ``runconsumer`` / ``send`` side by side, in one run.

Every measurement runs in its own process on the same broker and the same databases:
raw baselines as ``python -m bench.raw``, the app as ``manage.py runconsumer`` /
``manage.py send`` (settings ``bench.settings``), so the table measures whatever code is
in the tree. See ``python -m bench --help`` for the sizes; docs/benchmarks.md explains the
method.

The driver: :mod:`bench.options` (flags), :mod:`bench.provision` (databases, queues,
overview data), :mod:`bench.measure` (one function per row), :mod:`bench.report`
(ratios, medians, the table and results.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

from bench import config, raw
from bench.measure import io_bound, phases, tasks
from bench.measure.base import Context
from bench.options import parse_args
from bench.process import BenchError, log
from bench.provision import Databases, Queues, check_broker, check_postgres
from bench.report import Results, add_targets, machine_info, markdown, render


class Bench:
    """One bench run: provision, the rounds of the chosen phases, clean up, report."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.url = config.broker_url()
        self.databases = Databases(args.dbs)
        self.ctx = Context(
            args=args,
            url=self.url,
            body=raw.body_of(args.size),
            queues=Queues(self.url, args.prefix),
            results=Results(),
        )

    @property
    def results(self) -> Results:
        return self.ctx.results

    def run(self) -> int:
        """Check the services, then measure with the databases locked; the exit status."""
        check_broker(self.url)
        if "postgres" in self.args.dbs:
            check_postgres()
        with self.databases.exclusive():
            return self._run()

    def _run(self) -> int:
        a = self.args
        log("sizes: " + " ".join(f"{k}={v}" for k, v in vars(a).items() if k != "only"))
        self.databases.setup()
        try:
            self.measure()
        finally:
            self.ctx.queues.cleanup()
            if not a.keep:
                self.databases.drop()
        add_targets(self.results, a.dbs, a.prefetch)
        self.write(render(self.results))
        return 1 if self.results.errors else 0

    def measure(self) -> None:
        """``--repeat`` rounds of publish and consume, then memory and overview once."""
        a, ctx = self.args, self.ctx
        for repeat in range(a.repeat):
            if a.repeat > 1:
                log(f"round {repeat + 1} of {a.repeat}")
            if "publish" in a.only:
                phases.run_publish(ctx)
            if "calls" in a.only:
                phases.run_calls(ctx)
            if a.only & {"consume-high", "consume-p1"}:
                phases.run_consume(ctx, "consume-high" in a.only, "consume-p1" in a.only)
            if "retry" in a.only:
                phases.run_retry(ctx)
            if "io" in a.only and "postgres" in a.dbs:
                io_bound.run_phase(ctx)
            if "tasks" in a.only and "postgres" in a.dbs:
                tasks.run_phase(ctx)
        if "memory" in a.only:
            phases.run_memory(ctx)
        if "overview" in a.only:
            phases.run_overview(ctx)

    def write(self, table: str) -> None:
        """The table on stdout, the whole report to ``--output``."""
        a = self.args
        text = markdown(table, a, machine_info(self.url, a.dbs), dt.datetime.now(dt.UTC))
        print(table)
        Path(a.output).parent.mkdir(parents=True, exist_ok=True)
        Path(a.output).write_text(text)
        log(f"written to {a.output}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ.pop("BENCH_DATABASE_URL", None)
    import django

    django.setup()
    bench = Bench(args)
    try:
        return bench.run()
    except BenchError as exc:
        log(f"stopped: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
