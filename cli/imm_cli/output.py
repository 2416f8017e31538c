"""Showing answers: the server's JSON exactly as sent (scripts grep it), or a table for people.

JSON mode prints the response body byte for byte (the server renders Python-default separators, so
``{"endpoints": []}`` stays greppable as with the original). Table mode finds the rows in the usual
answer shapes: a list (``GET /servings``), an object holding one list (``{"tenants": [...]}``,
``{"endpoints": [...]}``, ``{"models": [...]}``, ``{"tasks": [...]}``), or else one object shown as
field / value pairs.
"""

from __future__ import annotations

import json
from typing import IO, Any

from rich.console import Console
from rich.table import Table

FORMATS = ("json", "table")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def rows_of(data: Any) -> tuple[str | None, list[Any]] | None:
    """``(title, rows)`` when ``data`` is a collection, else None (then it is shown as one object)."""
    if isinstance(data, list):
        return None, data
    if isinstance(data, dict) and len(data) == 1:
        ((key, value),) = data.items()
        if isinstance(value, list):
            return key, value
    return None


def table_of(data: Any) -> Table:
    """A rich Table for an answer's ``data``."""
    collection = rows_of(data)
    if collection is not None:
        title, rows = collection
        table = Table(title=title, title_justify="left")
        if rows and all(isinstance(row, dict) for row in rows):
            columns: list[str] = []
            for row in rows:
                columns.extend(key for key in row if key not in columns)
            for column in columns:
                table.add_column(column)
            for row in rows:
                table.add_row(*(_cell(row.get(column)) for column in columns))
        else:
            table.add_column(_singular(title) if title else "name")
            for row in rows:
                table.add_row(_cell(row))
        return table
    table = Table(show_header=True)
    table.add_column("field")
    table.add_column("value")
    if isinstance(data, dict):
        for key, value in data.items():
            table.add_row(str(key), _cell(value))
    else:
        table.add_row("value", _cell(data))
    return table


def _singular(title: str) -> str:
    return title[:-1] if title.endswith("s") else title


def emit(body: str, fmt: str, stream: IO[str]) -> None:
    """Print an answer body in the chosen format."""
    if fmt == "table":
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and "data" in parsed:
            console = Console(file=stream, soft_wrap=False)
            console.print(table_of(parsed["data"]))
            return
    text = body.rstrip("\n")
    stream.write(text + "\n")


def emit_data(data: Any, fmt: str, stream: IO[str]) -> None:
    """Print a value the CLI made itself (not an API body), as JSON with the server's separators."""
    if fmt == "table":
        Console(file=stream, soft_wrap=False).print(table_of(data))
        return
    stream.write(json.dumps(data) + "\n")
