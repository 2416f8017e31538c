"""`python -m devstack.token USER`: print a fresh id_token of a devstack user as the last line.

The token comes from the devstack's Dex by the OAuth2 password grant (through the LDAP
connector), with TLS verified against the devstack CA. A demo user's password is
"<user>-password" unless --password is given. By default the token is requested by the
confidential `imm-api` client, so its audience is `imm-api`: what the management API and
kube-apiserver accept. `--client imm-cli` asks as the public CLI client instead, adding the
audience scope for imm-api (aud then holds both clients).

    TOKEN=$(.venv/bin/python -m devstack.token alice | tail -n1)
    curl -H "Authorization: Bearer $TOKEN" ...
"""

from __future__ import annotations

import argparse
import base64
import json
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from devstack import idp


class TokenError(RuntimeError):
    """The provider refused the request or could not be reached."""


def request_tokens(
    user: str,
    password: str | None = None,
    *,
    client: str = idp.API_CLIENT_ID,
    scopes: tuple[str, ...] = idp.SCOPES,
) -> dict[str, Any]:
    """The token response (id_token, access_token, refresh_token, ...) of a password grant."""
    scope = list(scopes)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    form = {"grant_type": "password", "username": user, "password": password or idp.demo_password(user)}
    if client == idp.API_CLIENT_ID:
        basic = f"{client}:{idp.secrets_file()['api_client_secret']}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(basic).decode()
    else:
        form["client_id"] = client
        scope.append(idp.API_AUDIENCE_SCOPE)
    form["scope"] = " ".join(scope)
    request = urllib.request.Request(
        f"{idp.ISSUER}/token", data=urllib.parse.urlencode(form).encode(), headers=headers, method="POST"
    )
    context = ssl.create_default_context(cafile=str(idp.ca_file()))
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            body: dict[str, Any] = json.load(response)
            return body
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        try:
            parsed = json.loads(detail)
            detail = f"{parsed.get('error')}: {parsed.get('error_description', '')}".strip()
        except ValueError:
            pass
        raise TokenError(f"{idp.ISSUER} refused the password grant for {user!r} (HTTP {exc.code}): {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise TokenError(
            f"cannot reach the devstack's identity provider at {idp.ISSUER} ({exc}); is it running? `make devstack`"
        ) from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.token", description=__doc__.split("\n\n")[0])
    parser.add_argument("user", help=f"a directory user, e.g. one of {', '.join(idp.DEMO_USERS)}")
    parser.add_argument("--password", help="the user's password (default: '<user>-password')")
    parser.add_argument("--client", choices=[idp.API_CLIENT_ID, idp.CLI_CLIENT_ID], default=idp.API_CLIENT_ID)
    args = parser.parse_args(argv)
    try:
        tokens = request_tokens(args.user, args.password, client=args.client)
    except TokenError as exc:
        print(f"[devstack.token] {exc}", file=sys.stderr)
        return 1
    print(tokens["id_token"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
