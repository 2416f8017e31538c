"""Console routes for tasks (the API's `/tasks` routes are in operations/api/urls.py)."""

from django.urls import path

from inferencemgmt.operations import views

urlpatterns = [
    path("tasks/", views.task_list, name="console-tasks"),
    path("tasks/<uuid:operation_id>/", views.task_detail, name="console-task"),
    path("tasks/<uuid:operation_id>/progress/", views.task_progress, name="console-task-progress"),
]
