"""The settings accessor (``messaging.conf``) and the system checks (``messaging.checks``).

No broker or database is needed here: everything is read from ``settings.MESSAGING``.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from messaging import broker, conf
from messaging.checks import check_settings

pytestmark = pytest.mark.unit

PASSWORD = "s3cr3t-Pa55w0rd"


def messaging(**overrides: Any) -> dict[str, Any]:
    """The test settings' MESSAGING with some keys replaced."""
    return {**settings.MESSAGING, **overrides}


def messaging_messages() -> list[checks.CheckMessage]:
    # databases=[]: no database is asked (from Django 6.1 on, run_checks() without
    # databases runs the model checks against every database, which touches it).
    checks_run = checks.run_checks(databases=[])
    return [m for m in checks_run if (m.id or "").startswith("messaging.")]


# --------------------------------------------------------------------------- accessor


def test_defaults_when_messaging_is_unset(settings):
    del settings.MESSAGING
    for key, default in conf.DEFAULTS.items():
        assert conf.get(key) == default, key
    assert conf.get("HEARTBEAT") == 60
    assert conf.get("PREFETCH") == 1
    assert conf.get("CONSUMERS") == {}
    assert conf.broker_urls() == ["amqp://guest:guest@localhost:5672/%2F"]


@pytest.mark.parametrize("value", [{}, None])
def test_defaults_when_messaging_is_empty_or_none(value):
    with override_settings(MESSAGING=value):
        assert conf.get("CONNECTION_TIMEOUT") == 10
        assert conf.get("BLOCKED_CONNECTION_TIMEOUT") == 60
        assert conf.get("RECONNECT_MAX_DELAY") == 30.0


def test_override_settings_is_seen_at_call_time():
    assert conf.get("HEARTBEAT") == 60
    assert conf.get("RECONNECT_DELAY") == 0.2  # set by tests/settings.py
    with override_settings(MESSAGING=messaging(HEARTBEAT=5, PREFETCH=7)):
        assert conf.get("HEARTBEAT") == 5
        assert conf.get("PREFETCH") == 7
    # Back to the outer value once the override ends: nothing was cached.
    assert conf.get("HEARTBEAT") == 60
    assert conf.get("PREFETCH") == 1


def test_override_replaces_the_whole_dict():
    # override_settings(MESSAGING=...) replaces the dict: missing keys fall back to DEFAULTS.
    with override_settings(MESSAGING={"HEARTBEAT": 3}):
        assert conf.get("RECONNECT_DELAY") == conf.DEFAULTS["RECONNECT_DELAY"]
        assert conf.get("BROKER_URL") == conf.DEFAULTS["BROKER_URL"]


def test_broker_urls_accepts_one_url_or_a_list():
    with override_settings(MESSAGING={"BROKER_URL": "amqps://u:p@h:5671/v"}):
        assert conf.broker_urls() == ["amqps://u:p@h:5671/v"]
    urls = ["amqp://a:1@node1/%2F", "amqp://a:1@node2/%2F"]
    with override_settings(MESSAGING={"BROKER_URL": urls}):
        assert conf.broker_urls() == urls
    with override_settings(MESSAGING={"BROKER_URL": tuple(urls)}):
        assert conf.broker_urls() == urls


def test_unknown_key_is_a_programming_error():
    with pytest.raises(KeyError, match="HEARTBAET"):
        conf.get("HEARTBAET")


