"""Console routes for the audit trail (the API's routes are in audit/api/urls.py)."""

from django.urls import path

from audit import views

urlpatterns = [
    path("audit/", views.audit_list, name="console-audit"),
    path("audit/export.csv", views.audit_export, name="console-audit-export"),
]
