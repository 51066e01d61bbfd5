"""Settings of the demo project that uses the messaging app.

Environment:
    MESSAGING_BROKER_URL  amqp://guest:guest@localhost:5672/%2F by default; several
                          comma-separated URLs are tried in turn (cluster nodes)
    DATABASE_URL          SQLite file db.sqlite3 in the project root by default;
                          postgres://user:pass@host:5432/name for PostgreSQL
    DJANGO_DEBUG          off by default; 1 turns DEBUG on (error pages with settings
                          and tracebacks — never a URL's password — and static files
                          served by runserver)
    DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-insecure-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "messaging",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "project.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Consumers and the web process write at the same time: wait for the lock.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# Error reports (the DEBUG page, mails to ADMINS) hide the password of every URL.
DEFAULT_EXCEPTION_REPORTER_FILTER = "messaging.debug.SafeExceptionReporterFilter"

_BROKER_URLS = [
    url.strip() for url in os.environ.get("MESSAGING_BROKER_URL", "").split(",") if url.strip()
] or ["amqp://guest:guest@localhost:5672/%2F"]

MESSAGING = {
    # One URL, or the list of cluster nodes tried in turn.
    "BROKER_URL": _BROKER_URLS[0] if len(_BROKER_URLS) == 1 else _BROKER_URLS,
}

# Celery (project/celery.py) uses the same RabbitMQ (kombu takes failover URLs joined by ";").
CELERY_BROKER_URL = ";".join(_BROKER_URLS)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# A relay or publish task killed mid-batch is redelivered: its rows were not committed as
# published, and a message sent twice keeps its message_id (receipts drop the copy).
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"messaging": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