def test_messaging_not_a_dict_is_improperly_configured():
    with (
        override_settings(MESSAGING=["amqp://localhost"]),
        pytest.raises(ImproperlyConfigured, match=r"settings\.MESSAGING must be a dict"),
    ):
        conf.get("HEARTBEAT")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("HEARTBEAT", -1),
        ("HEARTBEAT", "60"),
        ("HEARTBEAT", True),
        ("CONNECTION_TIMEOUT", -0.5),
        ("BLOCKED_CONNECTION_TIMEOUT", None),
        ("RECONNECT_DELAY", "fast"),
        ("RECONNECT_MAX_DELAY", -1),
        ("PREFETCH", 0),
        ("PREFETCH", 1.5),
        ("PREFETCH", True),
        ("PREFETCH", 65536),
        ("CONSUMERS", ["q1"]),
        ("CONSUMERS", {"q1": 3}),
        ("CONSUMERS", {"": "tests.support.handlers.ok"}),
        ("BROKER_URL", ""),
        ("BROKER_URL", []),
        ("BROKER_URL", 5672),
    ],
)
def test_bad_value_raises_naming_the_key(key, value):
    with (
        override_settings(MESSAGING=messaging(**{key: value})),
        pytest.raises(ImproperlyConfigured) as info,
    ):
        conf.get(key)
    assert f"MESSAGING[{key!r}]" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        f"http://guest:{PASSWORD}@localhost:5672/",
        f"redis://:{PASSWORD}@localhost:6379/0",
        f"guest:{PASSWORD}@localhost:5672",
        ["amqp://guest:guest@node1/%2F", f"http://guest:{PASSWORD}@node2/"],
    ],
)
def test_broker_url_must_be_amqp_and_error_hides_the_password(url):
    with (
        override_settings(MESSAGING=messaging(BROKER_URL=url)),
        pytest.raises(ImproperlyConfigured) as info,
    ):
        conf.broker_urls()
    message = str(info.value)
    assert "MESSAGING['BROKER_URL']" in message
    assert "amqp://" in message
    assert PASSWORD not in message


def test_broker_url_list_with_an_empty_entry_hides_the_passwords():
    # The "not a URL or list of URLs" branch used to repr() the whole list, passwords
    # included.
    url = ["amqp://guest:" + PASSWORD + "@node1/%2F", ""]
    with (
        override_settings(MESSAGING=messaging(BROKER_URL=url)),
        pytest.raises(ImproperlyConfigured) as info,
    ):
        conf.broker_urls()
    assert "MESSAGING['BROKER_URL']" in str(info.value)
    assert PASSWORD not in str(info.value)
    assert "guest:***@node1" in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            f"amqp://guest:{PASSWORD}@localhost:5672/%2F",
            "amqp://guest:***@localhost:5672/%2F",
        ),
        (f"amqps://user:{PASSWORD}@[::1]:5671/vhost", "amqps://user:***@[::1]:5671/vhost"),
        (f"amqp://user:{PASSWORD}@[2001:db8::1]/%2F", "amqp://user:***@[2001:db8::1]/%2F"),
        (f"amqp://user:{PASSWORD}@h/v?heartbeat=5", "amqp://user:***@h/v?heartbeat=5"),
        (f"amqp://:{PASSWORD}@h/", "amqp://:***@h/"),
        # A password containing "@": everything up to the last "@" is userinfo.
        (f"amqp://user:{PASSWORD}@x@h/", "amqp://user:***@h/"),
        # Nothing to hide: unchanged.
        ("amqp://guest@[::1]:5672/%2F", "amqp://guest@[::1]:5672/%2F"),
        ("amqp://localhost/", "amqp://localhost/"),
    ],
)
def test_redact_url(url, expected):
    assert conf.redact_url(url) == expected
    assert PASSWORD not in conf.redact_url(url)


@pytest.mark.parametrize(
    "url",
    [
        f"amqp://user:{PASSWORD}@host:notaport/%2F",
        f"amqp://user:{PASSWORD}@[::1/%2F",
        f"guest:{PASSWORD}@localhost:5672",  # no scheme://
        f"amqp:/guest:{PASSWORD}@localhost:5672",
    ],
)
def test_redact_url_of_malformed_url_does_not_raise_or_leak(url):
    assert PASSWORD not in conf.redact_url(url)


def test_connection_parameters_read_settings_at_call_time():
    with override_settings(MESSAGING=messaging(HEARTBEAT=11)):
        assert broker.connection_parameters("amqp://localhost/").heartbeat == 11
    assert broker.connection_parameters("amqp://localhost/").heartbeat == 60


