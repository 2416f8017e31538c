from django.urls import re_path

from tenants.api.robots import RobotCollectionView, RobotDetailView, RobotTokenView
from tenants.api.views import TenantCollectionView, TenantCredentialsRotateView, TenantDetailView

urlpatterns = [
    re_path(r"^tenants/?$", TenantCollectionView.as_view(), name="tenant-list"),
    re_path(r"^tenants/(?P<name>[^/]+)/?$", TenantDetailView.as_view(), name="tenant-detail"),
    re_path(
        r"^tenants/(?P<name>[^/]+)/credentials/rotate/?$",
        TenantCredentialsRotateView.as_view(),
        name="tenant-credentials-rotate",
    ),
    re_path(r"^tenants/(?P<tenant>[^/]+)/robots/?$", RobotCollectionView.as_view(), name="robot-list"),
    re_path(r"^tenants/(?P<tenant>[^/]+)/robots/(?P<name>[^/]+)/?$", RobotDetailView.as_view(), name="robot-detail"),
    re_path(
        r"^tenants/(?P<tenant>[^/]+)/robots/(?P<name>[^/]+)/tokens/?$", RobotTokenView.as_view(), name="robot-tokens"
    ),
]
