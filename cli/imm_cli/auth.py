"""Logging in: the browser (authorization code + PKCE), copy-paste (out of band) and the password grant.

Browser and out-of-band logins go through the API's compatibility routes (docs/compatibility.md): ``GET
/authenticate`` names the provider's login page, the code comes back to a one-shot server on
127.0.0.1:5555 (or is pasted), and ``POST /authenticate/token`` swaps it for tokens. The server adds
the client secret, so the CLI never holds one. PKCE (RFC 7636) binds the code to this process: a code
caught by another program on the machine is useless without our verifier.

The password grant (for automation) cannot go through the API, which never sees passwords: it goes
to the provider's token endpoint, found by OIDC discovery, as the public CLI client. Such tokens are
refreshed at the provider too; browser tokens through the API. ``login`` in the config says which.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx

from imm_cli.http import USER_AGENT, Api, ApiError, CliError, ssl_context

DEFAULT_CLIENT_ID = "imm-cli"
PASSWORD_SCOPES = ("openid", "email", "groups", "profile", "offline_access")
#: Dex's way for a public client to get a token whose audience is the API's client (a trusted peer).
AUDIENCE_SCOPE = "audience:server:client_id:{}"
CALLBACK_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class LoginRedirect:
    """The provider's login URL as the API gave it, split into what the CLI needs."""

    endpoint: str
    params: dict[str, str]

    @property
    def redirect_uri(self) -> str:
        return self.params.get("redirect_uri", "")

    @property
    def client_id(self) -> str:
        return self.params.get("client_id", "")


def login_redirect(api: Api, *, offline: bool) -> LoginRedirect:
    """``GET /authenticate[?offline=True]``: the 308's Location, not followed."""
    response = api.send("GET", "/authenticate", params={"offline": "True"} if offline else None, authenticated=False)
    location = response.headers.get("Location")
    if response.status_code not in (301, 302, 303, 307, 308) or not location:
        raise CliError(f"GET /authenticate answered {response.status_code} without a redirect to the login page")
    parts = urlsplit(location)
    params = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return LoginRedirect(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), params)


def pkce_pair() -> tuple[str, str]:
    """A fresh (verifier, S256 challenge), RFC 7636 §4.1-4.2."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(redirect: LoginRedirect, *, state: str, challenge: str | None) -> str:
    """The API's login URL plus ``offline_access`` (for a refresh token), a state and the PKCE challenge."""
    params = dict(redirect.params)
    scopes = params.get("scope", "openid").split()
    if "offline_access" not in scopes:
        scopes.append("offline_access")
    params["scope"] = " ".join(scopes)
    params["state"] = state
    if challenge:
        params["code_challenge"] = challenge
        params["code_challenge_method"] = "S256"
    return f"{redirect.endpoint}?{urlencode(params)}"


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    result: dict[str, str]
    done: threading.Event

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/callback":
            self.send_error(404)
            return
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        self.server.result.update(query)  # type: ignore[attr-defined]
        ok = "code" in query
        body = (
            "<html><body><h3>Login complete. You can close this window and return to the terminal.</h3></body></html>"
            if ok
            else "<html><body><h3>Login failed; see the terminal.</h3></body></html>"
        ).encode()
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.done.set()  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the query holds the code: never print it


