from django.urls import re_path

from servings.api.views import ServingDetailView, ServingListView

urlpatterns = [
    re_path(r"^servings/?$", ServingListView.as_view(), name="serving-list"),
    re_path(r"^servings/(?P<name>[^/]+)/?$", ServingDetailView.as_view(), name="serving-detail"),
]
