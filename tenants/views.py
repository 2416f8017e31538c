"""Console pages for tenants: the dashboard, one tenant, and the admin's create and delete.

They call the same selectors and services as the `/tenants` API, as the signed-in user, and the
create form is checked by the API's own serializer, so the console cannot accept what the API refuses.
Creation and deletion are Operations: the page hands over to the task page, which follows them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from rest_framework import serializers

from endpoints import selectors as endpoint_selectors
from inferencemgmt import paging, resources
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import Forbidden, ImmError, NotFound
from inferencemgmt.quantities import quantity_value
from inferencemgmt.views import AsciiIntegerField, console_page, first_error
from models_store import selectors as model_selectors
from tenants import manifests, selectors, services
from tenants.api.serializers import TenantCreateSerializer
from usage.selectors import tenant_usage_context


@dataclass(frozen=True)
class QuotaLine:
    """One row of a tenant's quota: what is used of what is allowed, and the bar's fill."""

    resource: str
    used: str
    hard: str
    used_value: float
    hard_value: float

    @property
    def label(self) -> str:
        return "Endpoints" if self.resource == resources.QUOTA_COUNT_KEY else self.resource

    @property
    def percent(self) -> int:
        return min(100, int(100 * self.used_value / self.hard_value)) if self.hard_value > 0 else 0

    @property
    def high(self) -> float:
        return 0.8 * self.hard_value


def quota_lines(quota: dict[str, Any]) -> list[QuotaLine]:
    lines = []
    for resource, hard in sorted(quota.get("hard", {}).items()):
        used = quota.get("used", {}).get(resource, "0")
        hard_value, used_value = quantity_value(hard), quantity_value(used)
        lines.append(
            QuotaLine(
                resource=resource,
                used=str(used),
                hard=str(hard),
                used_value=float(used_value or 0),
                hard_value=float(hard_value or 0),
            )
        )
    return lines


def human_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _summary(identity: Identity, name: str) -> dict[str, Any] | None:
    """One dashboard card; a tenant that cannot be read shows why instead of hiding the rest.

    Tenants come and go between the list and the read: one deleted meanwhile is left out, and one
    whose access is still being set up (or was just removed) says so without alarming anyone.
    """
    try:
        tenant = selectors.tenant_get(identity, name)
    except NotFound:
        return None
    except Forbidden:
        return {"name": name, "unreadable": True}
    except ImmError as error:
        return {"name": name, "error": error}
    bucket = tenant.get("bucket")
    return {
        **tenant,
        "quota_lines": quota_lines(tenant["quota"]),
        "storage": human_bytes(bucket["bytes"]) if bucket else None,
    }


#: Tenant cards per dashboard page.
DASHBOARD_PAGE_SIZE = 24


@console_page()
def dashboard(request: HttpRequest, identity: Identity) -> HttpResponse:
    """One page of tenant cards: the page itself is one list call whatever the number of tenants.

    Each card's figures (quota, endpoint count, storage) take a few reads of that tenant, so they
    come as a fragment per card (``tenant_card``) fetched by the browser once the page is shown,
    never as calls per tenant before the first byte.
    """
    page = paging.page_request(request.GET, selectors.tenant_page_scope(identity), default=DASHBOARD_PAGE_SIZE)
    names, following = selectors.tenant_page(identity, page)
    context = {
        "identity": identity,
        "tenants": [{"name": name} for name in names],
        "following": following,
        "first_page": page.position is None,
    }
    return render(request, "tenants/dashboard.html", context)


@console_page()
def tenant_card(request: HttpRequest, identity: Identity, name: str) -> HttpResponse:
    """The figures of one dashboard card (a fragment; a tenant deleted meanwhile says so)."""
    summary = _summary(identity, selectors.known_tenant_name(name))
    response = render(request, "tenants/_card.html", {"tenant": summary or {"name": name, "gone": True}})
    response["Cache-Control"] = "no-store"
    return response


#: Models per page of the tenant page, and the query parameter of their continue token (the
#: endpoint table pages with ``continue``).
MODELS_PAGE_SIZE = 20
MODELS_CONTINUE = "models_continue"


@console_page()
def tenant_detail(request: HttpRequest, identity: Identity, name: str) -> HttpResponse:
    if len(name) > 63:
        raise selectors.tenant_not_found(name)
    tenant = selectors.tenant_get(identity, name)
    models: list[dict[str, Any]] = []
    models_following: str | None = None
    models_error: ImmError | None = None
    models_page = paging.page_request(
        {paging.CONTINUE_PARAMETER: request.GET.get(MODELS_CONTINUE)},
        model_selectors.model_page_scope(identity, name, "grouped"),
        default=MODELS_PAGE_SIZE,
    )
    try:
        models, models_following = model_selectors.model_grouped_page(identity, name, models_page)
    except ImmError as error:
        models_error = error  # the rest of the page is still worth showing
    for model in models:
        model["human_size"] = human_bytes(model["size"])
        for version in model["versions"]:
            version["human_size"] = human_bytes(version["size"])
            for item in version["files"]:
                item["human_size"] = human_bytes(item["size"])
    context = {
        **endpoint_selectors.endpoint_rows_page(identity, name, request.GET),
        "models_following": models_following,
        "tenant_name": name,
        "models": models,
        "models_error": models_error,
        "identity": identity,
        "tenant": tenant,
        "quota_lines": quota_lines(tenant["quota"]),
        "storage": human_bytes(tenant["bucket"]["bytes"]) if tenant.get("bucket") else None,
        # The caller may read the tenant (tenant_get above, as the caller): its usage is theirs to see.
        **tenant_usage_context(request.GET, name),
    }
    return render(request, "tenants/detail.html", context)


class TenantCreateForm(forms.Form):
    """The quota fields people set most, plus free-form extra lines; the API serializer decides validity."""

    name = forms.CharField(max_length=63, help_text="3-63 lower-case letters, digits and '-' (a DNS label).")
    scope = forms.CharField(help_text="Groups whose members may use the tenant, separated by commas.")
    cert = forms.FileField(
        label="CA certificate", help_text="PEM file of the CA that signs client certificates for the endpoints."
    )
    max_endpoints = AsciiIntegerField(label="Max endpoints", min_value=1, required=False)
    requests_cpu = forms.CharField(label="requests.cpu", required=False)
    requests_memory = forms.CharField(label="requests.memory", required=False)
    limits_cpu = forms.CharField(label="limits.cpu", required=False)
    limits_memory = forms.CharField(label="limits.memory", required=False)
    extra_quota = forms.CharField(
        label="Other quota",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One 'resource=quantity' per line, e.g. requests.nvidia.com/gpu=1.",
    )

    def tenant_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("name", "scope", "cert")]

    def quota_fields(self) -> list[forms.BoundField]:
        return [
            self[name] for name in ("max_endpoints", "requests_cpu", "requests_memory", "limits_cpu", "limits_memory")
        ]

    def api_body(self) -> dict[str, Any]:
        """The request body the API would receive for this form."""
        data = self.cleaned_data
        quota: dict[str, Any] = {}
        if data.get("max_endpoints") is not None:
            quota[manifests.MAX_ENDPOINTS] = data["max_endpoints"]
        for field, key in (
            ("requests_cpu", "requests.cpu"),
            ("requests_memory", "requests.memory"),
            ("limits_cpu", "limits.cpu"),
            ("limits_memory", "limits.memory"),
        ):
            if data.get(field, "").strip():
                quota[key] = data[field].strip()
        for line in data.get("extra_quota", "").splitlines():
            if line.strip():
                key, sep, value = line.partition("=")
                if not sep:
                    raise forms.ValidationError(f"Other quota: '{line.strip()}' is not 'resource=quantity'.")
                quota[key.strip()] = value.strip()
        upload = data["cert"]
        pem = upload.read(64 * 1024 + 1)
        if len(pem) > 64 * 1024:
            raise forms.ValidationError("The certificate file is larger than 64 KiB.")
        return {
            "name": data["name"].strip(),
            "cert": base64.b64encode(pem).decode("ascii"),
            "scope": [group.strip() for group in data["scope"].split(",") if group.strip()],
            "quota": quota,
        }


@console_page(admin_only=True)
def tenant_create(request: HttpRequest, identity: Identity) -> HttpResponse:
    form = TenantCreateForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            serializer = TenantCreateSerializer(data=form.api_body())
            serializer.is_valid(raise_exception=True)
            operation = services.tenant_create(identity, **serializer.validated_data)
        except forms.ValidationError as error:
            form.add_error(None, error)
        except serializers.ValidationError as error:
            form.add_error(None, first_error(error.detail))
        except ImmError as error:
            form.add_error(None, error.description or error.title)
        else:
            return redirect("console-task", operation_id=operation.pk)
    status = 400 if request.method == "POST" else 200  # a POST that gets here was not accepted
    return render(request, "tenants/create.html", {"identity": identity, "form": form}, status=status)


@console_page(admin_only=True)
def tenant_delete(request: HttpRequest, identity: Identity, name: str) -> HttpResponse:
    """POST only: the confirmation is asked on the tenant page before the form is sent."""
    if request.method != "POST":
        return redirect("console-tenant", name=name)
    operation = services.tenant_delete(identity, name=name)
    return redirect("console-task", operation_id=operation.pk)
