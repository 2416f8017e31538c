"""Console pages for endpoints: the tenant's live list, create, and one endpoint with its actions.

Every read and write is the API's selector or service, as the signed-in user, and forms are checked
by the API's serializers. Status changes show without a reload: the pages poll small HTML fragments
rendered by the same templates as the first paint.
"""

from __future__ import annotations

from typing import Any

import yaml
from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from rest_framework import serializers

from endpoints import selectors, services
from endpoints.api.serializers import (
    EndpointCreateSerializer,
    EndpointScaleSerializer,
    EndpointUpdateSerializer,
    endpoint_create_arguments,
    validate_traffic_query,
)
from endpoints.charts import traffic_charts
from endpoints.spec import DEFAULT_SERVING, DEFAULT_VERSION_POLICY, flatten_resources
from inferencemgmt.auth.identity import Identity
from inferencemgmt.digits import ascii_int
from inferencemgmt.errors import ImmError
from inferencemgmt.views import console_page, first_error, status_badge
from servings import selectors as serving_selectors


def parse_resources(text: str) -> dict[str, str]:
    """``requests.cpu=1`` lines as the API's flat resources map."""
    resources: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip():
            key, sep, value = line.partition("=")
            if not sep:
                raise forms.ValidationError(f"resources: '{line.strip()}' is not 'key=quantity'")
            resources[key.strip()] = value.strip()
    return resources


def _number_or_text(raw: str) -> int | str:
    """A form's text as the JSON the API would get: ASCII digits are a number, anything else stays
    text for the serializer to refuse in its own words (``'²' is not of type 'integer'``)."""
    number = ascii_int(raw)
    return raw if number is None else number


def _validated(serializer: serializers.Serializer[Any]) -> dict[str, Any]:
    try:
        serializer.is_valid(raise_exception=True)
    except serializers.ValidationError as error:
        raise forms.ValidationError(first_error(error.detail)) from None
    return dict(serializer.validated_data)


@console_page()
def endpoint_rows(request: HttpRequest, identity: Identity, tenant: str) -> HttpResponse:
    """The tenant page's endpoint table, polled for live status."""
    context = {
        "identity": identity,
        "tenant_name": tenant,
        **selectors.endpoint_rows_page(identity, tenant, request.GET),
    }
    response = render(request, "endpoints/_rows.html", context)
    response["Cache-Control"] = "no-store"
    return response


@console_page()
def endpoint_create(request: HttpRequest, identity: Identity, tenant: str) -> HttpResponse:
    values = {
        "endpointName": "",
        "modelName": "",
        "modelVersionPolicy": DEFAULT_VERSION_POLICY,
        "subjectName": "",
        "servingName": DEFAULT_SERVING,
        "replicas": "1",
        "resources": "",
    }
    error: str | None = None
    if request.method == "POST":
        values = {key: request.POST.get(key, "").strip() for key in values} | {
            "resources": request.POST.get("resources", "")
        }
        try:
            body: dict[str, Any] = {key: values[key] for key in ("endpointName", "modelName", "subjectName")}
            for key in ("modelVersionPolicy", "servingName"):
                if values[key]:
                    body[key] = values[key]
            if values["replicas"]:
                body["replicas"] = _number_or_text(values["replicas"])
            resources = parse_resources(values["resources"])
            if resources:
                body["resources"] = resources
            data = _validated(EndpointCreateSerializer(data=body, context={"tenant": tenant}))
            created = services.endpoint_create(identity, tenant, **endpoint_create_arguments(data))
        except forms.ValidationError as exc:
            error = exc.messages[0]
        except ImmError as exc:
            error = f"{exc.title}: {exc.description}" if exc.description else exc.title
        else:
            messages.success(request, f"Endpoint {data['endpointName']} created at {created['url']}.")
            if created.get("warning"):
                messages.warning(request, created["warning"])
            return redirect("console-endpoint", tenant=tenant, name=data["endpointName"])
    context = {
        "identity": identity,
        "tenant_name": tenant,
        "values": values,
        "servings": serving_selectors.serving_list(identity),
        "error": error,
    }
    return render(request, "endpoints/create.html", context, status=400 if error else 200)


def _status_context(identity: Identity, tenant: str, name: str) -> dict[str, Any]:
    view = selectors.endpoint_view(identity, tenant, name)
    shown = {
        "status": view["status"],
        "paused": view.get("paused", False),
        "reason": view.get("reason"),
        "message": view.get("message"),
        "replicas": view["replicas"],
        "pods": sorted((view.get("endpoint status") or {}).items()),
        "url": view["endpoint url"],
        "subject": view.get("subject name"),
        "conditions": view.get("conditions") or [],
        "protocol": view.get("protocol"),
        "autoscaling": view.get("autoscaling"),
    }
    return {
        "identity": identity,
        "tenant_name": tenant,
        "name": name,
        "view": shown,
        "badge": status_badge(view["status"]),
    }


