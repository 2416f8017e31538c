"""``python manage.py migrate_tenant_credentials``: give tenants made before issue 18 their own store key.

Tenants made before this release hold the platform's own S3 key in their ``minio-access-info`` secret.
This command gives each tenant namespace (labelled ``created_by=<PLATFORM_ADMIN_LABEL>``, or only the
tenants named) its own store identity (read and list of its bucket only, named ``imm-tenant-<name>``)
and rewrites the secret with that identity's key. A tenant whose secret already holds a key of its
identity is left alone, so the command can run on every upgrade.

Reading the old secret needs a cluster administrator's kubeconfig (``--kubeconfig``, default
``$KUBECONFIG``): the management API's own identity reads no tenant secrets. Serving pods that are
already running keep the key they started with until they are restarted; the platform's key must then
be rotated, because those pods had it (README, "Tenant object-store credentials").
"""

from __future__ import annotations

import base64
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inferencemgmt import kube, objectstore
from inferencemgmt.errors import ImmError, NotFound
from tenants import manifests
from tenants.management import upgrade
from tenants.provisioning import store_secret_body


def secret_key_id(secret: dict[str, Any] | None) -> str:
    """The access key id a tenant's access secret holds ("" when none)."""
    raw = ((secret or {}).get("data") or {}).get("minio.access_key_id", "")
    return base64.b64decode(raw).decode() if raw else ""


class Command(BaseCommand):
    help = "Give every tenant its own read-only object-store identity and put its key in the tenant's secret."

    def add_arguments(self, parser: CommandParser) -> None:
        upgrade.add_arguments(parser, "read and write secrets in tenant namespaces")
        parser.add_argument("--dry-run", action="store_true", help="only list the tenants that would change")

    def handle(self, *args: Any, **options: Any) -> None:
        upgrade.require_kubeconfig(options)
        if not objectstore.identities_enabled():
            raise CommandError("IMM_STORE_IDENTITY_BACKEND is `none`: the store makes no tenant identities")
        try:
            api_client = kube.own_api_client(options["kubeconfig"], context=options["context"] or None)
            namespaces = upgrade.tenant_namespaces(api_client, options["tenants"], "nothing migrated")
            tenants = [ns["metadata"]["name"] for ns in namespaces]
            changed = 0
            for name in tenants:
                if self._migrated(api_client, name):
                    continue
                changed += 1
                if options["dry_run"]:
                    self.stdout.write(f"would migrate {name}")
                    continue
                objectstore.tenant_identity_ensure(name)
                body = store_secret_body(name)
                try:
                    kube.call_json(
                        api_client, "CoreV1Api", "replace_namespaced_secret", manifests.STORE_SECRET, name, body
                    )
                except NotFound:
                    kube.call_json(api_client, "CoreV1Api", "create_namespaced_secret", name, body)
                self.stdout.write(f"migrated {name}: identity {objectstore.tenant_identity_name(name)}")
        except ImmError as exc:
            raise upgrade.command_error(exc) from None
        verb = "would be migrated" if options["dry_run"] else "migrated"
        kept = len(tenants) - changed
        self.stdout.write(f"{len(tenants)} tenants, {changed} {verb}, {kept} already had their own key")

    def _migrated(self, api_client: Any, name: str) -> bool:
        """Whether the tenant's secret already holds a key of the tenant's own identity."""
        try:
            secret = kube.call_json(api_client, "CoreV1Api", "read_namespaced_secret", manifests.STORE_SECRET, name)
        except NotFound:
            return False
        key_id = secret_key_id(secret)
        return bool(key_id) and key_id in objectstore.tenant_keys(name)
