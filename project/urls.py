from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # Prometheus metrics and the probes: /messaging/metrics, /messaging/health/live|ready.
    path("messaging/", include("messaging.urls")),
]
