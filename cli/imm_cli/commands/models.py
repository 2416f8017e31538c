"""Model commands: list, upload, import, extract, remove."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from imm_cli import output
from imm_cli.app import (
    MODEL_ALIASES,
    WAIT,
    State,
    cli,
    list_all,
    listing,
    operation,
    pass_state,
    positional,
    remove,
    resource,
    show,
    submit,
    tenant_argument,
)
from imm_cli.http import ApiError, CliError
from imm_cli.upload import DEFAULT_PART_MB, MAX_PART_MB, MIB, MIN_PART_MB, Options, Uploader


@resource(listing, "models", ("m", "model"))
@tenant_argument
@click.option("--grouped", is_flag=True, help="Models, their versions and files, sizes and serving endpoints.")
@pass_state
def list_models(state: State, tenant: str, grouped: bool) -> None:
    """TENANT: every model file in the tenant's bucket (--grouped: by model and version)."""
    params = {"view": "grouped"} if grouped else None
    show(state, list_all(state, f"/tenants/{tenant}/models", params))


@resource(listing, "versions", ("version",))
@tenant_argument
@pass_state
def list_versions(state: State, tenant: str) -> None:
    """TENANT: models with their versions (same as `ls m TENANT --grouped`)."""
    show(state, list_all(state, f"/tenants/{tenant}/models", {"view": "grouped"}))


import_ = operation("import", help="Import a model version from s3://<tenant>/<path> or an http(s) URL.")
extract = operation("extract", help="Unpack a tarball already in the bucket into a model version.")


@resource(import_, "model", MODEL_ALIASES)
@positional("model", "model name")
@positional("version", "model version")
@tenant_argument
@positional("source", "source (s3://tenant/path or https://...)")
@click.option("--path", help="Where under the version directory (default: the source's name).")
@WAIT
@pass_state
def import_model(
    state: State,
    model: str,
    version: str,
    tenant: str,
    source: str,
    path: str | None,
    wait: bool,
) -> None:
    """MODEL VERSION TENANT SOURCE: copy SOURCE into MODEL/VERSION on the server (a task)."""
    body: dict[str, Any] = {
        "modelName": model,
        "modelVersion": version_number(version),
        "source": source,
    }
    if path:
        body["path"] = path
    submit(state, "POST", f"/tenants/{tenant}/models/import", body=body, wait=wait)


@resource(extract, "model", MODEL_ALIASES)
@positional("model", "model name")
@positional("version", "model version")
@tenant_argument
@positional("archive", "archive key")
@click.option("--keep-archive", is_flag=True, help="Keep the tarball after unpacking.")
@WAIT
@pass_state
def extract_model(
    state: State,
    model: str,
    version: str,
    tenant: str,
    archive: str,
    keep_archive: bool,
    wait: bool,
) -> None:
    """MODEL VERSION TENANT ARCHIVE: unpack ARCHIVE (a key in the bucket) into MODEL/VERSION (a task)."""
    body: dict[str, Any] = {
        "modelName": model,
        "modelVersion": version_number(version),
        "archive": archive,
        "keepArchive": keep_archive,
    }
    submit(state, "POST", f"/tenants/{tenant}/models/extract", body=body, wait=wait)


def version_number(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise click.BadParameter(f"{raw!r} is not a whole number >= 1", param_hint="VERSION")
    return int(raw)


@resource(remove, "model", MODEL_ALIASES)
@positional("model", "model name")
@positional("version", "model version")
@tenant_argument
@click.option("--force", is_flag=True, help="Delete even if an endpoint serves this version.")
@pass_state
def remove_model(state: State, model: str, version: str, tenant: str, force: bool) -> None:
    """MODEL VERSION TENANT: delete one version of a model."""
    number = version_number(version)
    body: dict[str, Any] = {"modelName": model, "modelVersion": number}
    if force:
        body["force"] = True
    show(state, state.api().send("DELETE", f"/tenants/{tenant}/models", json_body=body).text)


@cli.command(name="upload")
@positional("path", "path")
@positional("model", "model name")
@positional("version", "model version")
@tenant_argument
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
    path: str,
    model: str,
    version: str,
    tenant: str,
    part: int,
    parallel: int,
    via_api: bool,
    restart: bool,
    progress: bool | None,
) -> None:
    """PATH MODEL VERSION TENANT: upload a file, a directory tree or a tarball as MODEL/VERSION."""
    source = Path(path)
    number = version_number(version)
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
