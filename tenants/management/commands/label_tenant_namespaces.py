"""``python manage.py label_tenant_namespaces``: bring the labels of tenants made before this release up to date.

Two kinds of labels, both set by provisioning on new tenants (``tenants.manifests.namespace``):

* the Pod Security labels (``pod-security.kubernetes.io/enforce: restricted`` and its siblings, see
  ``tenants.manifests.POD_SECURITY_LABELS``);
* the scope group labels (``group.imm.ai.intel.com/<digest of the group>: member``, one per group of the
  namespace's ``imm.ai.intel.com/scope`` annotation, see ``tenants.manifests.group_label``) and their
  marker ``imm.ai.intel.com/group-labels``, which members' ``GET /tenants`` selects on. While any tenant
  lacks the marker, members' lists fall back to reading every tenant namespace (``tenants.selectors``):
  nothing is hidden, but a page costs more as tenants grow, until this command has run. Group labels of
  groups no longer in the scope are removed.

The command brings every existing tenant namespace (labelled ``created_by=<PLATFORM_ADMIN_LABEL>``), or only
the tenants named, to those labels. It is idempotent: a namespace already labelled is left alone, so it can
(and should) run on every upgrade.

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
from tenants.selectors import scope_of_annotations


def missing_labels(namespace: dict[str, Any]) -> dict[str, str]:
    """The Pod Security labels this namespace lacks or has with another value."""
    labels = namespace.get("metadata", {}).get("labels") or {}
    return {key: value for key, value in manifests.POD_SECURITY_LABELS.items() if labels.get(key) != value}


def labels_patch(namespace: dict[str, Any]) -> dict[str, str | None]:
    """The merge patch of ``metadata.labels`` this namespace needs: the missing Pod Security labels, the
    group labels of its scope annotation it lacks, and None for group labels of groups not in the scope.
    Empty when the namespace is up to date."""
    metadata = namespace.get("metadata") or {}
    scope = scope_of_annotations(metadata.get("annotations"))
    return {**missing_labels(namespace), **manifests.group_labels_patch(metadata.get("labels"), scope)}


class Command(BaseCommand):
    help = (
        "Label every tenant namespace with Pod Security Admission enforce=restricted and its scope groups (idempotent)."
    )

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
                labels = labels_patch(namespace)
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
            f"{len(tenants)} tenant namespaces, {changed} {verb}, {len(tenants) - changed} already up to date"
        )
