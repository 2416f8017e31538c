from django.urls import re_path

from endpoints.api.views import (
    EndpointCollectionView,
    EndpointDetailView,
    EndpointEventsView,
    EndpointLogsView,
    EndpointMetricsView,
    EndpointPauseView,
    EndpointReplicasView,
    EndpointResumeView,
)

_ENDPOINT = r"^tenants/(?P<tenant>[^/]+)/endpoints/(?P<name>[^/]+)"

urlpatterns = [
    re_path(r"^tenants/(?P<tenant>[^/]+)/endpoints/?$", EndpointCollectionView.as_view(), name="endpoint-list"),
    re_path(rf"{_ENDPOINT}/?$", EndpointDetailView.as_view(), name="endpoint-detail"),
    re_path(rf"{_ENDPOINT}/replicas/?$", EndpointReplicasView.as_view(), name="endpoint-replicas"),
    re_path(rf"{_ENDPOINT}/events/?$", EndpointEventsView.as_view(), name="endpoint-events"),
    re_path(rf"{_ENDPOINT}/logs/?$", EndpointLogsView.as_view(), name="endpoint-logs"),
    re_path(rf"{_ENDPOINT}/metrics/?$", EndpointMetricsView.as_view(), name="endpoint-metrics"),
    re_path(rf"{_ENDPOINT}/pause/?$", EndpointPauseView.as_view(), name="endpoint-pause"),
    re_path(rf"{_ENDPOINT}/resume/?$", EndpointResumeView.as_view(), name="endpoint-resume"),
]
