"""No error line or error report shows a URL's password, and the demo
project runs with DEBUG off unless DJANGO_DEBUG=1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from django.urls import path
from django.views import debug

from messaging import broker, conf
from messaging.conf import redact_text, redact_url
from messaging.debug import SafeExceptionReporterFilter, redact_string
from messaging.exceptions import BrokerError
from tests.support.environment import ROOT

BROKER_PW = "Zebra-Pw-7731"
CELERY_PW = "Celery-Pw-4411"
ENV_PW = "Env-Pw-5520"
DB_PW = "Db-Pw-9922"
LOCAL_PW = "Local-Pw-3307"
PASSWORDS = (BROKER_PW, CELERY_PW, ENV_PW, DB_PW, LOCAL_PW)


# --------------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    "text, expected",
    [
        ("amqp://u:p1@h1,amqp://v:p2@h2/", "amqp://u:***@h1,amqp://v:***@h2/"),
        ("amqp://u:p1@h1/, amqp://v:p2@h2/%2F", "amqp://u:***@h1/, amqp://v:***@h2/%2F"),
        ("amqp://u:p1@h1:5672/;amqps://v:p2@h2:5671/", "amqp://u:***@h1:5672/;amqps://v:***@h2:5671/"),
        ("amqp://u:p1@h1 amqp://v:p2@h2", "amqp://u:***@h1 amqp://v:***@h2"),
        ("amqp://u:p1@h1,h2", "amqp://u:***@h1,h2"),
        ("amqp://u:secret@host/%2F", "amqp://u:***@host/%2F"),
        ("amqp://host/", "amqp://host/"),
    ],
)  # fmt: skip
def test_redact_url_hides_every_password_of_a_comma_separated_string(text, expected):
    assert redact_url(text) == expected


def test_redact_text_hides_passwords_inside_prose_and_leaves_the_rest():
    text = (
        "could not reach amqp://guest:s3cret@host:5672/%2F nor postgres://app:pw@db/x; "
        "mail ops@example.com, see http://example.com:8000/path"
    )
    assert redact_text(text) == (
        "could not reach amqp://guest:***@host:5672/%2F nor postgres://app:***@db/x; "
        "mail ops@example.com, see http://example.com:8000/path"
    )
    assert redact_string("ops@example.com") == "ops@example.com"
    assert redact_string("Team <ops@example.com>") == "Team <ops@example.com>"


@pytest.mark.parametrize(
    "value",
    [
        f"http://u:{BROKER_PW}@h1,http://u:{CELERY_PW}@h2",
        [f"amqp://u:{BROKER_PW}@h1", f"http://u:{CELERY_PW}@h2"],
        [f"amqp://u:{BROKER_PW}@h1", 5],
        (f"amqp://u:{BROKER_PW}@h1", f"ftp://u:{CELERY_PW}@h2,amqp://u:{BROKER_PW}@h3"),
    ],
)
def test_settings_errors_never_print_a_password(settings, value):
    settings.MESSAGING = {"BROKER_URL": value}
    with pytest.raises(ImproperlyConfigured) as info:
        conf.broker_urls()
    message = str(info.value)
    assert "MESSAGING['BROKER_URL']" in message and "***" in message
    assert BROKER_PW not in message and CELERY_PW not in message


def test_a_broker_error_line_for_comma_separated_urls_has_no_password(settings):
    good = urlsplit(conf.broker_urls()[0])
    where = f"{good.hostname}:{good.port or 5672}{good.path or '/'}"
    settings.MESSAGING = {
        **settings.MESSAGING,
        "BROKER_URL": f"amqp://guest:{BROKER_PW}@{where},amqp://guest:{CELERY_PW}@{where}",
    }
    with pytest.raises(BrokerError) as info:
        broker.connect().close()
    message = str(info.value)
    assert "\n" not in message and "***" in message
    assert BROKER_PW not in message and CELERY_PW not in message


# --------------------------------------------------------------------------- the filter


def test_filter_redacts_nested_settings_lists_and_meta():
    f = SafeExceptionReporterFilter()
    messaging = {
        "BROKER_URL": [f"amqp://u:{BROKER_PW}@h1/", f"amqp://u:{CELERY_PW}@h2/"],
        "NESTED": {"deeper": (f"amqps://u:{ENV_PW}@h3/",)},
        "HEARTBEAT": 60,
    }
    cleansed = f.cleanse_setting("MESSAGING", messaging)
    assert cleansed == {
        "BROKER_URL": ["amqp://u:***@h1/", "amqp://u:***@h2/"],
        "NESTED": {"deeper": ("amqps://u:***@h3/",)},
        "HEARTBEAT": 60,
    }
    request = type("Request", (), {})()
    request.META = {
        "MESSAGING_BROKER_URL": f"amqp://u:{ENV_PW}@a/,amqp://u:{BROKER_PW}@b/",
        "DATABASE_URL": f"postgres://app:{DB_PW}@db:5432/app",
        "SERVER_NAME": "testserver",
    }
    meta = f.get_safe_request_meta(request)
    assert meta["SERVER_NAME"] == "testserver"
    assert meta["DATABASE_URL"] == "postgres://app:***@db:5432/app"
    assert not any(pw in json.dumps(meta) for pw in PASSWORDS)


def _fail_with_secrets_in_locals() -> None:
    url = f"amqp://guest:{LOCAL_PW}@host/"
    nodes = {"primary": [url], "count": 2}
    raise RuntimeError(f"failed with {len(nodes)} nodes")


def test_filter_redacts_traceback_frame_variables():
    try:
        _fail_with_secrets_in_locals()
    except RuntimeError as exc:
        tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    variables = dict(SafeExceptionReporterFilter().get_traceback_frame_variables(None, tb.tb_frame))
    assert variables["url"] == "amqp://guest:***@host/"
    assert repr(variables["nodes"]) == "{'count': 2, 'primary': ['amqp://guest:***@host/']}"
    assert LOCAL_PW not in repr(variables)


# --------------------------------------------------------------------------- a forced 500


def boom(request):
    broker_url = settings.MESSAGING["BROKER_URL"]
    celery = {"url": settings.CELERY_BROKER_URL}
    raise RuntimeError(f"forced 500 ({len(broker_url)}, {len(celery)})")


urlpatterns = [path("boom/", boom)]

SECRET_SETTINGS = {
    "DEBUG": True,
    "ROOT_URLCONF": __name__,
    "MESSAGING": {"BROKER_URL": f"amqp://guest:{BROKER_PW}@127.0.0.1:5672/%2F"},
    "CELERY_BROKER_URL": f"amqp://guest:{CELERY_PW}@127.0.0.1:5672/%2F",
}


def technical_500(**extra_settings) -> str:
    # Django caches the filter it loads from DEFAULT_EXCEPTION_REPORTER_FILTER.
    debug.get_default_exception_reporter_filter.cache_clear()
    try:
        with override_settings(**SECRET_SETTINGS, **extra_settings):
            response = Client(raise_request_exception=False).get(
                "/boom/",
                MESSAGING_BROKER_URL=f"amqp://guest:{ENV_PW}@a/,amqp://guest:{BROKER_PW}@b/",
                DATABASE_URL=f"postgres://app:{DB_PW}@db:5432/app",
            )
    finally:
        debug.get_default_exception_reporter_filter.cache_clear()
    assert response.status_code == 500
    return response.content.decode()


def test_the_debug_500_page_shows_no_broker_password(db):
    assert (
        settings.DEFAULT_EXCEPTION_REPORTER_FILTER == "messaging.debug.SafeExceptionReporterFilter"
    )
    page = technical_500()
    assert "forced 500" in page and "CELERY_BROKER_URL" in page and "DATABASE_URL" in page
    assert "amqp://guest:***@127.0.0.1:5672/%2F" in page
    assert "postgres://app:***@db:5432/app" in page
    assert [pw for pw in PASSWORDS if pw in page] == []


def test_without_the_filter_the_page_would_show_them(db):
    """The test above can fail: Django's own filter leaves URL passwords in clear."""
    page = technical_500(
        DEFAULT_EXCEPTION_REPORTER_FILTER="django.views.debug.SafeExceptionReporterFilter"
    )
    assert BROKER_PW in page and CELERY_PW in page and DB_PW in page


