"""Time the admin overview page: ``python -m bench.overview REPEAT [URL_NAME]`` with
``DJANGO_SETTINGS_MODULE=bench.settings`` and ``BENCH_DATABASE_URL`` set by the driver
(``URL_NAME``: another admin page, e.g. ``admin:messaging_failures``, or a path with its
query string, ``/admin/…?…``).

Logs in a superuser with Django's test client, GETs ``admin:messaging_overview`` once
cold (templates, first queries) and then REPEAT times, and prints one JSON line:
``{"available": true, "cold": s, "median": s, "best": s, "queries": n, "status": 200}``,
or ``{"available": false}`` when the URL does not exist.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from contextlib import nullcontext
from typing import Any


def _logged_in_client() -> Any:
    """Django's test client logged in as the bench superuser (made on first use)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    user_model = get_user_model()
    user = user_model.objects.filter(username="bench-admin").first()
    if user is None:
        user = user_model.objects.create_superuser("bench-admin", "bench@example.com", "bench")
    client = Client()
    client.force_login(user)
    return client


def _summary(times: list[float], status: int, queries: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON line: the cold GET, the median and best warm one, the slowest queries."""
    warm = times[1:] or times[:1]
    return {
        "available": True,
        "status": status,
        "cold": times[0],
        "median": statistics.median(warm),
        "best": min(warm),
        "queries": len(queries),
        "slowest": sorted(
            ({"seconds": float(q["time"]), "sql": q["sql"][:300]} for q in queries),
            key=lambda q: -q["seconds"],
        )[:3],
    }


def main(argv: list[str]) -> int:
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import NoReverseMatch, reverse

    repeat = int(argv[0]) if argv else 5
    name = argv[1] if len(argv) > 1 else "admin:messaging_overview"
    try:
        url = name if name.startswith("/") else reverse(name)
    except NoReverseMatch:
        print(json.dumps({"available": False}), flush=True)
        return 0
    client = _logged_in_client()
    times = []
    status = 200
    for i in range(1 + repeat):
        # The last GET also records its queries (a few microseconds each).
        with CaptureQueriesContext(connection) if i == repeat else nullcontext() as queries:
            start = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - start)
        status = response.status_code
        if status != 200:
            break
    print(json.dumps(_summary(times, status, queries or [])), flush=True)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
