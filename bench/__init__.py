"""Side-by-side benchmarks: raw pika vs ``runconsumer`` / ``send`` on one broker.

Run with ``make bench`` (or ``.venv/bin/python -m bench --help`` for the sizes). The
driver (:mod:`bench.run`) starts the commands as subprocesses against databases of its
own (a PostgreSQL database ``bench_messaging`` and a SQLite file under /tmp), runs the raw
pika baselines (:mod:`bench.raw`) in subprocesses too, and prints a markdown table of
rates and ratios, also written to ``bench/results.md``.
"""
