"""Console routes for endpoints (the API's routes are in endpoints/api/urls.py)."""

from django.urls import path

from endpoints import views

urlpatterns = [
    path("tenants/<str:tenant>/endpoints/", views.endpoint_rows, name="console-endpoint-rows"),
    path("tenants/<str:tenant>/endpoints/new/", views.endpoint_create, name="console-endpoint-create"),
    path("tenants/<str:tenant>/endpoints/<str:name>/", views.endpoint_detail, name="console-endpoint"),
    path("tenants/<str:tenant>/endpoints/<str:name>/status/", views.endpoint_status, name="console-endpoint-status"),
    path(
        "tenants/<str:tenant>/endpoints/<str:name>/<str:action>/",
        views.endpoint_action,
        name="console-endpoint-action",
    ),
]
