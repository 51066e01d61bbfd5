"""Playwright (headless Chromium) against pytest-django's ``live_server``.

The browser is the Debian ``chromium`` package (``/usr/bin/chromium``, or
``MESSAGING_CHROMIUM``), launched through Playwright's Python package with
``executable_path``: nothing is downloaded. A missing browser fails the tests, it does
not skip them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connections
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
PASSWORD = "browser-test-password"


def chromium_path() -> str:
    return (
        os.environ.get("MESSAGING_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
        or "/usr/bin/chromium"
    )


@pytest.fixture
def browser(transactional_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    path = chromium_path()
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"no Chromium at {path}: install it (Debian: apt-get install chromium; .ci/run "
            "does) or point MESSAGING_CHROMIUM at one"
        )
    # Playwright's sync API runs an asyncio loop in this thread; Django would then refuse
    # the test's own ORM calls. They are plain synchronous calls: allow them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            # ORM calls made while Playwright's loop ran opened connections in that
            # loop's context (asgiref locals); close them here, in the same context.
            connections.close_all()
            launched.close()


@pytest.fixture(scope="session")
def live_server(django_db_setup: None, live_server: object) -> object:
    """pytest-django's live server, stopped (and its database connections closed) before
    the test database is dropped: PostgreSQL refuses to drop a database in use."""
    return live_server


@pytest.fixture
def operator(transactional_db: None) -> User:
    return User.objects.create_superuser("operator", "operator@example.com", PASSWORD)


@pytest.fixture
def page(browser: Browser, live_server: object, operator: User) -> Iterator[Page]:
    """A page logged in to the admin as a superuser."""
    context = browser.new_context(base_url=str(live_server.url))
    context.set_default_timeout(20_000)
    page = context.new_page()
    log_in(page, operator.username, PASSWORD)
    try:
        yield page
    finally:
        context.close()


def log_in(page: Page, username: str, password: str) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


#: Where the browser tests save their screenshots (the browser tests' artifacts).
ARTIFACTS = Path(
    os.environ.get("MESSAGING_BROWSER_ARTIFACTS")
    or Path(__file__).resolve().parents[2] / "build" / "browser-artifacts"
)
#: The widths operators use.
SCREEN_WIDTHS = (1400, 1920)


@pytest.fixture
def screenshot(page: Page) -> Callable[[str], list[Path]]:
    """``screenshot(name)``: the current page, full length, at each of
    :data:`SCREEN_WIDTHS`, saved as ``<ARTIFACTS>/<name>-<width>.png``."""

    def take(name: str) -> list[Path]:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        paths = []
        for width in SCREEN_WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            path = ARTIFACTS / f"{name}-{width}.png"
            page.screenshot(path=str(path), full_page=True)
            paths.append(path)
        return paths

    return take