# --------------------------------------------------------------------------- checks


def test_test_settings_pass_the_checks():
    assert messaging_messages() == []
    assert check_settings() == []


@pytest.mark.parametrize("value", [None, {}])
def test_empty_or_none_messaging_passes_the_checks(value):
    with override_settings(MESSAGING=value):
        assert check_settings() == []


def test_valid_full_configuration_passes_the_checks():
    value = {
        "BROKER_URL": ["amqp://u:p@node1/%2F", "amqps://u:p@node2/%2F"],
        "HEARTBEAT": 0,
        "CONNECTION_TIMEOUT": 2.5,
        "BLOCKED_CONNECTION_TIMEOUT": 30,
        "CONSUMERS": {"q1": "tests.support.handlers.ok"},
        "PREFETCH": 10,
        "RECONNECT_DELAY": 0,
        "RECONNECT_MAX_DELAY": 5,
    }
    with override_settings(MESSAGING=value):
        assert check_settings() == []
        assert messaging_messages() == []


CHECK_CASES = [
    pytest.param(["amqp://localhost"], "messaging.E001", "MESSAGING", id="E001-list"),
    pytest.param("amqp://localhost", "messaging.E001", "MESSAGING", id="E001-str"),
    pytest.param(
        {"BROKER_URL": f"http://guest:{PASSWORD}@h/"}, "messaging.E002", "BROKER_URL", id="E002"
    ),
    pytest.param(
        {"BROKER_URL": [f"amqp://guest:{PASSWORD}@h/", ""]},
        "messaging.E002",
        "BROKER_URL",
        id="E002-list",
    ),
    pytest.param(
        {"BROKER_URL": f"http://guest:{PASSWORD}@h:notaport/"},
        "messaging.E002",
        "BROKER_URL",
        id="E002-bad-port",
    ),
    pytest.param({"HEARTBEAT": -1}, "messaging.E003", "HEARTBEAT", id="E003-heartbeat"),
    pytest.param(
        {"CONNECTION_TIMEOUT": "10"}, "messaging.E003", "CONNECTION_TIMEOUT", id="E003-timeout"
    ),
    pytest.param(
        {"BLOCKED_CONNECTION_TIMEOUT": None},
        "messaging.E003",
        "BLOCKED_CONNECTION_TIMEOUT",
        id="E003-blocked",
    ),
    pytest.param({"RECONNECT_DELAY": -0.1}, "messaging.E003", "RECONNECT_DELAY", id="E003-delay"),
    pytest.param(
        {"RECONNECT_MAX_DELAY": "30"}, "messaging.E003", "RECONNECT_MAX_DELAY", id="E003-max"
    ),
    pytest.param(
        {"RELAY_WARNING_AFTER": 0}, "messaging.E003", "RELAY_WARNING_AFTER", id="E003-relay-warning"
    ),
    pytest.param({"PREFETCH": 0}, "messaging.E004", "PREFETCH", id="E004"),
    pytest.param({"CONSUMERS": ["q1"]}, "messaging.E005", "CONSUMERS", id="E005-list"),
    pytest.param({"CONSUMERS": {"q1": 3}}, "messaging.E005", "CONSUMERS", id="E005-value"),
    pytest.param(
        {"CONSUMERS": {"q1": "no_such_module.handler"}},
        "messaging.E006",
        "no_such_module.handler",
        id="E006-module",
    ),
    pytest.param(
        {"CONSUMERS": {"q1": "tests.support.handlers.no_such_handler"}},
        "messaging.E006",
        "no_such_handler",
        id="E006-attribute",
    ),
    pytest.param(
        {"CONSUMERS": {"q1": "tests.support.handlers.os"}},  # a module: not callable
        "messaging.E006",
        "not callable",
        id="E006-not-callable",
    ),
    pytest.param({"HEARTBAET": 30}, "messaging.W001", "HEARTBAET", id="W001"),
]


