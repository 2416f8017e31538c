"""Compatibility login routes used by the original CLI (docs/compatibility.md).

The CLI is sent to the provider (``GET /authenticate``) and hands the code back
(``POST /authenticate/token``); the server adds the client secret, so the CLI never holds it.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from inferencemgmt.api.openapi import envelope_answer, shape
from inferencemgmt.api.responses import envelope
from inferencemgmt.api.schema import error_response
from inferencemgmt.auth.oidc import provider
from inferencemgmt.errors import ValidationFailed


def _redirect_uri(request: Request) -> str:
    # Falcon dropped blank query values, so only a non-empty ``offline`` counts (even "False").
    if request.query_params.get("offline"):
        return settings.IMM_CLI_OOB_REDIRECT_URI
    return settings.IMM_CLI_REDIRECT_URI


TOKEN_REQUEST = {
    "application/json": {
        "type": "object",
        "description": 'Exactly one of "code" (with "code_verifier" when the login used PKCE) or "refresh_token".',
        "properties": {
            "code": {"type": "string", "minLength": 1},
            "code_verifier": {"type": "string", "minLength": 43, "maxLength": 128},
            "refresh_token": {"type": "string", "minLength": 1},
        },
        "oneOf": [{"required": ["code"]}, {"required": ["refresh_token"]}],
    }
}
TOKEN_ANSWER = envelope_answer(
    "TokenAnswer",
    "OK",
    shape(
        "Token",
        {
            "token": serializers.DictField(
                child=serializers.JSONField(), help_text="The provider's token response, plus expires_at."
            )
        },
    ),
)


class AuthenticateView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("offline", str, description="Non-empty: the out-of-band (copy-paste) redirect.")],
        responses={
            308: OpenApiResponse(description="To the identity provider's login (`Location`)."),
            502: error_response(502),
            503: error_response(503),
        },
        description="Redirect (308) to the identity provider's login.",
    )
    def get(self, request: Request) -> HttpResponse:
        query = urlencode(
            {
                "client_id": settings.OIDC_API_CLIENT_ID,
                "redirect_uri": _redirect_uri(request),
                "response_type": "code",
                "scope": settings.OIDC_SCOPES,
            }
        )
        response = HttpResponse(status=308)
        response["Location"] = f"{provider().endpoint('authorization_endpoint')}?{query}"
        return response


class TokenView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=TOKEN_REQUEST,
        responses={
            200: TOKEN_ANSWER,
            400: error_response(400),
            502: error_response(502),
            503: error_response(503),
        },
        description='Exchange {"code": ..., "code_verifier"?: ...} or {"refresh_token": ...} for tokens.',
    )
    def post(self, request: Request) -> Response:
        body = request.data
        given = [key for key in ("code", "refresh_token") if isinstance(body, dict) and key in body]
        if len(given) != 1 or not isinstance(body[given[0]], str) or not body[given[0]]:
            raise ValidationFailed(
                description='The body must hold exactly one of "code" or "refresh_token" (a non-empty string).'
            )
        if given[0] == "code":
            form = {
                "grant_type": "authorization_code",
                "code": body["code"],
                "redirect_uri": _redirect_uri(request),
            }
            # PKCE (RFC 7636): a client that sent a challenge with the login proves it here; the
            # provider refuses the code without the verifier.
            verifier = body.get("code_verifier")
            if verifier is not None:
                if not isinstance(verifier, str) or not 43 <= len(verifier) <= 128:
                    raise ValidationFailed(
                        description='"code_verifier" must be a string of 43 to 128 characters (RFC 7636).'
                    )
                form["code_verifier"] = verifier
        else:
            form = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
        token = provider().token_request(form)
        expires_in = token.get("expires_in")
        if isinstance(expires_in, (int, float)) and "expires_at" not in token:
            token["expires_at"] = time.time() + expires_in  # requests_oauthlib added this; the CLI reads it
        return envelope("OK", {"token": token})
