from django.urls import re_path

from tenants.api.views import TenantCollectionView, TenantDetailView

urlpatterns = [
    re_path(r"^tenants/?$", TenantCollectionView.as_view(), name="tenant-list"),
    re_path(r"^tenants/(?P<name>[^/]+)/?$", TenantDetailView.as_view(), name="tenant-detail"),
]
