"""Robot commands: a tenant's robot accounts and their tokens."""

from __future__ import annotations

import click

from imm_cli.app import State, list_all, operation, pass_state, positional, show, tenant_argument

robot_group = operation("robots", "robot", help="A tenant's robot accounts (for CI): list, create, delete, token.")


@robot_group.command(name="list")
@tenant_argument
@pass_state
def robots_list(state: State, tenant: str) -> None:
    """TENANT: the tenant's robots."""
    show(state, list_all(state, f"/tenants/{tenant}/robots"))


robot_group.add_alias("list", "ls")


@robot_group.command(name="create")
@positional("name", "robot name")
@tenant_argument
@click.option("--description", default="", help="What the robot is for (up to 256 characters).")
@click.option(
    "--role",
    type=click.Choice(["tenant", "deployer", "reader"]),
    default="tenant",
    show_default=True,
    help="tenant: the tenant's own rights; deployer: endpoints and model uploads; reader: reads only.",
)
@pass_state
def robots_create(state: State, name: str, tenant: str, description: str, role: str) -> None:
    """NAME TENANT: create a robot (a Kubernetes ServiceAccount of the tenant)."""
    body = {"name": name, "description": description, "role": role}
    show(state, state.api().send("POST", f"/tenants/{tenant}/robots", json_body=body).text)


@robot_group.command(name="delete")
@positional("name", "robot name")
@tenant_argument
@pass_state
def robots_delete(state: State, name: str, tenant: str) -> None:
    """NAME TENANT: delete a robot; every token it was given stops working."""
    show(state, state.api().send("DELETE", f"/tenants/{tenant}/robots/{name}").text)


robot_group.add_alias("delete", "rm", "remove")


@robot_group.command(name="token")
@positional("name", "robot name")
@tenant_argument
@click.option("--expires-in", type=click.IntRange(600), help="Lifetime in seconds (default: the server's maximum).")
@click.option("--raw", is_flag=True, help="Print only the token (for IMM_TOKEN or `imm login --token -`).")
@pass_state
def robots_token(state: State, name: str, tenant: str, expires_in: int | None, raw: bool) -> None:
    """NAME TENANT: a bounded token for the robot (it is a credential; shown once)."""
    body = {"expiresIn": expires_in} if expires_in else {}
    response = state.api().send("POST", f"/tenants/{tenant}/robots/{name}/tokens", json_body=body)
    if raw:
        click.echo(response.json()["data"]["token"])
        return
    show(state, response.text)
