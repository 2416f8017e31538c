from django.urls import re_path

from audit.api.views import AuditExportView, AuditListView

urlpatterns = [
    re_path(r"^audit/?$", AuditListView.as_view(), name="audit-list"),
    re_path(r"^audit/export/?$", AuditExportView.as_view(), name="audit-export"),
]
