"""Talking to the management API: one ``httpx.Client`` per command, errors as ``ApiError``.

Every request carries ``Authorization: Bearer <id_token>`` (the server accepts it and the bare form
the original sent). A token close to expiry is refreshed first, and a 401 is retried once after a
refresh, so a long ``--wait`` or upload never dies of an expired token when a refresh token exists.
"""

from __future__ import annotations

import base64
import binascii
import json
import ssl
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from imm_cli import config as cfg

#: Refresh this long before ``exp``, so a token never expires in the middle of a request.
REFRESH_MARGIN_SECONDS = 60
USER_AGENT = "imm-cli/0.1"


class ApiError(Exception):
    """An error answer of the API (or of the identity provider), in the API's error shape."""

    def __init__(self, status: int, title: str, description: str | None = None, code: str | None = None) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.description = description
        self.code = code

    def __str__(self) -> str:
        text = f"{self.status} {self.title}" if self.status else self.title
        if self.description:
            text += f": {self.description}"
        if self.code:
            text += f" [{self.code}]"
        return text

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "title" in body:
            return cls(response.status_code, str(body["title"]), body.get("description"), body.get("code"))
        if isinstance(body, dict) and "error" in body:  # OAuth2 error shape (RFC 6749 §5.2)
            return cls(response.status_code, str(body["error"]), body.get("error_description"))
        text = response.text.strip()[:300] or response.reason_phrase
        return cls(response.status_code, text)


class CliError(Exception):
    """A failure that is not an API answer (cannot connect, bad local file, ...): exit code 1."""


def ssl_context(verify: bool | str) -> ssl.SSLContext | bool:
    """httpx 0.28 deprecates a CA path as ``verify``; build the context ourselves."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


def token_expiry(token: str) -> float | None:
    """The ``exp`` of a JWT, read without verifying it (the server verifies; we only plan a refresh)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, (int, float)) else None


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified: for telling the user who they are logged in as."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


class ConfigStore:
    """The loaded config file and where it lives; ``update`` merges and writes it (0600)."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    def update(self, values: Mapping[str, Any]) -> None:
        self.data.update(values)
        cfg.save(self.path, self.data)

    def replace(self, values: Mapping[str, Any]) -> None:
        self.data = dict(values)
        cfg.save(self.path, self.data)


class Api:
    """The management API as one command sees it."""

    def __init__(
        self,
        connection: cfg.Connection,
        store: ConfigStore,
        *,
        verbose: int = 0,
        timeout: float = 300.0,
        refresher: Callable[[Api], bool] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.connection = connection
        self.store = store
        self.verbose = verbose
        self.token = connection.token
        self._refresher = refresher
        self.client = httpx.Client(
            base_url=connection.base_url,
            verify=ssl_context(connection.verify),
            proxy=connection.proxy,
            timeout=httpx.Timeout(timeout, connect=10.0),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- tokens ----------------------------------------------------------------------------------
    def can_refresh(self) -> bool:
        return (
            self._refresher is not None
            and not self.connection.token_from_env
            and bool(self.store.data.get("refresh_token"))
        )

    def refresh(self) -> bool:
        """Swap the refresh token for a new id_token (saved to the config); False if impossible."""
        if not self.can_refresh() or self._refresher is None:
            return False
        if self._refresher(self):
            self.token = self.store.data.get("id_token")
            return True
        return False

    def _fresh_token(self) -> str | None:
        if self.token and self.can_refresh():
            exp = token_expiry(self.token) or _number(self.store.data.get("expires_at"))
            if exp is not None and exp - time.time() < REFRESH_MARGIN_SECONDS:
                self.refresh()
        return self.token

    # --- requests --------------------------------------------------------------------------------
    def _log(self, request: httpx.Request) -> None:
        if self.verbose:
            print(f"> {request.method} {request.url}", file=sys.stderr)
        if self.verbose > 1:
            for key, value in request.headers.items():
                shown = "<redacted>" if key.lower() == "authorization" else value
                print(f"> {key}: {shown}", file=sys.stderr)

    def send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        authenticated: bool = True,
        check: bool = True,
    ) -> httpx.Response:
        """One request; a 401 is retried once after a token refresh. Errors raise ``ApiError``."""
        for attempt in (1, 2):
            all_headers = dict(headers or {})
            if authenticated:
                token = self._fresh_token()
                if not token:
                    raise CliError("Please login first (`imm login`), or set IMM_TOKEN")
                all_headers["Authorization"] = f"Bearer {token}"
            if json_body is not None:
                content = json.dumps(json_body).encode()
                all_headers["Content-Type"] = "application/json"
            request = self.client.build_request(method, path, params=params, headers=all_headers, content=content)
            self._log(request)
            try:
                response = self.client.send(request)
            except httpx.HTTPError as exc:
                raise CliError(f"cannot reach the API at {self.connection.base_url}: {exc}") from None
            if self.verbose:
                print(f"< {response.status_code} {response.reason_phrase}", file=sys.stderr)
            if response.status_code == 401 and authenticated and attempt == 1 and self.refresh():
                continue
            if check and response.status_code >= 400:
                raise ApiError.from_response(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The parsed body of a successful request."""
        response = self.send(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise CliError(f"{method} {path}: the API answered {response.status_code} with no JSON") from None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None
