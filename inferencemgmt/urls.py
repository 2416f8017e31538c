"""Routes. Every API route accepts an optional trailing slash (``/?$``) and never redirects."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCLogoutView

from inferencemgmt import views
from inferencemgmt.auth.console import ConsoleLoginView
from inferencemgmt.auth.views import AuthenticateView, TokenView
from inferencemgmt.health import LivenessView, ReadinessView

handler400 = "inferencemgmt.api.exceptions.bad_request"
handler403 = "inferencemgmt.api.exceptions.permission_denied"
handler404 = "inferencemgmt.api.exceptions.page_not_found"
handler500 = "inferencemgmt.api.exceptions.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    re_path(r"^healthz/?$", LivenessView.as_view(), name="healthz"),
    re_path(r"^readyz/?$", ReadinessView.as_view(), name="readyz"),
    re_path(r"^authenticate/?$", AuthenticateView.as_view(), name="authenticate"),
    re_path(r"^authenticate/token/?$", TokenView.as_view(), name="authenticate-token"),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # Console login (authorization code + PKCE) and logout.
    path("oidc/authenticate/", ConsoleLoginView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", OIDCAuthenticationCallbackView.as_view(), name="oidc_authentication_callback"),
    path("oidc/logout/", OIDCLogoutView.as_view(), name="oidc_logout"),
    path("admin/", admin.site.urls),
    path("", include("inferencemgmt.operations.api.urls")),
    path("", include("servings.api.urls")),
]
