"""The answers of ``/tasks`` and the ``202`` every route that starts an operation may give."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from inferencemgmt.api.openapi import envelope_answer, shape
from inferencemgmt.operations.api.serializers import OperationSerializer
from inferencemgmt.operations.models import Operation

TASK_LIST_ANSWER = envelope_answer("TaskListAnswer", "OK", shape("TaskList", {"tasks": OperationSerializer(many=True)}))
TASK_ANSWER = envelope_answer("TaskAnswer", "OK", OperationSerializer())

_ACCEPTED_ANSWER = envelope_answer(
    "AcceptedAnswer",
    "ACCEPTED",
    shape(
        "Accepted",
        {
            "name": serializers.CharField(),
            "task": shape(
                "TaskLink",
                {
                    "id": serializers.UUIDField(),
                    "url": serializers.CharField(help_text="Relative: GET it to follow the task."),
                    "state": serializers.ChoiceField(choices=Operation.State.values),
                },
            ),
        },
    ),
)
#: ``answer_operation`` / ``accepted``: with ``Prefer: respond-async``, or when the work outlives the wait.
ACCEPTED = OpenApiResponse(
    _ACCEPTED_ANSWER,
    description="Started, not finished (`Prefer: respond-async`, or the wait ran out): follow `data.task.url`.",
)