class CallbackServer:
    """The one-shot loopback server the provider redirects the browser to (RFC 8252 §7.3)."""

    def __init__(self, redirect_uri: str) -> None:
        parts = urlsplit(redirect_uri)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
            raise CliError(f"the API's redirect URI {redirect_uri!r} is not a loopback address; use --offline")
        port = parts.port or 80
        try:
            self.server = http.server.HTTPServer(("127.0.0.1", port), _CallbackHandler)
        except OSError as exc:
            raise CliError(f"cannot listen on 127.0.0.1:{port} for the login callback: {exc.strerror}") from None
        self.server.result = {}  # type: ignore[attr-defined]
        self.server.done = threading.Event()  # type: ignore[attr-defined]
        self.server.timeout = 0.5
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()

    def wait(self, state: str, timeout: float = CALLBACK_TIMEOUT_SECONDS) -> str:
        """The code of the callback; the state must be ours (else it is a forged or stale redirect)."""
        try:
            if not self.server.done.wait(timeout):  # type: ignore[attr-defined]
                raise CliError(f"no login callback within {int(timeout)} s")
            result: dict[str, str] = self.server.result  # type: ignore[attr-defined]
        finally:
            self.close()
        if "error" in result:
            raise ApiError(0, f"login refused: {result['error']}", result.get("error_description"))
        if result.get("state") != state:
            raise CliError("the login callback carried the wrong state; try again")
        return result["code"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def exchange_code(api: Api, code: str, *, verifier: str | None, offline: bool) -> dict[str, Any]:
    """``POST /authenticate/token`` with the code (and the PKCE verifier the server passes on)."""
    body: dict[str, str] = {"code": code}
    if verifier:
        body["code_verifier"] = verifier
    params = {"offline": "True"} if offline else None
    answer = api.json("POST", "/authenticate/token", json_body=body, params=params, authenticated=False)
    return _token_of(answer)


def _token_of(answer: Any) -> dict[str, Any]:
    token = answer.get("data", {}).get("token") if isinstance(answer, dict) else None
    if not isinstance(token, dict) or not token.get("id_token"):
        raise CliError("the API's token answer holds no id_token")
    return token


def browser_login(
    api: Api,
    *,
    offline: bool,
    pkce: bool,
    open_browser: Callable[[str], bool] | None,
    announce: Callable[[str], None],
    read_code: Callable[[], str],
    timeout: float = CALLBACK_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """The whole browser (or out-of-band) login; returns the provider's token answer."""
    redirect = login_redirect(api, offline=offline)
    verifier, challenge = pkce_pair() if pkce else (None, None)
    state = secrets.token_urlsafe(16)
    url = authorization_url(redirect, state=state, challenge=challenge)
    if offline:
        announce(f"Open this URL in a browser, log in, and paste the code shown:\n\n  {url}\n")
        code = read_code().strip()
        if not code:
            raise CliError("no code given")
    else:
        server = CallbackServer(redirect.redirect_uri)
        announce(f"Log in in your browser. If it does not open, visit:\n\n  {url}\n")
        if open_browser is not None:
            open_browser(url)
        code = server.wait(state, timeout)
    try:
        return exchange_code(api, code, verifier=verifier, offline=offline)
    except ApiError as exc:
        if verifier and "code_verifier" in str(exc):
            raise CliError(
                f"{exc}\nimm: this API does not pass the PKCE verifier on to the identity provider; "
                "log in again with --no-pkce (or upgrade the server)"
            ) from None
        raise


# --- the password grant, at the provider -----------------------------------------------------------


def discover(issuer: str, verify: bool | str) -> dict[str, Any]:
    """The provider's OIDC discovery document."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = httpx.get(url, verify=ssl_context(verify), timeout=15, headers={"User-Agent": USER_AGENT})
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach the identity provider at {issuer}: {exc}") from None
    if response.status_code != 200:
        raise CliError(f"{url} answered {response.status_code}")
    document: dict[str, Any] = response.json()
    return document


def issuer_candidates(authorization_endpoint: str) -> list[str]:
    """Issuers the authorization endpoint may belong to: its URL with the last path segments cut."""
    parts = urlsplit(authorization_endpoint)
    segments = [segment for segment in parts.path.split("/") if segment]
    candidates = []
    for keep in range(len(segments) - 1, -1, -1):
        path = "/" + "/".join(segments[:keep]) if keep else ""
        candidates.append(urlunsplit((parts.scheme, parts.netloc, path, "", "")))
    return candidates


def find_issuer(redirect: LoginRedirect, verify: bool | str) -> dict[str, Any]:
    """The discovery document of the provider the API sends its users to.

    The API names the provider's authorization endpoint; the issuer is the prefix of it whose
    discovery document names that same endpoint, so a guess is always confirmed by the provider.
    """
    for candidate in issuer_candidates(redirect.endpoint):
        try:
            document = discover(candidate, verify)
        except (CliError, ValueError):
            continue
        if document.get("authorization_endpoint") == redirect.endpoint:
            return document
    raise CliError(
        f"cannot find the identity provider of {redirect.endpoint} by discovery; give --issuer (or IMM_OIDC_ISSUER)"
    )


def password_grant(
    token_endpoint: str,
    *,
    client_id: str,
    username: str,
    password: str,
    scopes: list[str],
    verify: bool | str,
) -> dict[str, Any]:
    """RFC 6749 §4.3 as a public client; a refused login raises ``ApiError`` with the provider's reason."""
    form = {
        "grant_type": "password",
        "username": username,
        "password": password,
        "client_id": client_id,
        "scope": " ".join(scopes),
    }
    return _token_request(token_endpoint, form, verify)


def _token_request(token_endpoint: str, form: Mapping[str, str], verify: bool | str) -> dict[str, Any]:
    try:
        response = httpx.post(
            token_endpoint,
            data=dict(form),
            verify=ssl_context(verify),
            timeout=30,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
        )
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach the identity provider at {token_endpoint}: {exc}") from None
    if response.status_code != 200:
        raise ApiError.from_response(response)
    token: dict[str, Any] = response.json()
    if not token.get("id_token"):
        raise CliError("the identity provider's answer holds no id_token")
    if isinstance(token.get("expires_in"), (int, float)) and "expires_at" not in token:
        token["expires_at"] = time.time() + token["expires_in"]
    return token


def refresh(api: Api) -> bool:
    """Swap the stored refresh token for new tokens and save them. False when the provider refuses."""
    data = api.store.data
    try:
        if data.get("login") == "password" and data.get("token_endpoint"):
            verify = data.get("oidc_ca_cert_path") or api.connection.verify
            token = _token_request(
                str(data["token_endpoint"]),
                {
                    "grant_type": "refresh_token",
                    "refresh_token": str(data["refresh_token"]),
                    "client_id": str(data.get("oidc_client_id") or DEFAULT_CLIENT_ID),
                },
                verify,
            )
        else:
            answer = api.json(
                "POST",
                "/authenticate/token",
                params={"offline": "True"},
                json_body={"refresh_token": data["refresh_token"]},
                authenticated=False,
            )
            token = _token_of(answer)
    except (ApiError, CliError):
        return False
    token.setdefault("refresh_token", data["refresh_token"])  # providers that do not rotate it
    api.store.update(token)
    return True
