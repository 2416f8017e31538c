from django.urls import re_path

from inferencemgmt.operations.api.views import OperationDetailView, OperationListView

urlpatterns = [
    re_path(r"^tasks/?$", OperationListView.as_view(), name="operation-list"),
    re_path(r"^tasks/(?P<operation_id>[^/]+)/?$", OperationDetailView.as_view(), name="operation-detail"),
]
