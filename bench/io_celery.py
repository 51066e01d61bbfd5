"""``celery -A bench.io_celery worker``: the Celery app of the ``io`` phase."""

from bench.io_workers import make_celery

app = make_celery()