# --------------------------------------------------------------------------- demo settings


def demo_settings(**env: str) -> dict:
    clean = {"PATH": os.environ.get("PATH", ""), **env}
    code = (
        "import json, project.settings as s; print(json.dumps({'debug': s.DEBUG, "
        "'broker': s.MESSAGING['BROKER_URL'], 'celery': s.CELERY_BROKER_URL, "
        "'filter': s.DEFAULT_EXCEPTION_REPORTER_FILTER}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=clean, cwd=ROOT, capture_output=True, check=True
    )
    return json.loads(out.stdout)


def test_demo_settings_default_to_debug_off():
    values = demo_settings()
    assert values["debug"] is False
    assert values["broker"] == "amqp://guest:guest@localhost:5672/%2F"
    assert values["filter"] == "messaging.debug.SafeExceptionReporterFilter"
    assert demo_settings(DJANGO_DEBUG="1")["debug"] is True
    assert demo_settings(DJANGO_DEBUG="0")["debug"] is False


def test_demo_takes_several_comma_separated_broker_urls():
    values = demo_settings(MESSAGING_BROKER_URL="amqp://a:p1@h1/%2F, amqp://b:p2@h2/%2F,")
    assert values["broker"] == ["amqp://a:p1@h1/%2F", "amqp://b:p2@h2/%2F"]
    assert values["celery"] == "amqp://a:p1@h1/%2F;amqp://b:p2@h2/%2F"
    assert demo_settings(MESSAGING_BROKER_URL="amqp://a:p1@h1/")["broker"] == "amqp://a:p1@h1/"