@console_page()
def endpoint_status(request: HttpRequest, identity: Identity, tenant: str, name: str) -> HttpResponse:
    """The endpoint page's status block, polled for live status."""
    response = render(request, "endpoints/_status.html", _status_context(identity, tenant, name))
    response["Cache-Control"] = "no-store"
    return response


def _cr_yaml(cr: dict[str, Any]) -> str:
    """The CR as a person reads it: without the server's bookkeeping of field owners."""
    shown = {**cr, "metadata": {k: v for k, v in cr.get("metadata", {}).items() if k != "managedFields"}}
    return yaml.safe_dump(shown, sort_keys=False, default_flow_style=False)


@console_page()
def endpoint_detail(request: HttpRequest, identity: Identity, tenant: str, name: str) -> HttpResponse:
    return _detail_page(request, identity, tenant, name)


def _detail_page(request: HttpRequest, identity: Identity, tenant: str, name: str, status: int = 200) -> HttpResponse:
    context = _status_context(identity, tenant, name)
    cr = selectors.endpoint_cr(identity, tenant, name)
    spec = cr.get("spec") or {}
    resources = flatten_resources(spec.get("resources"))
    context.update(
        {
            "cr_yaml": _cr_yaml(cr),
            "spec": spec,
            "replicas": spec.get("replicas", 1),
            "resources_text": "\n".join(f"{key}={value}" for key, value in resources.items()),
            "events": selectors.endpoint_events(identity, tenant, name),
            **_traffic_context(request, identity, tenant, name),
        }
    )
    return render(request, "endpoints/detail.html", context, status=status)


TRAFFIC_RANGES = ("15m", "1h", "6h", "24h", "7d")


def _traffic_context(request: HttpRequest, identity: Identity, tenant: str, name: str) -> dict[str, Any]:
    """The traffic charts, or why there are none: the page itself never fails for want of metrics."""
    chosen = request.GET.get("range", "1h")
    chosen = chosen if chosen in TRAFFIC_RANGES else "1h"
    context: dict[str, Any] = {"traffic_ranges": TRAFFIC_RANGES, "traffic_range": chosen, "traffic_charts": []}
    seconds, step = validate_traffic_query({"range": chosen})
    try:
        traffic = selectors.endpoint_traffic(identity, tenant, name, seconds=seconds, step=step)
    except ImmError as exc:
        if exc.status < 500:
            raise
        context["traffic_error"] = f"{exc.title}. {exc.description or ''}".strip()
        return context
    context["traffic_charts"] = traffic_charts(traffic)
    return context


@console_page()
def endpoint_action(request: HttpRequest, identity: Identity, tenant: str, name: str, action: str) -> HttpResponse:
    """scale / pause / resume / edit / delete, by POST; the outcome is a message on the next page."""
    if request.method != "POST":
        return redirect("console-endpoint", tenant=tenant, name=name)
    try:
        if action == "scale":
            raw = request.POST.get("replicas", "")
            replicas = _validated(EndpointScaleSerializer(data={"replicas": _number_or_text(raw)}))
            services.endpoint_scale(identity, tenant, name, replicas["replicas"])
            messages.success(request, f"Scaling {name} to {replicas['replicas']}.")
        elif action == "pause":
            services.endpoint_pause(identity, tenant, name)
            messages.success(request, f"Paused {name}: scaled to 0, its replica count remembered.")
        elif action == "resume":
            count = services.endpoint_resume(identity, tenant, name)
            messages.success(request, f"Resumed {name} with {count} replica{'s' if count != 1 else ''}.")
        elif action == "edit":
            changes: dict[str, Any] = {
                key: request.POST[key].strip()
                for key in ("modelName", "modelVersionPolicy", "subjectName")
                if request.POST.get(key, "").strip()
            }
            changes["resources"] = parse_resources(request.POST.get("resources", ""))
            data = _validated(EndpointUpdateSerializer(data=changes))
            services.endpoint_update(identity, tenant, name, data)
            messages.success(request, f"Saved {name}; the controller rolls its pods if the model changed.")
        elif action == "delete":
            services.endpoint_delete(identity, tenant, name)
            messages.success(request, f"Deleted endpoint {name}.")
            return redirect("console-tenant", name=tenant)
        else:
            messages.error(request, f"Unknown action {action}.")
    except forms.ValidationError as exc:
        # Input that was not accepted: the page again, saying why, as a 400 (nothing was changed).
        messages.error(request, exc.messages[0])
        return _detail_page(request, identity, tenant, name, status=400)
    except ImmError as exc:
        messages.error(request, f"{exc.title}: {exc.description}" if exc.description else exc.title)
    return redirect("console-endpoint", tenant=tenant, name=name)
