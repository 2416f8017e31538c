"""Routes. Every API route accepts an optional trailing slash (``/?$``) and never redirects."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from mozilla_django_oidc.views import OIDCLogoutView

from inferencemgmt import views
from inferencemgmt.api.exceptions import page_not_found
from inferencemgmt.auth.console import ConsoleCallbackView, ConsoleLoginView
from inferencemgmt.auth.views import AuthenticateView, TokenView
from inferencemgmt.health import LivenessView, ReadinessView
from inferencemgmt.scrape import MetricsView
from inferencemgmt.securityheaders import swagger_policy

handler400 = "inferencemgmt.api.exceptions.bad_request"
handler403 = "inferencemgmt.api.exceptions.permission_denied"
handler404 = "inferencemgmt.api.exceptions.page_not_found"
handler500 = "inferencemgmt.api.exceptions.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    re_path(r"^healthz/?$", LivenessView.as_view(), name="healthz"),
    re_path(r"^readyz/?$", ReadinessView.as_view(), name="readyz"),
    re_path(r"^metrics/?$", MetricsView.as_view(), name="metrics"),
    re_path(r"^authenticate/?$", AuthenticateView.as_view(), name="authenticate"),
    re_path(r"^authenticate/token/?$", TokenView.as_view(), name="authenticate-token"),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", swagger_policy(SpectacularSwaggerView.as_view(url_name="schema")), name="swagger-ui"),
    # Console login (authorization code + PKCE) and logout.
    path("oidc/authenticate/", ConsoleLoginView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", ConsoleCallbackView.as_view(), name="oidc_authentication_callback"),
    path("oidc/logout/", OIDCLogoutView.as_view(), name="oidc_logout"),
    # The admin site signs in through the identity provider too (there are no local passwords).
    path("admin/login/", RedirectView.as_view(pattern_name="oidc_authentication_init", query_string=True)),
    path("admin/", admin.site.urls),
    # The console: HTML pages for people, on the same services as the API.
    path("console/", include("tenants.urls")),
    path("console/", include("inferencemgmt.operations.urls")),
    path("console/", include("servings.urls")),
    path("console/", include("models_store.urls")),
    path("console/", include("endpoints.urls")),
    path("console/", include("audit.urls")),
    path("console/", include("usage.urls")),
    path("", include("inferencemgmt.operations.api.urls")),
    path("", include("tenants.api.urls")),
    path("", include("servings.api.urls")),
    path("", include("models_store.api.urls")),
    path("", include("endpoints.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("usage.api.urls")),
]

# Last: any other path is a JSON 404, in DEBUG too (Django's debug 404 page is HTML).
urlpatterns.append(re_path(r"", page_not_found))
