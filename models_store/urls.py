"""Console routes for models (the API's routes are in models_store/api/urls.py)."""

from django.urls import path

from models_store import views

urlpatterns = [
    path(
        "tenants/<str:tenant>/models/<str:name>/<int:version>/delete/",
        views.model_version_delete,
        name="console-model-delete",
    ),
]