@pytest.mark.parametrize(("value", "expected_id", "named"), CHECK_CASES)
def test_check_settings_ids(value, expected_id, named):
    with override_settings(MESSAGING=value):
        direct = check_settings()
        via_framework = messaging_messages()
    for found in (direct, via_framework):
        assert [m.id for m in found] == [expected_id]
        (message,) = found
        assert named in message.msg
        expected_level = checks.WARNING if expected_id.endswith("W001") else checks.ERROR
        assert message.level == expected_level
        assert PASSWORD not in message.msg
        assert PASSWORD not in (message.hint or "")


def test_consumers_handler_errors_name_the_queue():
    value = {"CONSUMERS": {"orders": "tests.support.handlers.ok", "emails": "nope.nope"}}
    with override_settings(MESSAGING=value):
        found = check_settings()
    assert [m.id for m in found] == ["messaging.E006"]
    assert "MESSAGING['CONSUMERS']['emails']" in found[0].msg


def test_no_check_message_ever_contains_the_password():
    value = {
        "BROKER_URL": [f"amqp://guest:{PASSWORD}@node1/%2F", f"http://u:{PASSWORD}@node2/", ""],
        "HEARTBEAT": -1,
        "PREFETCH": 0,
        "CONSUMERS": {"q1": "no.such.handler"},
        "PASSWORD": PASSWORD,  # an unknown key whose value is a secret
    }
    with override_settings(MESSAGING=value):
        found = check_settings()
    ids = sorted(m.id for m in found)
    assert ids == [
        "messaging.E002",
        "messaging.E003",
        "messaging.E004",
        "messaging.E006",
        "messaging.W001",
    ]
    for message in found:
        assert PASSWORD not in message.msg
        assert PASSWORD not in (message.hint or "")


def test_manage_check_fails_on_a_bad_setting():
    with (
        override_settings(MESSAGING=messaging(HEARTBEAT=-5)),
        pytest.raises(SystemCheckError, match=r"messaging\.E003"),
    ):
        call_command("check", databases=[])  # no database asked (Django 6.1)


def test_fractional_heartbeat_is_refused_not_truncated():
    # pika takes whole seconds; 0.5 silently becoming 0 would turn heartbeats off.
    with (
        override_settings(MESSAGING={"HEARTBEAT": 0.5}),
        pytest.raises(ImproperlyConfigured, match=r"MESSAGING\['HEARTBEAT'\]"),
    ):
        conf.get("HEARTBEAT")


def test_the_app_registers_its_checks_when_django_starts():
    """In a fresh process nothing imports ``messaging.checks`` but the app's ``ready()``:
    a bad setting still stops ``manage.py check``."""
    import subprocess
    import sys

    from tests.support.environment import ROOT

    env = {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": "sqlite://:memory:",
        "MESSAGING_TEST_SETTINGS": '{"HEARTBEAT": -5}',
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "messaging.E" in proc.stderr


def test_the_stalled_outbox_check_is_a_database_check():
    """``messaging.W002`` (pending messages and no relay, see tests/admin/test_relay_warning)
    reads the database: ``manage.py check`` alone does not run it, ``--database`` does."""
    from messaging.checks import IDS, check_outbox

    assert IDS["OUTBOX_STALLED"] == "messaging.W002"
    assert check_outbox in checks.registry.registry.get_checks(include_deployment_checks=False)
    assert checks.Tags.database in check_outbox.tags
    assert check_outbox() == []  # no database given: not asked


@pytest.mark.unit
@pytest.mark.parametrize("key", sorted(conf.DEFAULTS))
def test_every_setting_with_a_bad_value_is_a_check_error_with_its_id(key: str) -> None:
    """A wrong type for any setting is one ``messaging.E…`` error, never a crash of
    ``manage.py check`` (a setting missing from the ids table once raised KeyError)."""
    with override_settings(MESSAGING={key: object()}):
        errors = check_settings()
    assert [e.id for e in errors if e.level >= checks.ERROR], errors
    assert all(e.id.startswith("messaging.E") for e in errors), errors
