"""A test-only OIDC issuer with its own RSA key, served through ``responses`` (HTTP stubbing).

Only the identity provider's two documents are stubbed (discovery and JWKS); the verification code
under test is the real one, fetching them over ``requests``.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client
from django.test.client import FakePayload
from rest_framework.test import APIClient

ISSUER = "https://issuer.test/dex"
# What the original clients put on the wire (docs/compatibility.md): http.client's
# own headers first, then the token helper's; and `requests` with `data=json.dumps(...)`, which sends
# no Content-Type at all. Content-Length is added per request.
ORIGINAL_TOKEN_HELPER_HEADERS = {
    "Host": "testserver",
    "Accept-Encoding": "identity",
    "Content-type": "application/json",
    "Accept": "text/plain",
}
REQUESTS_DEFAULT_HEADERS = {"Host": "testserver", **requests.utils.default_headers()}
# The bash CLI's curl (`imm`): accept JSON and a JSON Content-Type on every call (the bare token is
# added per call).
ORIGINAL_CLI_CURL_HEADERS = {
    "Host": "testserver",
    "User-Agent": "curl/7.58.0",
    "accept": "application/json",
    "Content-Type": "application/json",
}
API_CLIENT = "imm-api"
CLI_CLIENT = "imm-cli"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class TestIssuer:
    __test__ = False  # not a test class

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex
        self.published: list[dict[str, Any]] = [self.jwk(self.key, self.kid)]
        self.jwks_fetches = 0

    @staticmethod
    def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
        numbers = key.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": _b64(numbers.n), "e": _b64(numbers.e)}

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "CiQwOGE4Njg0Yi1kYjg4LTRiNzMtOTBhOS0zY2QxNjYxZjU0NjYSBWxvY2Fs",
            "aud": CLI_CLIENT,
            "exp": now + 600,
            "iat": now,
            "email": "alice@example.com",
            "groups": ["team-a"],
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def mint(self, key: Any = None, kid: str | None = None, algorithm: str = "RS256", **overrides: Any) -> str:
        return jwt.encode(
            self.claims(**overrides),
            key if key is not None else self.key,
            algorithm=algorithm,
            headers={"kid": kid or self.kid},
        )

    def serve(self, mock: responses.RequestsMock) -> None:
        mock.get(
            f"{ISSUER}/.well-known/openid-configuration",
            json={
                "issuer": ISSUER,
                "authorization_endpoint": f"{ISSUER}/auth",
                "token_endpoint": f"{ISSUER}/token",
                "jwks_uri": f"{ISSUER}/keys",
            },
        )

        def keys(request: Any) -> tuple[int, dict[str, str], str]:
            self.jwks_fetches += 1
            return 200, {"Content-Type": "application/json"}, json.dumps({"keys": self.published})

        mock.add_callback(responses.GET, f"{ISSUER}/keys", callback=keys)


@pytest.fixture
def issuer(settings: Any) -> Iterator[TestIssuer]:
    settings.OIDC_ISSUER = ISSUER
    settings.OIDC_API_CLIENT_ID = API_CLIENT
    settings.OIDC_API_CLIENT_SECRET = "api-secret"
    settings.OIDC_CLI_CLIENT_ID = CLI_CLIENT
    settings.OIDC_AUDIENCES = [API_CLIENT, CLI_CLIENT]
    settings.OIDC_JWKS_MIN_REFRESH_SECONDS = 5.0
    test_issuer = TestIssuer()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        test_issuer.serve(mock)
        yield test_issuer


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def on_the_wire(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Any:
    """Send exactly ``headers`` (and a Content-Length for a body), nothing else, through the whole stack.

    The test clients always set a Content-Type for a body; the original clients sometimes send none,
    and that absence is what the compatibility tests are about.
    """
    route, _, query = path.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": route,
        "QUERY_STRING": query,
        "wsgi.input": FakePayload(body),
    }
    sent = {**headers, "Content-Length": str(len(body))} if body else dict(headers)
    for name, value in sent.items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    return Client().request(**environ)
