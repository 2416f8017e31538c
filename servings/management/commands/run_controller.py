"""``python manage.py run_controller``: the InferenceEndpoint controller as a long-running process.

It acts as its OWN identity (the kubeconfig given, by default ``IMM_KUBECONFIG``), never as a user:
it serves every tenant. Its rights are helm/imm/files/rbac/controller.yaml. ``--as`` lets an admin
kubeconfig stand in for the controller's certificate while keeping exactly the controller's rights
(the devstack and the integration tests use it until the devstack issues the controller a certificate).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import uuid
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from inferencemgmt import kube, metrics
from servings.controller.leader import LeaderElector
from servings.controller.loop import Controller
from servings.controller.reconciler import Reconciler, TemplateCache
from servings.controller.rendering import FIELD_MANAGER, Platform
from servings.controller.tenancy import TenantNamespaces
from tenants.selectors import is_tenant_labels, store_key_generation, tenant_label_selector


def platform_from_settings() -> Platform:
    """The global template values: domain, and S3 transport security from the endpoint URL's scheme."""
    https = urlparse(settings.S3_ENDPOINT_URL).scheme == "https"
    return Platform(
        domain=settings.PLATFORM_DOMAIN,
        s3_use_https=https,
        s3_verify_ssl=https,
        inference_port=int(getattr(settings, "INFERENCE_PORT", 443)),
        image_registry=settings.SERVING_IMAGE_REGISTRY,
        serving_images=dict(settings.SERVING_IMAGES),
    )


class Command(BaseCommand):
    help = "Run the InferenceEndpoint controller (leader-elected; safe to run more than one)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kubeconfig", default="", help="the controller's own kubeconfig (default IMM_KUBECONFIG)")
        parser.add_argument("--context", default="", help="kubeconfig context")
        parser.add_argument("--as", dest="impersonate", default="", help="act as this user (admin kubeconfig only)")
        parser.add_argument("--lease-namespace", default="imm-system")
        parser.add_argument("--lease-name", default=FIELD_MANAGER)
        parser.add_argument("--lease-seconds", type=int, default=15)
        parser.add_argument("--identity", default="", help="this candidate's name (default host_pid_random)")
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--resync-seconds", type=float, default=300.0, help="queue every endpoint again this often")
        parser.add_argument(
            "--reapply-seconds", type=float, default=3600.0, help="re-send an unchanged render this often (drift)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
        )
        kubeconfig = options["kubeconfig"] or settings.IMM_KUBECONFIG
        api_client = kube.own_api_client(
            kubeconfig, context=options["context"] or None, impersonate=options["impersonate"] or None
        )
        lease_seconds = options["lease_seconds"]
        identity = options["identity"] or f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        elector = LeaderElector(
            api_client,
            namespace=options["lease_namespace"],
            name=options["lease_name"],
            identity=identity,
            lease_seconds=lease_seconds,
            renew_deadline=lease_seconds * 2 / 3,
            retry_period=max(0.5, lease_seconds / 7.5),
        )
        templates = TemplateCache(api_client, settings.SERVING_TEMPLATES_NAMESPACE)
        reconciler = Reconciler(
            api_client,
            platform=platform_from_settings(),
            templates=templates,
            namespaces=TenantNamespaces(is_tenant_labels, tenant_label_selector(), store_key_generation),
            reapply_seconds=options["reapply_seconds"],
        )
        controller = Controller(
            api_client,
            reconciler=reconciler,
            elector=elector,
            templates_namespace=settings.SERVING_TEMPLATES_NAMESPACE,
            workers=options["workers"],
            resync_seconds=options["resync_seconds"],
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: controller.stop())
        if settings.IMM_METRICS_PORT:
            port = metrics.serve(settings.IMM_METRICS_PORT, settings.IMM_METRICS_ADDRESS)
            logging.getLogger(__name__).info("metrics on %s:%d", settings.IMM_METRICS_ADDRESS, port)
        code = controller.run()
        if code:
            sys.exit(code)
