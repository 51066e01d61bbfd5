"""The views of ``messaging.urls``: ``metrics`` (Prometheus), ``health/live`` and
``health/ready`` (probes). None needs a login: mount them where only the cluster's
network reaches (they show counts and check results, never a secret)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import health, metrics
from .exposition import exposition


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Every metric of this process (all workers' under PROMETHEUS_MULTIPROC_DIR) and
    the scrape-time gauges."""
    if not metrics.available():
        return HttpResponse(
            "prometheus_client is not installed (extra 'metrics')\n",
            status=503,
            content_type="text/plain",
        )
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    """The process answers."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """The database and the broker answer: 200, else 503 saying which does not."""
    report = health.readiness()
    body = {"status": "ok" if report.ok else "unavailable", **report.as_dict()}
    return JsonResponse(body, status=200 if report.ok else 503)
