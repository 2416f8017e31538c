"""login and logout: browser, out-of-band, password grant and robot tokens."""

from __future__ import annotations

import sys
import webbrowser
from pathlib import Path
from typing import Any

import click

from imm_cli import auth
from imm_cli import config as cfg
from imm_cli.app import State, cli, interactive, pass_state
from imm_cli.http import Api, ConfigStore, token_claims

READ_STDIN = "-"


@cli.command()
@click.option("--username", "-u", help="Password grant at the identity provider (automation).")
@click.option("--password", envvar="IMM_PASSWORD", help="With --username (env IMM_PASSWORD; asked if missing).")
@click.option("--offline", "offline_flag", is_flag=True, help="Copy-paste the code (same as imm -o login).")
@click.option("--no-browser", is_flag=True, help="Print the login URL; do not open a browser.")
@click.option("--no-pkce", is_flag=True, help="Skip PKCE (for servers that do not pass code_verifier on).")
@click.option("--issuer", envvar="IMM_OIDC_ISSUER", help="The identity provider (default: found from the API).")
@click.option("--client-id", envvar="IMM_OIDC_CLIENT_ID", help="Public client for --username (default imm-cli).")
@click.option("--idp-ca-cert", envvar="IMM_OIDC_CA_FILE", help="CA file for the identity provider's TLS.")
@click.option("--scope", "scopes", multiple=True, help="Scopes for --username (default: openid email groups ...).")
@click.option("--print-token", is_flag=True, help="Print the id_token on stdout (it is a credential).")
@click.option(
    "--token",
    "given_token",
    help="Save this bearer token instead of logging in (a robot token; '-' reads it from stdin). Never refreshed.",
)
@click.option("--proxy_host", "--proxy-host", "proxy_host", help="HTTP proxy host, saved in the config.")
@click.option("--proxy_port", "--proxy-port", "proxy_port", help="HTTP proxy port.")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Wait this long for the browser.")
@pass_state
def login(
    state: State,
    username: str | None,
    password: str | None,
    offline_flag: bool,
    no_browser: bool,
    no_pkce: bool,
    issuer: str | None,
    client_id: str | None,
    idp_ca_cert: str | None,
    scopes: tuple[str, ...],
    print_token: bool,
    proxy_host: str | None,
    proxy_port: str | None,
    timeout: float,
    given_token: str | None,
) -> None:
    """Log in (browser by default; --offline; --username/--password; --token) and save the tokens (mode 0600)."""
    store = state.store()
    if proxy_host:
        store.data["proxy_host"], store.data["proxy_port"] = proxy_host, proxy_port
    if given_token is not None:
        if username:
            raise click.UsageError("give --token or --username, not both")
        _token_login(state, store, sys.stdin.read().strip() if given_token == READ_STDIN else given_token.strip())
        return
    connection = state.connection()
    saved: dict[str, Any] = cfg.split_base_url(connection.base_url)
    if isinstance(connection.verify, str):
        saved["ca_cert_path"] = connection.verify
    api = Api(connection, store, verbose=state.verbose)
    try:
        if username:
            if password is None:
                password = click.prompt("Password", hide_input=True)
            token = _password_login(
                api, store, username, password or "", issuer, client_id, idp_ca_cert, list(scopes), saved
            )
        else:
            token = auth.browser_login(
                api,
                offline=state.offline or offline_flag,
                pkce=not no_pkce,
                open_browser=None if no_browser else webbrowser.open,
                announce=lambda text: click.echo(text, err=True),
                read_code=lambda: str(click.prompt("Code")),
                timeout=timeout,
            )
            saved.update({"login": "browser", "token_endpoint": None, "oidc_client_id": None})
    finally:
        api.close()
    for stale in ("access_token", "refresh_token", "expires_at", "expires_in", "scope"):
        store.data.pop(stale, None)
    store.update({**saved, **token})
    claims = token_claims(str(token["id_token"]))
    who = claims.get("email") or claims.get("sub") or "?"
    groups = ", ".join(claims.get("groups") or []) or "none"
    click.echo(f"Logged in as {who} (groups: {groups}); config saved to {store.path}", err=True)
    if print_token:
        click.echo(token["id_token"])


def _token_login(state: State, store: ConfigStore, token: str) -> None:
    """Save a bearer token as it is (a robot token from `imm robots token`): nothing to refresh it with."""
    if not token or any(character.isspace() for character in token):
        raise click.UsageError("--token: give one bearer token (no spaces)")
    connection = state.connection()
    saved: dict[str, Any] = cfg.split_base_url(connection.base_url)
    if isinstance(connection.verify, str):
        saved["ca_cert_path"] = connection.verify
    for stale in ("access_token", "refresh_token", "expires_at", "expires_in", "scope", "token_endpoint"):
        store.data.pop(stale, None)
    store.update({**saved, "id_token": token, "login": "token"})
    claims = token_claims(token)
    who = claims.get("email") or claims.get("sub") or "?"
    click.echo(f"Token saved for {who}; config saved to {store.path}", err=True)


def _password_login(
    api: Api,
    store: ConfigStore,
    username: str,
    password: str,
    issuer: str | None,
    client_id: str | None,
    idp_ca_cert: str | None,
    scopes: list[str],
    saved: dict[str, Any],
) -> dict[str, Any]:
    verify: bool | str = idp_ca_cert or store.data.get("oidc_ca_cert_path") or api.connection.verify
    issuer = issuer or store.data.get("oidc_issuer")
    redirect = None
    if issuer:
        document = auth.discover(issuer, verify)
    else:
        redirect = auth.login_redirect(api, offline=True)
        document = auth.find_issuer(redirect, verify)
    client = client_id or store.data.get("oidc_client_id") or auth.DEFAULT_CLIENT_ID
    if not scopes:
        scopes = list(auth.PASSWORD_SCOPES)
        api_client = redirect.client_id if redirect else store.data.get("oidc_api_client_id")
        if api_client and api_client != client:
            scopes.append(auth.AUDIENCE_SCOPE.format(api_client))
            saved["oidc_api_client_id"] = api_client
    token = auth.password_grant(
        str(document["token_endpoint"]),
        client_id=client,
        username=username,
        password=password,
        scopes=scopes,
        verify=verify,
    )
    saved.update(
        {
            "login": "password",
            "token_endpoint": document["token_endpoint"],
            "oidc_client_id": client,
            "oidc_issuer": document.get("issuer", issuer),
        }
    )
    if idp_ca_cert:
        saved["oidc_ca_cert_path"] = str(Path(idp_ca_cert).expanduser().resolve())
    return token


@cli.command()
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def logout(state: State, yes: bool) -> None:
    """Forget the tokens (the API address and CA stay in the config)."""
    if not yes and interactive() and not click.confirm("Sign out?", default=True):
        return
    store = state.store()
    store.replace(cfg.without_tokens(store.data))
    click.echo("Signed out")
