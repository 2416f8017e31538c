"""Endpoint commands: create, remove, list, view, update, scale, pause, resume, events, logs."""

from __future__ import annotations

import json
from typing import Any

import click

from imm_cli.app import (
    ENDPOINT_ALIASES,
    TIMEOUT,
    WAIT,
    AliasGroup,
    State,
    create,
    env_json,
    events,
    json_option,
    list_all,
    listing,
    logs,
    need,
    pass_state,
    pause,
    positional,
    remove,
    resource,
    resume,
    scale,
    show,
    tenant_argument,
    update,
    view,
    wait_for_endpoint,
)

DEFAULT_ENDPOINT_RESOURCES = {"requests.cpu": "0", "requests.memory": "0"}
DEFAULT_SERVING = "tf-serving"
DEFAULT_SUBJECT = "client"


def looks_like_policy(value: str) -> bool:
    return value.strip().startswith("{")


def endpoint_args(args: tuple[str, ...]) -> dict[str, str | None]:
    """NAME MODEL [POLICY] TENANT [SERVING] [SUBJECT]: the original's order, the policy optional.

    With four or more values the third is the policy (as the original read them); with three, the
    third is the tenant unless it is a policy (``{...}``), in which case the tenant is still missing.
    """
    if len(args) > 6:
        raise click.UsageError("too many arguments: NAME MODEL [POLICY] TENANT [SERVING] [SUBJECT]")
    values: dict[str, str | None] = dict.fromkeys(("name", "model", "policy", "tenant", "serving", "subject"))
    values["name"] = args[0] if args else None
    values["model"] = args[1] if len(args) > 1 else None
    rest = list(args[2:])
    if len(rest) == 1 and not looks_like_policy(rest[0]):
        values["tenant"] = rest[0]
    else:
        for key, value in zip(("policy", "tenant", "serving", "subject"), rest, strict=False):
            values[key] = value
    return values


