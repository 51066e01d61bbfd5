"""Reading what a ``runconsumer`` process serves on ``/metrics``, and the receipts to
compare it with."""

from __future__ import annotations

import urllib.request
from collections import Counter

from django.db.models import Count
from prometheus_client.parser import text_string_to_metric_families

from messaging.models import Receipt


def scrape(port: int, timeout: float = 10) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as answer:
        assert answer.status == 200
        return answer.read().decode()


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called ``name`` (e.g. ``messaging_deliveries_total``) by its labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def receipt_counts(queue: str) -> Counter[str]:
    rows = Receipt.objects.filter(queue_name=queue).values("outcome").annotate(n=Count("id"))
    return Counter({row["outcome"]: row["n"] for row in rows})


def delivery_counts(text: str, queue: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for labels, value in samples(text, "messaging_deliveries_total").items():
        as_dict = dict(labels)
        if as_dict["queue"] == queue:
            counts[as_dict["outcome"]] = int(value)
    return counts
