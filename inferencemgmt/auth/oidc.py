"""The identity provider, seen through OIDC discovery: keys, endpoints and the token endpoint.

Tokens are verified locally against the provider's JWKS: no call per request. The key set is cached
and refreshed when a token names a key we do not know (the provider rotated its keys), but at most
once every ``OIDC_JWKS_MIN_REFRESH_SECONDS``, so a flood of forged ``kid`` values cannot turn us into
a load generator against the provider.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from inferencemgmt.errors import (
    IDENTITY_PROVIDER,
    BadRequest,
    NotAuthenticated,
    UpstreamError,
    UpstreamUnavailable,
)
from inferencemgmt.metrics import upstream_call

#: Asymmetric algorithms only: never ``none``, never HMAC (whose "secret" would be our public key).
ALLOWED_ALGORITHMS = ("RS256", "ES256")


def _invalid(code: str = "auth_token_invalid") -> NotAuthenticated:
    return NotAuthenticated("Authentication required", "Token not valid.", code=code)


@dataclass(frozen=True)
class ProviderConfig:
    issuer: str
    audiences: tuple[str, ...]
    ca_file: str
    timeout: float
    leeway: int
    min_refresh: float
    discovery_ttl: float
    client_id: str
    client_secret: str

    @classmethod
    def from_settings(cls) -> ProviderConfig:
        return cls(
            issuer=settings.OIDC_ISSUER,
            audiences=tuple(settings.OIDC_AUDIENCES),
            ca_file=settings.OIDC_CA_FILE,
            timeout=settings.OIDC_HTTP_TIMEOUT_SECONDS,
            leeway=settings.OIDC_LEEWAY_SECONDS,
            min_refresh=settings.OIDC_JWKS_MIN_REFRESH_SECONDS,
            discovery_ttl=settings.OIDC_DISCOVERY_TTL_SECONDS,
            client_id=settings.OIDC_API_CLIENT_ID,
            client_secret=settings.OIDC_API_CLIENT_SECRET,
        )


class OIDCProvider:
    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: dict[str, jwt.PyJWK] = {}
        self._keys_at: float | None = None

    # --- HTTP -------------------------------------------------------------------------------------
    @property
    def _verify(self) -> bool | str:
        return self.config.ca_file or True

    @upstream_call(IDENTITY_PROVIDER)
    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = requests.get(url, timeout=self.config.timeout, verify=self._verify)
        except requests.RequestException as exc:
            raise UpstreamUnavailable(IDENTITY_PROVIDER, f"{type(exc).__name__} while fetching {url}") from None
        if response.status_code >= 500:
            raise UpstreamUnavailable(IDENTITY_PROVIDER, f"HTTP {response.status_code} from {url}")
        if response.status_code != 200:
            raise UpstreamError(IDENTITY_PROVIDER, f"HTTP {response.status_code} from {url}")
        try:
            data = response.json()
        except ValueError:
            raise UpstreamError(IDENTITY_PROVIDER, f"{url} did not return JSON") from None
        if not isinstance(data, dict):
            raise UpstreamError(IDENTITY_PROVIDER, f"{url} did not return a JSON object")
        return data

    # --- discovery --------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        if not self.config.issuer:
            raise UpstreamUnavailable(
                IDENTITY_PROVIDER, "OIDC_ISSUER is not configured", code="identity_provider_not_configured"
            )
        now = time.monotonic()
        if self._metadata is None or now - self._metadata_at > self.config.discovery_ttl:
            data = self._get_json(f"{self.config.issuer}/.well-known/openid-configuration")
            if data.get("issuer", "").rstrip("/") != self.config.issuer:
                raise UpstreamError(IDENTITY_PROVIDER, "discovery document names another issuer")
            for required in ("jwks_uri", "authorization_endpoint", "token_endpoint"):
                if not isinstance(data.get(required), str):
                    raise UpstreamError(IDENTITY_PROVIDER, f"discovery document lacks {required}")
            self._metadata, self._metadata_at = data, now
        return self._metadata

    def endpoint(self, name: str) -> str:
        return str(self.metadata()[name])

    # --- keys -------------------------------------------------------------------------------------
    def _refresh_keys(self) -> None:
        data = self._get_json(self.endpoint("jwks_uri"))
        keys: dict[str, jwt.PyJWK] = {}
        for entry in data.get("keys", []):
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or "kid" not in entry:
                continue
            try:
                keys[str(entry["kid"])] = jwt.PyJWK(entry)
            except (jwt.PyJWKError, jwt.InvalidKeyError):
                continue  # a key type we cannot use (e.g. an encryption key) is not an outage
        self._keys, self._keys_at = keys, time.monotonic()

    def signing_key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            if self._keys_at is None:
                self._refresh_keys()
            key = self._keys.get(kid)
            # An unknown kid: the provider may have rotated its keys. Refresh, but rate-limited.
            if key is None and time.monotonic() - (self._keys_at or 0.0) >= self.config.min_refresh:
                self._refresh_keys()
                key = self._keys.get(kid)
        if key is None:
            raise _invalid("auth_token_unknown_key")
        return key

    # --- verification -----------------------------------------------------------------------------
    def verify(self, token: str) -> dict[str, Any]:
        """Return the verified claims, or raise NotAuthenticated (401) / an upstream error (503)."""
        if not self.config.audiences:
            raise UpstreamUnavailable(
                IDENTITY_PROVIDER,
                "no accepted client ids (OIDC_API_CLIENT_ID / OIDC_CLI_CLIENT_ID) are configured",
                code="identity_provider_not_configured",
            )
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _invalid() from None
        algorithm = header.get("alg")
        kid = header.get("kid")
        if algorithm not in ALLOWED_ALGORITHMS or not isinstance(kid, str):
            raise _invalid()
        key = self.signing_key(kid)
        if key.algorithm_name != algorithm:
            raise _invalid()
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[algorithm],
                audience=list(self.config.audiences),
                issuer=self.config.issuer,
                leeway=self.config.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("Authentication required", "Token expired", code="auth_token_expired") from None
        except jwt.InvalidTokenError:
            raise _invalid() from None
        return dict(claims)

    # --- token endpoint (the compatibility login routes) -------------------------------------------
    @upstream_call(IDENTITY_PROVIDER)
    def token_request(self, form: dict[str, str]) -> dict[str, Any]:
        """Exchange a code or refresh token with the client secret, which never leaves the server."""
        url = self.endpoint("token_endpoint")
        try:
            response = requests.post(
                url,
                data=form,
                auth=(self.config.client_id, self.config.client_secret),
                timeout=self.config.timeout,
                verify=self._verify,
            )
        except requests.RequestException as exc:
            raise UpstreamUnavailable(IDENTITY_PROVIDER, f"{type(exc).__name__} at the token endpoint") from None
        if response.status_code >= 500:
            raise UpstreamUnavailable(IDENTITY_PROVIDER, f"HTTP {response.status_code} at the token endpoint")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise UpstreamError(IDENTITY_PROVIDER, "the token endpoint did not return a JSON object")
        if response.status_code != 200:
            reason = str(body.get("error", "error"))
            detail = body.get("error_description")
            title = f"Token error: {reason}" + (f" ({detail})" if detail else "")
            raise BadRequest(title, code="token_exchange_failed")
        return body

    def check(self) -> None:
        """Readiness: the provider answers discovery and serves keys right now."""
        if not self.config.issuer:
            self.metadata()  # raises "not configured"
        data = self._get_json(f"{self.config.issuer}/.well-known/openid-configuration")
        self._get_json(str(data.get("jwks_uri", "")))


_provider: OIDCProvider | None = None
_provider_lock = threading.Lock()


def provider() -> OIDCProvider:
    """The process-wide provider (its key cache is the point of having one)."""
    global _provider
    with _provider_lock:
        if _provider is None:
            _provider = OIDCProvider(ProviderConfig.from_settings())
        return _provider


@receiver(setting_changed)
def _forget_provider(**kwargs: Any) -> None:
    """Tests change OIDC settings with override_settings; rebuild from the new values."""
    global _provider
    if str(kwargs.get("setting", "")).startswith(("OIDC_", "IMM_ADMIN_GROUP")):
        with _provider_lock:
            _provider = None