@resource(create, "endpoint", ENDPOINT_ALIASES)
@click.argument("args", nargs=-1)
@click.option("--policy", "--modelVersionPolicy", "policy", help="e.g. '{latest{}}' or '{specific{versions:2}}'.")
@click.option("--serving", "--servingName", "serving", help=f"Serving template (default {DEFAULT_SERVING}).")
@click.option("--subject", "--subjectName", "subject", help=f"Client certificate CN (default {DEFAULT_SUBJECT}).")
@click.option("--replicas", type=click.IntRange(min=0))
@click.option("--resources", help='JSON, e.g. {"requests.cpu": "1"} (env ENDPOINT_RESOURCES).')
@WAIT
@TIMEOUT
@pass_state
def create_endpoint(
    state: State,
    args: tuple[str, ...],
    policy: str | None,
    serving: str | None,
    subject: str | None,
    replicas: int | None,
    resources: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """NAME MODEL [POLICY] TENANT [SERVING] [SUBJECT]: create an inference endpoint."""
    values = endpoint_args(args)
    name = need(values["name"], "endpoint name")
    model = need(values["model"], "model name")
    tenant = need(values["tenant"], "tenant name", "DEFAULT_TENANT_NAME")
    body: dict[str, Any] = {
        "servingName": serving or values["serving"] or DEFAULT_SERVING,
        "modelName": model,
        "endpointName": name,
        "subjectName": subject or values["subject"] or DEFAULT_SUBJECT,
        "resources": json_option(resources, "--resources")
        if resources
        else env_json("ENDPOINT_RESOURCES", DEFAULT_ENDPOINT_RESOURCES),
    }
    if policy or values["policy"]:
        body["modelVersionPolicy"] = policy or values["policy"]
    if replicas is not None:
        body["replicas"] = replicas
    show(state, state.api().send("POST", f"/tenants/{tenant}/endpoints", json_body=body).text)
    if wait:
        wait_for_endpoint(state, tenant, name, 1 if replicas is None else replicas, timeout)


@resource(remove, "endpoint", ENDPOINT_ALIASES)
@positional("name", "endpoint name")
@tenant_argument
@WAIT
@TIMEOUT
@pass_state
def remove_endpoint(state: State, name: str, tenant: str, wait: bool, timeout: float) -> None:
    """NAME TENANT: delete an endpoint."""
    response = state.api().send("DELETE", f"/tenants/{tenant}/endpoints", json_body={"endpointName": name})
    show(state, response.text)
    if wait:
        wait_for_endpoint(state, tenant, name, None, timeout)


@resource(listing, "endpoints", ("e", "endpoint"))
@tenant_argument
@pass_state
def list_endpoints(state: State, tenant: str) -> None:
    """TENANT: a tenant's endpoints and their status."""
    show(state, list_all(state, f"/tenants/{tenant}/endpoints"))


@resource(view, "endpoint", ENDPOINT_ALIASES)
@positional("name", "endpoint name")
@tenant_argument
@pass_state
def view_endpoint(state: State, name: str, tenant: str) -> None:
    """NAME TENANT: pods, URL, resources and replicas of an endpoint."""
    show(state, state.api().send("GET", f"/tenants/{tenant}/endpoints/{name}").text)


@resource(update, "endpoint", ENDPOINT_ALIASES)
@positional("name", "endpoint name")
@tenant_argument
@click.option("--modelName", "--model-name", "model_name")
@click.option("--modelVersionPolicy", "--model-version-policy", "policy")
@click.option("--resources", help="JSON; replaces the resources.")
@click.option("--subjectName", "--subject-name", "subject")
@pass_state
def update_endpoint(
    state: State,
    name: str,
    tenant: str,
    model_name: str | None,
    policy: str | None,
    resources: str | None,
    subject: str | None,
) -> None:
    """NAME TENANT: change an endpoint's model, version policy, resources or subject name."""
    body: dict[str, Any] = {}
    if model_name is not None:
        body["modelName"] = model_name
    if policy is not None:
        body["modelVersionPolicy"] = policy
    if resources is not None:
        body["resources"] = json_option(resources, "--resources")
    if subject is not None:
        body["subjectName"] = subject
    if not body:
        raise click.UsageError("give at least one of --modelName, --modelVersionPolicy, --resources, --subjectName")
    show(state, state.api().send("PATCH", f"/tenants/{tenant}/endpoints/{name}", json_body=body).text)


@resource(scale, "endpoint", ENDPOINT_ALIASES)
@positional("name", "endpoint name")
@positional("replicas", "replicas")
@tenant_argument
@WAIT
@TIMEOUT
@pass_state
def scale_endpoint(state: State, name: str, replicas: str, tenant: str, wait: bool, timeout: float) -> None:
    """NAME REPLICAS TENANT: set the number of serving pods (0 stops them)."""
    raw = replicas
    if not raw.isdigit():
        raise click.BadParameter(f"{raw!r} is not a whole number >= 0", param_hint="REPLICAS")
    count = int(raw)
    response = state.api().send("PATCH", f"/tenants/{tenant}/endpoints/{name}/replicas", json_body={"replicas": count})
    show(state, response.text)
    if wait:
        wait_for_endpoint(state, tenant, name, count, timeout)


def _replicas_of(body: str) -> int | None:
    try:
        value = json.loads(body)["data"]["values"]["replicas"]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) else None


def _endpoint_action(group: AliasGroup, action: str, doc: str) -> None:
    @resource(group, "endpoint", ENDPOINT_ALIASES, help=doc)
    @positional("name", "endpoint name")
    @tenant_argument
    @WAIT
    @TIMEOUT
    @pass_state
    def command(state: State, name: str, tenant: str, wait: bool, timeout: float) -> None:
        response = state.api().send("POST", f"/tenants/{tenant}/endpoints/{name}/{action}")
        show(state, response.text)
        if wait:
            target = 0 if action == "pause" else _replicas_of(response.text)
            if target is not None:
                wait_for_endpoint(state, tenant, name, target, timeout)


_endpoint_action(pause, "pause", "NAME TENANT: scale to 0 and remember the replicas (--wait: until no pod runs).")
_endpoint_action(resume, "resume", "NAME TENANT: back to the replicas before the pause (--wait: until they run).")


@resource(events, "endpoint", ENDPOINT_ALIASES)
@positional("name", "endpoint name")
@tenant_argument
@pass_state
def events_endpoint(state: State, name: str, tenant: str) -> None:
    """NAME TENANT: events of the endpoint, its Deployment and pods, oldest first."""
    show(state, state.api().send("GET", f"/tenants/{tenant}/endpoints/{name}/events").text)


@resource(logs, "endpoint", ENDPOINT_ALIASES)
@positional("name", "endpoint name")
@tenant_argument
@click.option("--tail", type=click.IntRange(min=1), help="Only the last N lines of each pod.")
@pass_state
def logs_endpoint(state: State, name: str, tenant: str, tail: int | None) -> None:
    """NAME TENANT: logs of the endpoint's pods."""
    params = {"tail": tail} if tail else None
    show(state, state.api().send("GET", f"/tenants/{tenant}/endpoints/{name}/logs", params=params).text)
