"""Serving-template commands: list, view, create, update, remove."""

from __future__ import annotations

from pathlib import Path

import click

from imm_cli.app import (
    SERVING_ALIASES,
    State,
    create,
    list_all,
    listing,
    pass_state,
    positional,
    remove,
    resource,
    show,
    update,
    view,
)


@resource(listing, "servings", ("s", "serving"))
@pass_state
def list_servings(state: State) -> None:
    """The serving templates endpoints can use."""
    show(state, list_all(state, "/servings"))


@resource(view, "serving", SERVING_ALIASES)
@positional("name", "serving name")
@pass_state
def view_serving(state: State, name: str) -> None:
    """NAME: the template files of a serving."""
    show(state, state.api().send("GET", f"/servings/{name}").text)


def serving_body(directory: str) -> dict[str, str]:
    """The template files (``*.tmpl``) of a directory, by file name, as the API takes them."""
    files = sorted(Path(directory).glob("*.tmpl"))
    if not files:
        raise click.BadParameter(f"{directory} holds no *.tmpl files", param_hint="--dir")
    return {file.name: file.read_text() for file in files}


@resource(create, "serving", SERVING_ALIASES)
@positional("name", "serving name")
@click.option("--dir", "directory", required=True, type=click.Path(exists=True, file_okay=False))
@pass_state
def create_serving(state: State, name: str, directory: str) -> None:
    """NAME --dir DIR: add a serving template (admins) from DIR/*.tmpl."""
    show(state, state.api().send("POST", f"/servings/{name}", json_body=serving_body(directory)).text)


@resource(update, "serving", SERVING_ALIASES)
@positional("name", "serving name")
@click.option("--dir", "directory", required=True, type=click.Path(exists=True, file_okay=False))
@pass_state
def update_serving(state: State, name: str, directory: str) -> None:
    """NAME --dir DIR: replace a serving template's files (admins)."""
    show(state, state.api().send("PUT", f"/servings/{name}", json_body=serving_body(directory)).text)


@resource(remove, "serving", SERVING_ALIASES)
@positional("name", "serving name")
@pass_state
def remove_serving(state: State, name: str) -> None:
    """NAME: delete a serving template no endpoint uses (admins)."""
    show(state, state.api().send("DELETE", f"/servings/{name}").text)
