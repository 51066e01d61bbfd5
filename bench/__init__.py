"""Side-by-side benchmarks: raw pika vs ``runconsumer`` / ``send`` on one broker.

Run with ``make bench`` (or ``.venv/bin/python -m bench --help`` for the sizes and the
phases). The driver (:mod:`bench.run`) takes its flags from :mod:`bench.options`, makes
its own databases and queues (:mod:`bench.provision`: a PostgreSQL database
``bench_messaging`` and a SQLite file under /tmp), measures one row at a time
(:mod:`bench.measure`: the app as ``manage.py`` subprocesses, the raw pika baselines and
the same-work floors as ``python -m bench.raw`` subprocesses) and prints a markdown table
of rates and ratios (:mod:`bench.report`), also written to ``bench/results.md``. The
driver takes from the app its models, to check and time the rows the commands wrote, and
the few values a floor must copy to do the same work (``send``'s chunk sizes and lease,
the fields of a published row, the retry delays); the raw processes import nothing of it.
"""
