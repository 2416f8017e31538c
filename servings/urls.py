"""Console routes for serving templates (the API's routes are in servings/api/urls.py)."""

from django.urls import path

from servings import views

urlpatterns = [
    path("servings/", views.serving_list, name="console-servings"),
    path("servings/<str:name>/", views.serving_detail, name="console-serving"),
]
