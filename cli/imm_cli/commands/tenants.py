"""Tenant commands: create, remove, list, view, update (platform admins; view for members)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import click

from imm_cli import certs
from imm_cli.app import (
    TENANT_ALIASES,
    WAIT,
    State,
    create,
    env_json,
    interactive,
    json_option,
    list_all,
    listing,
    pass_state,
    positional,
    remove,
    resource,
    show,
    submit,
    update,
    view,
)

DEFAULT_TENANT_RESOURCES = {"requests.cpu": "2", "requests.memory": "2Gi", "maxEndpoints": 15}


def tenant_cert(name: str, cert_file: str | None, generate: bool | None, certs_dir: str | None) -> str:
    """The tenant's ``cert``: ``CERT`` (base64 PEM) as the original, a PEM file, or a fresh CA."""
    if cert_file:
        return base64.b64encode(Path(cert_file).read_bytes()).decode("ascii")
    if os.environ.get("CERT") and generate is not True:
        return os.environ["CERT"]
    if generate is None:
        generate = (
            click.confirm("Generate a client CA and certificate for this tenant?", default=True)
            if (interactive())
            else True
        )
    if not generate:
        raise click.UsageError("give the tenant's CA: CERT (base64 PEM), --cert-file, or --generate-certs")
    made = certs.generate(name, Path(certs_dir or f"{name}-certs"))
    click.echo(
        f"imm: tenant CA {made.ca_cert}, client certificate {made.client_cert} and key {made.client_key} written",
        err=True,
    )
    return made.ca_base64()


@resource(create, "tenant", TENANT_ALIASES)
@positional("name", "tenant name")
@positional("scope", "scope (identity-provider group)")
@click.option("--cert-file", type=click.Path(exists=True, dir_okay=False), help="The tenant CA as a PEM file.")
@click.option("--generate-certs/--no-generate-certs", default=None, help="Make a tenant CA and client certificate.")
@click.option("--certs-dir", help="Where --generate-certs writes (default ./<name>-certs).")
@click.option("--quota", help='JSON, e.g. {"requests.cpu": "2", "maxEndpoints": 5} (env TENANT_RESOURCES).')
@WAIT
@pass_state
def create_tenant(
    state: State,
    name: str,
    scope: str,
    cert_file: str | None,
    generate_certs: bool | None,
    certs_dir: str | None,
    quota: str | None,
    wait: bool,
) -> None:
    """NAME SCOPE: create a tenant whose users are the group SCOPE (several: comma-separated)."""
    groups = [group.strip() for group in scope.split(",") if group.strip()]
    quota_value = json_option(quota, "--quota") if quota else env_json("TENANT_RESOURCES", DEFAULT_TENANT_RESOURCES)
    body = {
        "name": name,
        "cert": tenant_cert(name, cert_file, generate_certs, certs_dir),
        "scope": groups[0] if len(groups) == 1 else groups,
        "quota": quota_value,
    }
    submit(state, "POST", "/tenants", body=body, wait=wait)


@resource(remove, "tenant", TENANT_ALIASES)
@positional("name", "tenant name")
@WAIT
@pass_state
def remove_tenant(state: State, name: str, wait: bool) -> None:
    """NAME: delete a tenant with its endpoints and models."""
    submit(state, "DELETE", "/tenants", body={"name": name}, wait=wait)


@resource(listing, "tenants", ("t", "tenant"))
@pass_state
def list_tenants(state: State) -> None:
    """The tenants you may see (admins: all)."""
    show(state, list_all(state, "/tenants"))


@resource(view, "tenant", TENANT_ALIASES)
@positional("name", "tenant name")
@pass_state
def view_tenant(state: State, name: str) -> None:
    """NAME: scope, quota usage, endpoints and bucket size of a tenant."""
    show(state, state.api().send("GET", f"/tenants/{name}").text)


@resource(update, "tenant", TENANT_ALIASES)
@positional("name", "tenant name")
@click.option("--quota", help="JSON; replaces the quota.")
@click.option("--scope", "scopes", multiple=True, help="A group (repeat for several); replaces the scope.")
@pass_state
def update_tenant(state: State, name: str, quota: str | None, scopes: tuple[str, ...]) -> None:
    """NAME: replace a tenant's quota and/or scope."""
    body: dict[str, Any] = {}
    if quota is not None:
        body["quota"] = json_option(quota, "--quota")
    if scopes:
        body["scope"] = scopes[0] if len(scopes) == 1 else list(scopes)
    if not body:
        raise click.UsageError("give --quota, --scope or both")
    show(state, state.api().send("PATCH", f"/tenants/{name}", json_body=body).text)
