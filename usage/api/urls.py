from django.urls import re_path

from usage.api.views import TenantUsageView

urlpatterns = [
    re_path(r"^tenants/(?P<tenant>[^/]+)/usage/?$", TenantUsageView.as_view(), name="tenant-usage"),
]
