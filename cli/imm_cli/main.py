"""The ``imm`` command: ``imm [OPTIONS] OPERATION RESOURCE [ARGS]``, as the original bash CLI.

Operations and resources keep the original names, aliases and positional order (imm-behaviour §7.2):
``create|c``, ``remove|rm``, ``update|up``, ``scale|s``, ``list|ls``, ``view|v``, ``upload|u``,
``login``, ``logout``; resources ``tenant|t``, ``endpoint|e``, ``model|m``, ``serving|s``. New routes
get new pairs in the same grammar (``view tenant``, ``pause endpoint``, ``logs endpoint``, ...) and
``imm tasks list|view|watch``.

Exit codes: 0 success, 1 the API (or the identity provider) refused or failed, or a local problem
(message on stderr), 2 a usage error. Output: the server's JSON exactly as sent, or ``--output table``.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from imm_cli import auth, certs, output, tasks
from imm_cli import config as cfg
from imm_cli.http import Api, ApiError, CliError, ConfigStore, token_claims
from imm_cli.upload import DEFAULT_PART_MB, MAX_PART_MB, MIB, MIN_PART_MB, Options, Uploader

DEFAULT_TENANT_RESOURCES = {"requests.cpu": "2", "requests.memory": "2Gi", "maxEndpoints": 15}
DEFAULT_ENDPOINT_RESOURCES = {"requests.cpu": "0", "requests.memory": "0"}
DEFAULT_SERVING = "tf-serving"
DEFAULT_SUBJECT = "client"
ASYNC = {"Prefer": "respond-async"}
READ_STDIN = "-"


# --- plumbing -----------------------------------------------------------------------------------------


@dataclass
class State:
    """The root options of one invocation; builds the config store and the API client on demand."""

    verbose: int = 0
    insecure: bool = False
    offline: bool = False
    address: str | None = None
    port: int | None = None
    config: str | None = None
    api_url: str | None = None
    ca_cert: str | None = None
    output: str = "json"
    _store: ConfigStore | None = field(default=None, repr=False)
    _api: Api | None = field(default=None, repr=False)

    def store(self) -> ConfigStore:
        if self._store is None:
            path = cfg.config_path(self.config)
            self._store = ConfigStore(path, cfg.load(path))
        return self._store

    def connection(self) -> cfg.Connection:
        return cfg.resolve(
            self.store().data,
            api_url=self.api_url,
            address=self.address,
            port=self.port,
            ca_cert=self.ca_cert,
            insecure=self.insecure,
        )

    def api(self) -> Api:
        if self._api is None:
            self._api = Api(self.connection(), self.store(), verbose=self.verbose, refresher=auth.refresh)
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.close()


pass_state = click.make_pass_decorator(State)


class AliasGroup(click.Group):
    """A group whose sub-commands also answer to short names (``c`` for ``create``, ``t`` for ``tenant``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aliases: dict[str, str] = {}

    def add_alias(self, name: str, *aliases: str) -> None:
        for alias in aliases:
            self.aliases[alias] = name

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        return (command.name if command else name), command, rest

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            shorts = sorted((alias for alias, target in self.aliases.items() if target == name), key=len)
            label = f"{name} ({', '.join(shorts)})" if shorts else name
            rows.append((label, command.get_short_help_str(limit=60)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def interactive() -> bool:
    return sys.stdin.isatty()


def need(value: str | None, label: str, default_env: str | None = None) -> str:
    """A positional value; missing ones are asked for on a terminal (as the original), else exit 2."""
    if value:
        return value
    if default_env and os.environ.get(default_env):
        return os.environ[default_env]
    if interactive():
        answer: str = click.prompt(label)
        return answer
    raise click.UsageError(f"missing {label}")


def json_option(value: str | None, label: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=label) from None


def env_json(name: str, default: Any) -> Any:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise click.UsageError(f"{name} is not JSON: {exc}") from None


def show(state: State, body: str) -> None:
    output.emit(body, state.output, sys.stdout)


#: Items asked per page when the CLI lists everything (the API's maximum page, docs/api-conventions.md).
LIST_PAGE_SIZE = 500


def merge_pages(first: Any, later: Any) -> Any:
    """``data`` of two pages of one list as one: arrays are joined, objects join their arrays."""
    if isinstance(first, list) and isinstance(later, list):
        return first + later
    if isinstance(first, dict) and isinstance(later, dict):
        merged = dict(first)
        for key, value in later.items():
            merged[key] = merge_pages(merged[key], value) if key in merged else value
        return merged
    return later


def list_all(state: State, path: str, params: dict[str, Any] | None = None) -> str:
    """The whole list as one answer: the pages are followed through their ``continue`` token
    (absent on the last page), so the output looks as it did before the API paged."""
    api = state.api()
    query: dict[str, Any] = {"limit": LIST_PAGE_SIZE, **(params or {})}
    answer = api.json("GET", path, params=query)
    while isinstance(answer, dict) and answer.get("continue"):
        following = api.json("GET", path, params={**query, "continue": answer["continue"]})
        answer = {**answer, "data": merge_pages(answer.get("data"), following.get("data"))}
        answer.pop("continue", None)
        if isinstance(following, dict) and following.get("continue"):
            answer["continue"] = following["continue"]
    return json.dumps(answer)


def submit(state: State, method: str, path: str, *, body: Any = None, wait: bool = False) -> None:
    """A request whose answer may be a task (``Prefer: respond-async``); ``--wait`` follows it."""
    api = state.api()
    response = api.send(method, path, json_body=body, headers=ASYNC if wait else None)
    answer = response.json() if response.content else None
    task = tasks.task_of_answer(answer)
    if task is None:
        show(state, response.text)
        return
    if not wait:
        show(state, response.text)
        tasks.print_hint(task)
        return
    record = tasks.follow(api, str(task.get("url") or task["id"]))
    output.emit_data({"status": "OK", "data": record}, state.output, sys.stdout)
    if record.get("state") != "SUCCEEDED":
        raise CliError(tasks.failure_message(record))


def wait_for_endpoint(state: State, tenant: str, name: str, replicas: int | None, timeout: float) -> None:
    """Poll the view until ``running pods`` equals ``replicas`` (or the endpoint is gone for None)."""
    api = state.api()
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = api.json("GET", f"/tenants/{tenant}/endpoints/{name}")
        except ApiError as exc:
            if replicas is None and exc.status == 404:
                return
            raise
        running = (answer.get("data", {}).get("endpoint status") or {}).get("running pods")
        if replicas is not None and running == replicas:
            return
        if time.monotonic() > deadline:
            raise CliError(f"endpoint {name}: {running} running pods after {int(timeout)} s, expected {replicas}")
        time.sleep(1.0)


# --- the root -----------------------------------------------------------------------------------------


@click.group(cls=AliasGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("-v", "--verbose", count=True, help="Print requests (twice: with headers; tokens stay redacted).")
@click.option("-k", "--insecure", is_flag=True, help="Do not verify the API's TLS certificate.")
@click.option("-o", "--offline", is_flag=True, help="login: copy-paste the code instead of a local callback.")
@click.option("-a", "--address", help="API address (env MANAGEMENT_API_ADDRESS; default from the config).")
@click.option("-p", "--port", type=int, help="API port (env MANAGEMENT_API_PORT; default 443).")
@click.option("-c", "--config", "config_path", help="Config file (env IMM_CONFIG_PATH; default ~/.immconfig).")
@click.option("-f", "--release-prefix", envvar="IMM_RELEASE_PREFIX", default="imm", hidden=True)
@click.option("--api-url", envvar="IMM_API_URL", help="Base URL, e.g. http://127.0.0.1:8000 (env IMM_API_URL).")
@click.option("--ca-cert", help="CA file for the API's certificate (env MANAGEMENT_CA_CERT_PATH).")
@click.option(
    "--output",
    type=click.Choice(output.FORMATS),
    envvar="IMM_OUTPUT",
    default="json",
    show_default=True,
    help="The server's JSON, or a table.",
)
@click.version_option("0.1.0", prog_name="imm")
@click.pass_context
def cli(
    ctx: click.Context,
    verbose: int,
    insecure: bool,
    offline: bool,
    address: str | None,
    port: int | None,
    config_path: str | None,
    release_prefix: str,
    api_url: str | None,
    ca_cert: str | None,
    output: str,
) -> None:
    """Manage tenants, models and inference endpoints of an Inference Model Manager platform."""
    state = State(
        verbose=verbose,
        insecure=insecure,
        offline=offline,
        address=address,
        port=port,
        config=config_path,
        api_url=api_url,
        ca_cert=ca_cert,
        output=output,
    )
    ctx.obj = state
    ctx.call_on_close(state.close)


def operation(name: str, *aliases: str, help: str) -> AliasGroup:
    @cli.group(name=name, cls=AliasGroup, help=help)
    def group() -> None:
        pass

    cli.add_alias(name, *aliases)
    assert isinstance(group, AliasGroup)
    return group


create = operation("create", "c", help="Create a tenant, an endpoint or a serving template.")
remove = operation("remove", "rm", help="Remove a tenant, an endpoint, a model version or a serving template.")
update = operation("update", "up", help="Update an endpoint, a tenant or a serving template.")
scale = operation("scale", "s", help="Set an endpoint's replicas.")
listing = operation("list", "ls", help="List tenants, endpoints, models, servings or tasks.")
view = operation("view", "v", help="Show one tenant, endpoint, serving or task.")
pause = operation("pause", help="Scale an endpoint to 0, remembering its replicas.")
resume = operation("resume", help="Bring a paused endpoint back to its replicas.")
events = operation("events", help="Kubernetes events of an endpoint, its Deployment and pods.")
logs = operation("logs", help="Logs of an endpoint's pods.")

TENANT_ALIASES = ("t", "tenants")
ENDPOINT_ALIASES = ("e", "endpoints")
MODEL_ALIASES = ("m", "models")
SERVING_ALIASES = ("s", "servings")


def resource(group: AliasGroup, name: str, aliases: tuple[str, ...], **kwargs: Any) -> Callable[[Any], Any]:
    def decorate(function: Any) -> Any:
        command = group.command(name=name, **kwargs)(function)
        group.add_alias(name, *aliases)
        return command

    return decorate


WAIT = click.option("--wait", is_flag=True, help="Follow the operation to its end, with a progress bar.")
TIMEOUT = click.option("--timeout", type=float, default=300.0, show_default=True, help="--wait gives up after this.")


# --- tenants ------------------------------------------------------------------------------------------


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
@click.argument("name", required=False)
@click.argument("scope", required=False)
@click.option("--cert-file", type=click.Path(exists=True, dir_okay=False), help="The tenant CA as a PEM file.")
@click.option("--generate-certs/--no-generate-certs", default=None, help="Make a tenant CA and client certificate.")
@click.option("--certs-dir", help="Where --generate-certs writes (default ./<name>-certs).")
@click.option("--quota", help='JSON, e.g. {"requests.cpu": "2", "maxEndpoints": 5} (env TENANT_RESOURCES).')
@WAIT
@pass_state
def create_tenant(
    state: State,
    name: str | None,
    scope: str | None,
    cert_file: str | None,
    generate_certs: bool | None,
    certs_dir: str | None,
    quota: str | None,
    wait: bool,
) -> None:
    """NAME SCOPE: create a tenant whose users are the group SCOPE (several: comma-separated)."""
    name = need(name, "tenant name")
    scope = need(scope, "scope (identity-provider group)")
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
@click.argument("name", required=False)
@WAIT
@pass_state
def remove_tenant(state: State, name: str | None, wait: bool) -> None:
    """NAME: delete a tenant with its endpoints and models."""
    submit(state, "DELETE", "/tenants", body={"name": need(name, "tenant name")}, wait=wait)


@resource(listing, "tenants", ("t", "tenant"))
@pass_state
def list_tenants(state: State) -> None:
    """The tenants you may see (admins: all)."""
    show(state, list_all(state, "/tenants"))


@resource(view, "tenant", TENANT_ALIASES)
@click.argument("name", required=False)
@pass_state
def view_tenant(state: State, name: str | None) -> None:
    """NAME: scope, quota usage, endpoints and bucket size of a tenant."""
    show(state, state.api().send("GET", f"/tenants/{need(name, 'tenant name')}").text)


@resource(update, "tenant", TENANT_ALIASES)
@click.argument("name", required=False)
@click.option("--quota", help="JSON; replaces the quota.")
@click.option("--scope", "scopes", multiple=True, help="A group (repeat for several); replaces the scope.")
@pass_state
def update_tenant(state: State, name: str | None, quota: str | None, scopes: tuple[str, ...]) -> None:
    """NAME: replace a tenant's quota and/or scope."""
    body: dict[str, Any] = {}
    if quota is not None:
        body["quota"] = json_option(quota, "--quota")
    if scopes:
        body["scope"] = scopes[0] if len(scopes) == 1 else list(scopes)
    if not body:
        raise click.UsageError("give --quota, --scope or both")
    show(state, state.api().send("PATCH", f"/tenants/{need(name, 'tenant name')}", json_body=body).text)


# --- endpoints ----------------------------------------------------------------------------------------


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
@click.argument("name", required=False)
@click.argument("tenant", required=False)
@WAIT
@TIMEOUT
@pass_state
def remove_endpoint(state: State, name: str | None, tenant: str | None, wait: bool, timeout: float) -> None:
    """NAME TENANT: delete an endpoint."""
    name = need(name, "endpoint name")
    tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
    response = state.api().send("DELETE", f"/tenants/{tenant}/endpoints", json_body={"endpointName": name})
    show(state, response.text)
    if wait:
        wait_for_endpoint(state, tenant, name, None, timeout)


@resource(listing, "endpoints", ("e", "endpoint"))
@click.argument("tenant", required=False)
@pass_state
def list_endpoints(state: State, tenant: str | None) -> None:
    """TENANT: a tenant's endpoints and their status."""
    tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
    show(state, list_all(state, f"/tenants/{tenant}/endpoints"))


@resource(view, "endpoint", ENDPOINT_ALIASES)
@click.argument("name", required=False)
@click.argument("tenant", required=False)
@pass_state
def view_endpoint(state: State, name: str | None, tenant: str | None) -> None:
    """NAME TENANT: pods, URL, resources and replicas of an endpoint."""
    name = need(name, "endpoint name")
    tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
    show(state, state.api().send("GET", f"/tenants/{tenant}/endpoints/{name}").text)


@resource(update, "endpoint", ENDPOINT_ALIASES)
@click.argument("name", required=False)
@click.argument("tenant", required=False)
@click.option("--modelName", "--model-name", "model_name")
@click.option("--modelVersionPolicy", "--model-version-policy", "policy")
@click.option("--resources", help="JSON; replaces the resources.")
@click.option("--subjectName", "--subject-name", "subject")
@pass_state
def update_endpoint(
    state: State,
    name: str | None,
    tenant: str | None,
    model_name: str | None,
    policy: str | None,
    resources: str | None,
    subject: str | None,
) -> None:
    """NAME TENANT: change an endpoint's model, version policy, resources or subject name."""
    name = need(name, "endpoint name")
    tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
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
@click.argument("name", required=False)
@click.argument("replicas", required=False)
@click.argument("tenant", required=False)
@WAIT
@TIMEOUT
@pass_state
def scale_endpoint(
    state: State, name: str | None, replicas: str | None, tenant: str | None, wait: bool, timeout: float
) -> None:
    """NAME REPLICAS TENANT: set the number of serving pods (0 stops them)."""
    name = need(name, "endpoint name")
    raw = need(replicas, "replicas")
    if not raw.isdigit():
        raise click.BadParameter(f"{raw!r} is not a whole number >= 0", param_hint="REPLICAS")
    tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
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
    @click.argument("name", required=False)
    @click.argument("tenant", required=False)
    @WAIT
    @TIMEOUT
    @pass_state
    def command(state: State, name: str | None, tenant: str | None, wait: bool, timeout: float) -> None:
        name = need(name, "endpoint name")
        tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
        response = state.api().send("POST", f"/tenants/{tenant}/endpoints/{name}/{action}")
        show(state, response.text)
        if wait:
            target = 0 if action == "pause" else _replicas_of(response.text)
            if target is not None:
                wait_for_endpoint(state, tenant, name, target, timeout)


_endpoint_action(pause, "pause", "NAME TENANT: scale to 0 and remember the replicas (--wait: until no pod runs).")
_endpoint_action(resume, "resume", "NAME TENANT: back to the replicas before the pause (--wait: until they run).")


@resource(events, "endpoint", ENDPOINT_ALIASES)
@click.argument("name", required=False)
@click.argument("tenant", required=False)
@pass_state
def events_endpoint(state: State, name: str | None, tenant: str | None) -> None:
    """NAME TENANT: events of the endpoint, its Deployment and pods, oldest first."""
    name = need(name, "endpoint name")
    tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
    show(state, state.api().send("GET", f"/tenants/{tenant}/endpoints/{name}/events").text)


@resource(logs, "endpoint", ENDPOINT_ALIASES)
@click.argument("name", required=False)
@click.argument("tenant", required=False)
@click.option("--tail", type=click.IntRange(min=1), help="Only the last N lines of each pod.")
@pass_state
def logs_endpoint(state: State, name: str | None, tenant: str | None, tail: int | None) -> None:
    """NAME TENANT: logs of the endpoint's pods."""
    name = need(name, "endpoint name")
    tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
    params = {"tail": tail} if tail else None
    show(state, state.api().send("GET", f"/tenants/{tenant}/endpoints/{name}/logs", params=params).text)


# --- models and uploads -------------------------------------------------------------------------------


@resource(listing, "models", ("m", "model"))
@click.argument("tenant", required=False)
@click.option("--grouped", is_flag=True, help="Models, their versions and files, sizes and serving endpoints.")
@pass_state
def list_models(state: State, tenant: str | None, grouped: bool) -> None:
    """TENANT: every model file in the tenant's bucket (--grouped: by model and version)."""
    tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
    params = {"view": "grouped"} if grouped else None
    show(state, list_all(state, f"/tenants/{tenant}/models", params))


@resource(listing, "versions", ("version",))
@click.argument("tenant", required=False)
@pass_state
def list_versions(state: State, tenant: str | None) -> None:
    """TENANT: models with their versions (same as `ls m TENANT --grouped`)."""
    tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
    show(state, list_all(state, f"/tenants/{tenant}/models", {"view": "grouped"}))


import_ = operation("import", help="Import a model version from s3://<tenant>/<path> or an http(s) URL.")
extract = operation("extract", help="Unpack a tarball already in the bucket into a model version.")


@resource(import_, "model", MODEL_ALIASES)
@click.argument("model", required=False)
@click.argument("version", required=False)
@click.argument("tenant", required=False)
@click.argument("source", required=False)
@click.option("--path", help="Where under the version directory (default: the source's name).")
@WAIT
@pass_state
def import_model(
    state: State,
    model: str | None,
    version: str | None,
    tenant: str | None,
    source: str | None,
    path: str | None,
    wait: bool,
) -> None:
    """MODEL VERSION TENANT SOURCE: copy SOURCE into MODEL/VERSION on the server (a task)."""
    body: dict[str, Any] = {
        "modelName": need(model, "model name"),
        "modelVersion": version_number(need(version, "model version")),
        "source": need(source, "source (s3://tenant/path or https://...)"),
    }
    if path:
        body["path"] = path
    tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
    submit(state, "POST", f"/tenants/{tenant}/models/import", body=body, wait=wait)


@resource(extract, "model", MODEL_ALIASES)
@click.argument("model", required=False)
@click.argument("version", required=False)
@click.argument("tenant", required=False)
@click.argument("archive", required=False)
@click.option("--keep-archive", is_flag=True, help="Keep the tarball after unpacking.")
@WAIT
@pass_state
def extract_model(
    state: State,
    model: str | None,
    version: str | None,
    tenant: str | None,
    archive: str | None,
    keep_archive: bool,
    wait: bool,
) -> None:
    """MODEL VERSION TENANT ARCHIVE: unpack ARCHIVE (a key in the bucket) into MODEL/VERSION (a task)."""
    body: dict[str, Any] = {
        "modelName": need(model, "model name"),
        "modelVersion": version_number(need(version, "model version")),
        "archive": need(archive, "archive key"),
        "keepArchive": keep_archive,
    }
    tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
    submit(state, "POST", f"/tenants/{tenant}/models/extract", body=body, wait=wait)


def version_number(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise click.BadParameter(f"{raw!r} is not a whole number >= 1", param_hint="VERSION")
    return int(raw)


@resource(remove, "model", MODEL_ALIASES)
@click.argument("model", required=False)
@click.argument("version", required=False)
@click.argument("tenant", required=False)
@click.option("--force", is_flag=True, help="Delete even if an endpoint serves this version.")
@pass_state
def remove_model(state: State, model: str | None, version: str | None, tenant: str | None, force: bool) -> None:
    """MODEL VERSION TENANT: delete one version of a model."""
    model = need(model, "model name")
    number = version_number(need(version, "model version"))
    tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
    body: dict[str, Any] = {"modelName": model, "modelVersion": number}
    if force:
        body["force"] = True
    show(state, state.api().send("DELETE", f"/tenants/{tenant}/models", json_body=body).text)


@cli.command(name="upload")
@click.argument("path", required=False)
@click.argument("model", required=False)
@click.argument("version", required=False)
@click.argument("tenant", required=False)
@click.option(
    "--part",
    type=click.IntRange(MIN_PART_MB, MAX_PART_MB),
    default=DEFAULT_PART_MB,
    show_default=True,
    help="Part size in MiB.",
)
@click.option("--parallel", type=click.IntRange(1, 32), default=4, show_default=True, help="Parts sent at once.")
@click.option("--via-api", is_flag=True, help="Send the bytes through the API's compatibility routes.")
@click.option("--restart", is_flag=True, help="Abandon a previous interrupted upload of this PATH and start over.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@pass_state
def upload_command(
    state: State,
    path: str | None,
    model: str | None,
    version: str | None,
    tenant: str | None,
    part: int,
    parallel: int,
    via_api: bool,
    restart: bool,
    progress: bool | None,
) -> None:
    """PATH MODEL VERSION TENANT: upload a file, a directory tree or a tarball as MODEL/VERSION."""
    source = Path(need(path, "path"))
    model = need(model, "model name")
    number = version_number(need(version, "model version"))
    tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
    options = Options(
        tenant=tenant,
        model=model,
        version=number,
        part_size=part * MIB,
        parallel=parallel,
        via_api=via_api,
        restart=restart,
        progress=progress,
    )
    uploader = Uploader(state.api(), options, announce=lambda text: click.echo(text, err=True))
    try:
        summary = uploader.run(source)
    except KeyboardInterrupt:
        click.echo("imm: upload interrupted; run the same command again to resume (--restart to start over)", err=True)
        raise
    except (ApiError, CliError) as exc:
        raise CliError(
            f"{exc}\nimm: run the same command again to resume the upload (--restart to start over)"
        ) from None
    data = {
        "model": model,
        "version": number,
        "tenant": tenant,
        "files": summary.files,
        "directories": summary.directories,
        "bytes": summary.bytes,
        "protocol": summary.protocol,
        "parts_sent": summary.sent_parts,
        "parts_resumed": summary.resumed_parts,
        "message": f"Model {model} version {number} upload completed successfully",
    }
    output.emit_data({"status": "OK", "data": data}, state.output, sys.stdout)


cli.add_alias("upload", "u")


# --- servings -----------------------------------------------------------------------------------------


@resource(listing, "servings", ("s", "serving"))
@pass_state
def list_servings(state: State) -> None:
    """The serving templates endpoints can use."""
    show(state, list_all(state, "/servings"))


@resource(view, "serving", SERVING_ALIASES)
@click.argument("name", required=False)
@pass_state
def view_serving(state: State, name: str | None) -> None:
    """NAME: the template files of a serving."""
    show(state, state.api().send("GET", f"/servings/{need(name, 'serving name')}").text)


def serving_body(directory: str) -> dict[str, str]:
    """The template files (``*.tmpl``) of a directory, by file name, as the API takes them."""
    files = sorted(Path(directory).glob("*.tmpl"))
    if not files:
        raise click.BadParameter(f"{directory} holds no *.tmpl files", param_hint="--dir")
    return {file.name: file.read_text() for file in files}


@resource(create, "serving", SERVING_ALIASES)
@click.argument("name", required=False)
@click.option("--dir", "directory", required=True, type=click.Path(exists=True, file_okay=False))
@pass_state
def create_serving(state: State, name: str | None, directory: str) -> None:
    """NAME --dir DIR: add a serving template (admins) from DIR/*.tmpl."""
    name = need(name, "serving name")
    show(state, state.api().send("POST", f"/servings/{name}", json_body=serving_body(directory)).text)


@resource(update, "serving", SERVING_ALIASES)
@click.argument("name", required=False)
@click.option("--dir", "directory", required=True, type=click.Path(exists=True, file_okay=False))
@pass_state
def update_serving(state: State, name: str | None, directory: str) -> None:
    """NAME --dir DIR: replace a serving template's files (admins)."""
    name = need(name, "serving name")
    show(state, state.api().send("PUT", f"/servings/{name}", json_body=serving_body(directory)).text)


@resource(remove, "serving", SERVING_ALIASES)
@click.argument("name", required=False)
@pass_state
def remove_serving(state: State, name: str | None) -> None:
    """NAME: delete a serving template no endpoint uses (admins)."""
    show(state, state.api().send("DELETE", f"/servings/{need(name, 'serving name')}").text)


# --- tasks --------------------------------------------------------------------------------------------

task_group = operation("tasks", "task", help="Long operations: list, view, watch.")


def _list_tasks(state: State, task_state: str | None, kind: str | None, limit: int | None) -> None:
    params: dict[str, Any] = {}
    if task_state:
        params["state"] = task_state
    if kind:
        params["kind"] = kind
    if limit:
        params["limit"] = limit
    show(state, state.api().send("GET", "/tasks", params=params or None).text)


TASK_FILTERS = [
    click.option("--state", "task_state", help="PENDING, RUNNING, SUCCEEDED, FAILED or ROLLED_BACK."),
    click.option("--kind", help="e.g. tenants.create"),
    click.option("--limit", type=click.IntRange(1, 200)),
]


def _with(options: list[Callable[[Any], Any]], function: Any) -> Any:
    for option in reversed(options):
        function = option(function)
    return function


@task_group.command(name="list")
@pass_state
def tasks_list(state: State, task_state: str | None, kind: str | None, limit: int | None) -> None:
    """Your operations, newest first (admins: everybody's)."""
    _list_tasks(state, task_state, kind, limit)


_with(TASK_FILTERS, tasks_list)
task_group.add_alias("list", "ls")


@task_group.command(name="view")
@click.argument("task_id")
@pass_state
def tasks_view(state: State, task_id: str) -> None:
    """ID: one operation's state, steps and error."""
    show(state, state.api().send("GET", tasks.task_path(task_id)).text)


task_group.add_alias("view", "v", "show")


@task_group.command(name="watch")
@click.argument("task_id")
@TIMEOUT
@pass_state
def tasks_watch(state: State, task_id: str, timeout: float) -> None:
    """ID: follow an operation to its end with a progress bar; exit 1 if it fails."""
    record = tasks.follow(state.api(), task_id, timeout=timeout)
    output.emit_data({"status": "OK", "data": record}, state.output, sys.stdout)
    if record.get("state") != "SUCCEEDED":
        raise CliError(tasks.failure_message(record))


@resource(listing, "tasks", ("task",))
@pass_state
def list_tasks_alias(state: State, task_state: str | None, kind: str | None, limit: int | None) -> None:
    """Your operations (same as `imm tasks list`)."""
    _list_tasks(state, task_state, kind, limit)


_with(TASK_FILTERS, list_tasks_alias)


@resource(view, "task", ("tasks",))
@click.argument("task_id")
@pass_state
def view_task_alias(state: State, task_id: str) -> None:
    """ID: one operation (same as `imm tasks view`)."""
    show(state, state.api().send("GET", tasks.task_path(task_id)).text)


# --- robots -------------------------------------------------------------------------------------------
robot_group = operation("robots", "robot", help="A tenant's robot accounts (for CI): list, create, delete, token.")


@robot_group.command(name="list")
@click.argument("tenant", required=False)
@pass_state
def robots_list(state: State, tenant: str | None) -> None:
    """TENANT: the tenant's robots."""
    tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
    show(state, list_all(state, f"/tenants/{tenant}/robots"))


robot_group.add_alias("list", "ls")


@robot_group.command(name="create")
@click.argument("name", required=False)
@click.argument("tenant", required=False)
@click.option("--description", default="", help="What the robot is for (up to 256 characters).")
@click.option(
    "--role",
    type=click.Choice(["tenant", "deployer", "reader"]),
    default="tenant",
    show_default=True,
    help="tenant: the tenant's own rights; deployer: endpoints and model uploads; reader: reads only.",
)
@pass_state
def robots_create(state: State, name: str | None, tenant: str | None, description: str, role: str) -> None:
    """NAME TENANT: create a robot (a Kubernetes ServiceAccount of the tenant)."""
    name = need(name, "robot name")
    tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
    body = {"name": name, "description": description, "role": role}
    show(state, state.api().send("POST", f"/tenants/{tenant}/robots", json_body=body).text)


@robot_group.command(name="delete")
@click.argument("name", required=False)
@click.argument("tenant", required=False)
@pass_state
def robots_delete(state: State, name: str | None, tenant: str | None) -> None:
    """NAME TENANT: delete a robot; every token it was given stops working."""
    name = need(name, "robot name")
    tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
    show(state, state.api().send("DELETE", f"/tenants/{tenant}/robots/{name}").text)


robot_group.add_alias("delete", "rm", "remove")


@robot_group.command(name="token")
@click.argument("name", required=False)
@click.argument("tenant", required=False)
@click.option("--expires-in", type=click.IntRange(600), help="Lifetime in seconds (default: the server's maximum).")
@click.option("--raw", is_flag=True, help="Print only the token (for IMM_TOKEN or `imm login --token -`).")
@pass_state
def robots_token(state: State, name: str | None, tenant: str | None, expires_in: int | None, raw: bool) -> None:
    """NAME TENANT: a bounded token for the robot (it is a credential; shown once)."""
    name = need(name, "robot name")
    tenant = need(tenant, "tenant name", "DEFAULT_TENANT_NAME")
    body = {"expiresIn": expires_in} if expires_in else {}
    response = state.api().send("POST", f"/tenants/{tenant}/robots/{name}/tokens", json_body=body)
    if raw:
        click.echo(response.json()["data"]["token"])
        return
    show(state, response.text)


# --- login / logout -----------------------------------------------------------------------------------


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


# --- entry point --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run ``imm``; returns the exit code (0 ok, 1 failure, 2 usage) instead of leaving it to click."""
    try:
        result = cli.main(args=argv, prog_name="imm", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:  # UsageError, BadParameter: exit 2
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except ApiError as exc:
        click.echo(f"imm: {exc}", err=True)
        return 1
    except (CliError, cfg.ConfigError, OSError) as exc:
        click.echo(f"imm: {exc}", err=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
