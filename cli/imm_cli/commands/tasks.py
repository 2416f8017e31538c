"""Task commands: list, view, watch (long operations)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from imm_cli import output, tasks
from imm_cli.app import TIMEOUT, State, listing, operation, pass_state, resource, show, view
from imm_cli.http import CliError

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
