"""Console routes of the usage ledger (the API's route is in usage/api/urls.py)."""

from django.urls import path

from usage import views

urlpatterns = [
    path("usage/", views.usage_ranking, name="console-usage"),
]
