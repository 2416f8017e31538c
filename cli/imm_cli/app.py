"""The ``imm`` command's frame: the root group and its options, the operation groups, the shared plumbing.

The commands live in ``imm_cli.commands`` (one module per area) and register themselves on the groups
made here when ``imm_cli.main`` imports them. ``imm [OPTIONS] OPERATION RESOURCE [ARGS]``: see main.py.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

from imm_cli import auth, output, tasks
from imm_cli import config as cfg
from imm_cli.http import Api, ApiError, CliError, ConfigStore

ASYNC = {"Prefer": "respond-async"}


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


def positional(name: str, label: str, default_env: str | None = None) -> Callable[[Any], Any]:
    """An optional positional argument, asked for when missing (see :func:`need`).

    Click resolves missing arguments in the order they are declared, so a command asks for its
    values in its positional order, as the original CLI did.
    """

    def resolve(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
        return need(value, label, default_env)

    return click.argument(name, required=False, callback=resolve)


#: The TENANT positional of every tenant-scoped command: the argument, else DEFAULT_TENANT_NAME, else a prompt.
tenant_argument = positional("tenant", "tenant name", "DEFAULT_TENANT_NAME")


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
