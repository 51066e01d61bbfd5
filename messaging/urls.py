"""URLs for web processes: ``include("messaging.urls")`` (the demo project mounts them
at ``/messaging/``): ``metrics``, ``health/live``, ``health/ready``."""

from django.urls import path

from .observability import endpoints as views

app_name = "messaging"

urlpatterns = [
    path("metrics", views.metrics_view, name="metrics"),
    path("health/live", views.live, name="health-live"),
    path("health/ready", views.ready, name="health-ready"),
]
