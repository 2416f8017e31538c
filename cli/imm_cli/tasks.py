"""Following long operations: ``GET /tasks/<id>`` until the task ends, with a progress bar.

The server's convention (docs/decisions/0003-operations-as-rows.md): a request sent with
``Prefer: respond-async`` answers ``202`` with ``data.task.url``; the task's ``progress`` (percent)
and ``steps`` tell how far it got.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from imm_cli.http import Api, CliError

FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "ROLLED_BACK"})
POLL_SECONDS = 0.5


def task_path(task: str) -> str:
    """``/tasks/<id>`` from an id or a task URL (relative or absolute)."""
    if "/tasks/" in task:
        return "/tasks/" + task.rstrip("/").rsplit("/tasks/", 1)[1]
    return f"/tasks/{task}"


def task_of_answer(answer: Any) -> dict[str, Any] | None:
    """The ``data.task`` of a 202 answer, if any."""
    if isinstance(answer, dict) and answer.get("status") == "ACCEPTED":
        task = answer.get("data", {}).get("task")
        if isinstance(task, dict):
            return task
    return None


def _current_step(task: dict[str, Any]) -> str:
    steps = task.get("steps") or []
    for step in steps:
        if isinstance(step, dict) and step.get("state") != "done":
            return str(step.get("name", ""))
    return str(steps[-1].get("name", "")) if steps and isinstance(steps[-1], dict) else ""


def follow(api: Api, task: str, *, progress: bool | None = None, timeout: float | None = None) -> dict[str, Any]:
    """Poll the task until it is final and return its last state; a bar on stderr when it is a terminal."""
    path = task_path(task)
    console = Console(stderr=True)
    show = console.is_terminal if progress is None else progress
    deadline = None if timeout is None else time.monotonic() + timeout
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[step]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not show,
        transient=False,
    ) as bar:
        bar_id = bar.add_task("task", total=100, step="")
        while True:
            answer = api.json("GET", path)
            record: dict[str, Any] = answer.get("data", {}) if isinstance(answer, dict) else {}
            description = f"{record.get('kind', 'task')} {record.get('target', '')}".strip()
            bar.update(
                bar_id,
                completed=record.get("progress") or 0,
                description=description,
                step=f"{record.get('state', '')} {_current_step(record)}".strip(),
            )
            if record.get("state") in FINAL_STATES:
                return record
            if deadline is not None and time.monotonic() > deadline:
                raise CliError(f"task {record.get('id', task)} still {record.get('state')} after {timeout} s")
            time.sleep(POLL_SECONDS)


def failure_message(record: dict[str, Any]) -> str:
    """One line for a failed task, from its error in the API's error shape."""
    error = record.get("error") or {}
    parts = [f"task {record.get('id', '')} {record.get('state', '').lower()}".strip()]
    if isinstance(error, dict):
        if error.get("title"):
            parts.append(str(error["title"]))
        if error.get("description"):
            parts.append(str(error["description"]))
        if error.get("code"):
            parts.append(f"[{error['code']}]")
    return ": ".join(parts[:3]) + (" " + parts[3] if len(parts) > 3 else "")


def print_hint(task: dict[str, Any]) -> None:
    print(f"imm: still running; follow it with `imm tasks watch {task.get('id', '')}`", file=sys.stderr)
