"""What the upgrade commands share: they run once per upgrade over existing tenant namespaces.

``label_tenant_namespaces`` and ``migrate_tenant_credentials`` both act with a cluster
administrator's kubeconfig (the management API's own identity may do neither), over every tenant
namespace or only the ones named, and refuse a name that is not a tenant before changing anything.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import CommandError, CommandParser

from inferencemgmt import kube
from inferencemgmt.errors import ImmError
from tenants.selectors import tenant_label_selector


def add_arguments(parser: CommandParser, kubeconfig_may: str) -> None:
    """The tenant names, the kubeconfig (``kubeconfig_may``: what it must allow), its context, dry run."""
    parser.add_argument("tenants", nargs="*", help="only these tenants (default: every tenant namespace)")
    parser.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG", ""),
        help=f"a kubeconfig allowed to {kubeconfig_may} (default $KUBECONFIG)",
    )
    parser.add_argument("--context", default="", help="kubeconfig context")


def require_kubeconfig(options: dict[str, Any]) -> None:
    if not options["kubeconfig"]:
        raise CommandError("no kubeconfig: pass --kubeconfig or set KUBECONFIG (a cluster administrator's)")


def tenant_namespaces(api_client: Any, wanted: list[str], nothing_done: str) -> list[dict[str, Any]]:
    """The tenant namespaces (all, or those in ``wanted``); a wanted name that is not one is refused."""
    listing = kube.call_json(api_client, "CoreV1Api", "list_namespace", label_selector=tenant_label_selector())
    namespaces: list[dict[str, Any]] = listing.get("items") or []
    if not wanted:
        return namespaces
    unknown = sorted(set(wanted) - {ns["metadata"]["name"] for ns in namespaces})
    if unknown:
        raise CommandError(f"not a tenant namespace: {', '.join(unknown)}; {nothing_done}")
    return [ns for ns in namespaces if ns["metadata"]["name"] in wanted]


def command_error(exc: ImmError) -> CommandError:
    """An upstream or domain error as the command's one-line failure."""
    return CommandError(f"{exc.title}: {exc.description or ''}".rstrip(": "))
