"""Console routes for tenants (the API's routes are in tenants/api/urls.py)."""

from django.urls import path

from tenants import views

urlpatterns = [
    path("", views.dashboard, name="console-dashboard"),
    path("tenants/new/", views.tenant_create, name="console-tenant-create"),
    path("tenants/<str:name>/", views.tenant_detail, name="console-tenant"),
    path("tenants/<str:name>/card/", views.tenant_card, name="console-tenant-card"),
    path("tenants/<str:name>/delete/", views.tenant_delete, name="console-tenant-delete"),
]
