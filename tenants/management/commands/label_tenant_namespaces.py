"""``python manage.py label_tenant_namespaces``: give tenants made before this release the Pod Security labels.

New tenants get ``pod-security.kubernetes.io/enforce: restricted`` (and its siblings, see
``tenants.manifests.POD_SECURITY_LABELS``) when provisioning creates their namespace; this command
brings every existing tenant namespace (labelled ``created_by=<PLATFORM_ADMIN_LABEL>``) to the same
labels (or only the tenants named). It is idempotent: a namespace already labelled is left alone, so it
can run on every upgrade.

It needs ``patch`` on namespaces, which the management API's own identity does not have: run it with
a cluster administrator's kubeconfig (``--kubeconfig``, default ``$KUBECONFIG``). Pods already running
keep running (Pod Security Admission checks pods when they are created); pods the restricted profile
forbids are refused from then on, and the API server's warnings name them when the label is set.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from inferencemgmt import kube
from inferencemgmt.errors import ImmError
from tenants import manifests
from tenants.management import upgrade


def missing_labels(namespace: dict[str, Any]) -> dict[str, str]:
    """The Pod Security labels this namespace lacks or has with another value."""
    labels = namespace.get("metadata", {}).get("labels") or {}
    return {key: value for key, value in manifests.POD_SECURITY_LABELS.items() if labels.get(key) != value}


class Command(BaseCommand):
    help = "Label every tenant namespace with Pod Security Admission enforce=restricted (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        upgrade.add_arguments(parser, "patch namespaces")
        parser.add_argument("--as", dest="impersonate", default="", help="act as this user")
        parser.add_argument("--dry-run", action="store_true", help="only list the namespaces that would change")

    def handle(self, *args: Any, **options: Any) -> None:
        upgrade.require_kubeconfig(options)
        try:
            api_client = kube.own_api_client(
                options["kubeconfig"], context=options["context"] or None, impersonate=options["impersonate"] or None
            )
            changed = 0
            tenants = upgrade.tenant_namespaces(api_client, options["tenants"], "nothing labelled")
            for namespace in tenants:
                name = namespace["metadata"]["name"]
                labels = missing_labels(namespace)
                if not labels:
                    continue
                changed += 1
                if options["dry_run"]:
                    self.stdout.write(f"would label {name}: {labels}")
                    continue
                kube.call_json(
                    api_client,
                    "CoreV1Api",
                    "patch_namespace",
                    name,
                    {"metadata": {"labels": labels}},
                    _content_type="application/merge-patch+json",
                )
                self.stdout.write(f"labelled {name}")
        except ImmError as exc:
            raise upgrade.command_error(exc) from None
        verb = "would be labelled" if options["dry_run"] else "labelled"
        self.stdout.write(
            f"{len(tenants)} tenant namespaces, {changed} {verb}, {len(tenants) - changed} already enforce"
        )
