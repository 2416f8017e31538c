"""The robot routes: ``/tenants/<tenant>/robots`` and a robot's ``tokens`` (README "Robots").

Views validate and answer; ``tenants.robots`` makes every Kubernetes call AS the caller, so RBAC
decides who may list, create, delete robots or ask for their tokens (members and admins; a robot
with the tenant's Role too; a ``deployer`` or ``reader`` robot cannot).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from inferencemgmt import paging
from inferencemgmt.api.openapi import PAGE_PARAMETERS, envelope_answer, page_envelope_answer, shape
from inferencemgmt.api.requests import validated
from inferencemgmt.api.responses import envelope
from inferencemgmt.api.schema import error_response
from inferencemgmt.api.validation import DNS_1123_LABEL, StrictInteger, StrictString, matches, required_messages
from inferencemgmt.api.views import TenantView
from tenants import manifests, robots

DESCRIPTION_MAX = 256


def _robot_name(name: str) -> str:
    """A path segment that cannot be a robot's name names no robot (and never reaches Kubernetes)."""
    if not matches(DNS_1123_LABEL, name) or len(name) > 63:
        raise robots.robot_not_found(name)
    return name


class RobotCreateSerializer(serializers.Serializer[dict[str, Any]]):
    name = StrictString(min_length=1, max_length=63, pattern=DNS_1123_LABEL, error_messages=required_messages("name"))
    description = StrictString(max_length=DESCRIPTION_MAX, error_messages=required_messages("description"))
    role = serializers.ChoiceField(
        choices=list(manifests.ROBOT_ROLES),
        default=manifests.ROBOT_ROLE_TENANT,
        help_text="tenant: the tenant's own Role (default); deployer: endpoints and model uploads; reader: reads only.",
    )

    def validate_description(self, value: str) -> str:
        if any(not character.isprintable() for character in value):
            raise serializers.ValidationError("must hold printable characters only (no control characters)")
        return value


class RobotTokenSerializer(serializers.Serializer[dict[str, Any]]):
    expiresIn = StrictInteger(  # noqa: N815 -- the documented JSON field name
        minimum=robots.TOKEN_MIN_SECONDS,
        required=False,
        help_text="Lifetime in seconds: 600 (Kubernetes' minimum) to IMM_ROBOT_TOKEN_MAX_SECONDS (default 86400).",
    )

    def validate_expiresIn(self, value: int) -> int:  # noqa: N802 -- DRF names it after the field
        maximum = settings.IMM_ROBOT_TOKEN_MAX_SECONDS
        if value > maximum:
            raise serializers.ValidationError(f"{value} is greater than the maximum of {maximum}")
        return value


def _robot_fields() -> dict[str, serializers.Field[Any, Any, Any, Any]]:
    """Fresh field instances per shape (a DRF field instance belongs to one serializer)."""
    return {
        "name": serializers.CharField(),
        "description": serializers.CharField(),
        "role": serializers.ChoiceField(choices=list(manifests.ROBOT_ROLES)),
        "username": serializers.CharField(help_text="Who the robot is to Kubernetes (and in the audit trail)."),
        "createdBy": serializers.CharField(allow_null=True),
        "createdAt": serializers.DateTimeField(allow_null=True),
    }


_ROBOT = shape("Robot", _robot_fields())
ROBOT_ANSWER = envelope_answer("RobotAnswer", "OK", _ROBOT)
ROBOT_CREATED_ANSWER = envelope_answer("RobotCreatedAnswer", "CREATED", shape("RobotCreated", _robot_fields()))
ROBOT_LIST_ANSWER = page_envelope_answer(
    "RobotListAnswer",
    shape("RobotList", {"robots": serializers.ListField(child=shape("RobotListed", _robot_fields()))}),
)
ROBOT_DELETED_ANSWER = envelope_answer(
    "RobotDeletedAnswer", "DELETED", shape("RobotDeleted", {"name": serializers.CharField()})
)
ROBOT_TOKEN_ANSWER = envelope_answer(
    "RobotTokenAnswer",
    "CREATED",
    shape(
        "RobotIssuedToken",
        {
            "name": serializers.CharField(),
            "token": serializers.CharField(help_text="Send as 'Authorization: Bearer <token>'; shown once."),
            "expiresAt": serializers.DateTimeField(allow_null=True),
            "audience": serializers.CharField(),
        },
    ),
)


class RobotCollectionView(TenantView):
    @extend_schema(
        operation_id="tenants_robots_list",
        parameters=PAGE_PARAMETERS,
        responses={200: ROBOT_LIST_ANSWER, 400: error_response(400)},
        summary="A tenant's robots, one page",
    )
    def get(self, request: Request) -> Response:
        page = paging.page_request(request.query_params, robots.robot_page_scope(self.identity, self.tenant))
        found, following = robots.robot_page(self.identity, self.tenant, page)
        return paging.page_answer("OK", {"robots": found}, following)

    @extend_schema(
        request=RobotCreateSerializer,
        responses={200: ROBOT_CREATED_ANSWER},
        summary="Create a robot (a ServiceAccount bound to the tenant's Role, or a narrower one)",
    )
    def post(self, request: Request) -> Response:
        data = validated(RobotCreateSerializer, request.data)
        return envelope("CREATED", robots.robot_create(self.identity, self.tenant, **data))


class RobotDetailView(TenantView):
    @extend_schema(responses=ROBOT_ANSWER, summary="One robot")
    def get(self, request: Request, name: str) -> Response:
        found = robots.robot_get(self.identity, self.tenant, _robot_name(name))
        return envelope("OK", found)

    @extend_schema(
        request=None,
        responses={200: ROBOT_DELETED_ANSWER},
        summary="Delete a robot (every token it was given stops working)",
    )
    def delete(self, request: Request, name: str) -> Response:
        gone = robots.robot_delete(self.identity, self.tenant, _robot_name(name))
        return envelope("DELETED", gone)


class RobotTokenView(TenantView):
    @extend_schema(
        request=RobotTokenSerializer,
        responses={200: ROBOT_TOKEN_ANSWER},
        summary="A bounded token for a robot (TokenRequest API; never stored)",
    )
    def post(self, request: Request, name: str) -> Response:
        name = _robot_name(name)
        data = validated(RobotTokenSerializer, request.data if request.data is not None else {})
        expires_in = data.get("expiresIn", settings.IMM_ROBOT_TOKEN_MAX_SECONDS)
        response = envelope("CREATED", robots.robot_token(self.identity, self.tenant, name, expires_in=expires_in))
        response["Cache-Control"] = "no-store"
        return response
