"""Django settings for the benchmark: the demo project's, on the bench databases.

``default`` is ``BENCH_DATABASE_URL`` (the driver sets it for each ``runconsumer`` /
``send`` / ``migrate`` subprocess), else the bench SQLite file — never the development
``db.sqlite3``. The driver itself also uses the aliases ``sqlite`` and ``postgres``.
DEBUG is off, as in production (DEBUG on records every query).
"""

import json
import os

import dj_database_url

from bench import config
from project.settings import *  # noqa: F403
from project.settings import MESSAGING

DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

# BENCH_MESSAGING: JSON merged into MESSAGING (the retry rows' RETRY_DELAY ...).
MESSAGING = {
    **MESSAGING,
    "BROKER_URL": config.broker_url(),
    **json.loads(os.environ.get("BENCH_MESSAGING") or "{}"),
}


def _database(url: str) -> dict:
    db = dj_database_url.parse(url, conn_max_age=0)
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db["OPTIONS"] = {"timeout": 30}  # as project/settings.py
    else:
        # psycopg's own default, which the raw loops run with: the same driver settings
        # on both sides. (Django turns prepared statements off unless asked, for
        # connection poolers; the receipt INSERT is then parsed and planned per message.)
        db["OPTIONS"] = {"prepare_threshold": 5}
    return db


DATABASES = {
    "default": _database(os.environ.get("BENCH_DATABASE_URL") or config.database_url("sqlite")),
    "sqlite": _database(config.database_url("sqlite")),
    "postgres": _database(config.database_url("postgres")),
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"messaging": {"handlers": ["console"], "level": "WARNING", "propagate": False}},
}
