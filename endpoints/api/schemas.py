"""The answers of the endpoint routes, as the OpenAPI schema documents them."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from endpoints.status import AVAILABLE, NOT_FULLY_AVAILABLE, PENDING, SCALED_TO_ZERO, UNAVAILABLE
from inferencemgmt.api.openapi import envelope_answer, page_envelope_answer, shape

STATUS_WORDS = [AVAILABLE, UNAVAILABLE, NOT_FULLY_AVAILABLE, SCALED_TO_ZERO, PENDING]


def _url() -> serializers.CharField:
    return serializers.CharField(help_text="<endpoint>-<tenant>.<platform domain>:443")


def _status() -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=STATUS_WORDS)


ENDPOINT_LIST_ANSWER = page_envelope_answer(
    "EndpointListAnswer",
    shape(
        "EndpointList",
        {
            "endpoints": shape(
                "EndpointEntry", {"name": serializers.CharField(), "url": _url(), "status": _status()}, many=True
            )
        },
    ),
)
ENDPOINT_CREATED_ANSWER = envelope_answer(
    "EndpointCreatedAnswer",
    "CREATED",
    shape(
        "EndpointCreated",
        {
            "url": _url(),
            "warning": serializers.CharField(
                allow_blank=True, help_text="Empty, or says that the model is not in the tenant's bucket."
            ),
        },
    ),
)
ENDPOINT_DELETED_ANSWER = envelope_answer("EndpointDeletedAnswer", "DELETED", shape("EndpointDeleted", {"url": _url()}))
ENDPOINT_PATCHED_ANSWER = envelope_answer(
    "EndpointPatchedAnswer",
    "PATCHED",
    shape(
        "EndpointPatched",
        {
            "url": _url(),
            "values": serializers.DictField(
                child=serializers.JSONField(),
                help_text="The body as sent (the original's answer); pause and resume give {replicas}.",
            ),
        },
    ),
)
_QUANTITIES = {"type": "object", "additionalProperties": {"type": "string"}}


@extend_schema_field(
    {
        "anyOf": [
            {"type": "object", "properties": {"requests": _QUANTITIES, "limits": _QUANTITIES}},
            {"type": "string", "enum": ["Not specified"]},
        ]
    }
)
class ViewResourcesField(serializers.JSONField):
    """The view's ``resources``: the CR's nested requests/limits, or the original's "Not specified"."""


_COUNT_OR_NONE = serializers.IntegerField(allow_null=True, min_value=1)
ENDPOINT_ANSWER = envelope_answer(
    "EndpointAnswer",
    "OK",
    shape(
        "Endpoint",
        {
            "endpoint status": shape(
                "EndpointPods",
                {
                    "running pods": serializers.IntegerField(min_value=0),
                    "pending pods": serializers.IntegerField(min_value=0),
                    "failed pods": serializers.IntegerField(min_value=0),
                },
            ),
            "endpoint url": _url(),
            "subject name": serializers.CharField(allow_null=True),
            "resources": ViewResourcesField(),
            "replicas": shape("EndpointReplicas", {"available": _COUNT_OR_NONE, "unavailable": _COUNT_OR_NONE}),
            "status": _status(),
            "reason": serializers.CharField(allow_blank=True),
            "message": serializers.CharField(allow_blank=True),
            "paused": serializers.BooleanField(),
            "conditions": serializers.ListField(child=serializers.DictField(child=serializers.JSONField())),
            "protocol": shape(
                "EndpointProtocol",
                {
                    "name": serializers.CharField(),
                    "httpUrl": serializers.CharField(allow_null=True),
                    "grpcAddress": serializers.CharField(allow_null=True),
                    "grpcService": serializers.CharField(allow_null=True),
                    "exampleRequest": serializers.CharField(allow_null=True),
                },
                allow_null=True,
            ),
        },
    ),
)
ENDPOINT_EVENTS_ANSWER = envelope_answer(
    "EndpointEventsAnswer",
    "OK",
    shape(
        "EndpointEvents",
        {
            "events": shape(
                "EndpointEvent",
                {
                    "time": serializers.CharField(allow_blank=True),
                    "type": serializers.CharField(allow_null=True),
                    "reason": serializers.CharField(allow_null=True),
                    "object": serializers.CharField(help_text="<kind>/<name>"),
                    "message": serializers.CharField(allow_null=True),
                    "count": serializers.IntegerField(min_value=1),
                },
                many=True,
            )
        },
    ),
)
ENDPOINT_LOGS_ANSWER = envelope_answer(
    "EndpointLogsAnswer",
    "OK",
    shape(
        "EndpointLogs",
        {
            "logs": shape(
                "EndpointContainerLog",
                {
                    "pod": serializers.CharField(),
                    "container": serializers.CharField(),
                    "lines": serializers.ListField(child=serializers.CharField(), allow_null=True),
                    "error": serializers.CharField(required=False, help_text="Why this container has no lines."),
                },
                many=True,
            )
        },
    ),
)


def _points() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True), min_length=2, max_length=2),
        help_text="[unix seconds, value or null] pairs, oldest first; empty when Prometheus has no series.",
    )


ENDPOINT_TRAFFIC_ANSWER = envelope_answer(
    "EndpointTrafficAnswer",
    "OK",
    shape(
        "EndpointTraffic",
        {
            "start": serializers.FloatField(),
            "end": serializers.FloatField(),
            "step": serializers.IntegerField(),
            "series": shape(
                "EndpointTrafficSeries",
                {
                    "requestRate": _points(),
                    "errorRate": _points(),
                    "latencyP50Ms": _points(),
                    "latencyP95Ms": _points(),
                },
            ),
        },
    ),
)
