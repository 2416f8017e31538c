"""The ``imm`` command: ``imm [OPTIONS] OPERATION RESOURCE [ARGS]``, as the original bash CLI.

Operations and resources keep the original names, aliases and positional order (docs/compatibility.md):
``create|c``, ``remove|rm``, ``update|up``, ``scale|s``, ``list|ls``, ``view|v``, ``upload|u``,
``login``, ``logout``; resources ``tenant|t``, ``endpoint|e``, ``model|m``, ``serving|s``. New routes
get new pairs in the same grammar (``view tenant``, ``pause endpoint``, ``logs endpoint``, ...) and
``imm tasks list|view|watch``.

Exit codes: 0 success, 1 the API (or the identity provider) refused or failed, or a local problem
(message on stderr), 2 a usage error. Output: the server's JSON exactly as sent, or ``--output table``.
"""

from __future__ import annotations

import sys

import click

from imm_cli import config as cfg
from imm_cli.app import State, cli
from imm_cli.commands import endpoints, login, models, robots, servings, tasks, tenants
from imm_cli.http import ApiError, CliError

#: Importing the command modules registered their commands on the groups of ``imm_cli.app``.
COMMAND_MODULES = (tenants, endpoints, models, servings, tasks, robots, login)
__all__ = ["COMMAND_MODULES", "State", "cli", "entry", "main"]


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
