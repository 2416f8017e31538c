"""Console rules that need no platform: sign-in and admin gates, CSRF, headers, quota bars, escaping."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from inferencemgmt.auth.identity import SESSION_KEY
from inferencemgmt.quantities import quantity_value
from servings.views import highlight
from tenants.views import TenantCreateForm, quota_lines

pytestmark = [pytest.mark.unit, pytest.mark.django_db]


def signed_in(username: str, groups: list[str], *, csrf: bool = False) -> Client:
    """A browser whose session holds the identity the OIDC login would have stored."""
    client = Client(enforce_csrf_checks=csrf)
    user = get_user_model().objects.create_user(username=username)
    client.force_login(user)
    session = client.session
    session[SESSION_KEY] = {"username": username, "groups": groups}
    session.save()
    return client


@pytest.mark.parametrize(
    ("text", "value"),
    [("2", Decimal(2)), ("500m", Decimal("0.5")), ("4Gi", Decimal(4 * 2**30)), ("1k", Decimal(1000)), ("x", None)],
)
def test_quantities_become_numbers_for_the_bars(text: str, value: Decimal | None) -> None:
    assert quantity_value(text) == value


def test_quota_lines_compare_used_with_hard_and_name_the_endpoint_count() -> None:
    lines = quota_lines(
        {
            "hard": {"requests.memory": "4Gi", "count/inference-endpoints.ai.intel.com": "3"},
            "used": {"requests.memory": "1Gi", "count/inference-endpoints.ai.intel.com": "3"},
        }
    )
    assert [(line.label, line.percent) for line in lines] == [("Endpoints", 100), ("requests.memory", 25)]


def test_highlighting_escapes_the_template_text() -> None:
    html = str(highlight("kind: Deployment\nname: {{ name }}<script>alert(1)</script>"))
    assert '<span class="hl-key">kind</span>:' in html
    assert '<span class="hl-tag">{{ name }}</span>' in html
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_create_form_builds_the_api_body_with_the_certificate_in_base64() -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    form = TenantCreateForm(
        {"name": "team-x", "scope": "team-a, team-b", "max_endpoints": "2", "requests_cpu": "1",
         "extra_quota": "requests.nvidia.com/gpu=1"},
        {"cert": SimpleUploadedFile("ca.pem", b"PEM")},
    )  # fmt: skip
    assert form.is_valid(), form.errors
    assert form.api_body() == {
        "name": "team-x",
        "cert": "UEVN",
        "scope": ["team-a", "team-b"],
        "quota": {"maxEndpoints": 2, "requests.cpu": "1", "requests.nvidia.com/gpu": "1"},
    }


@pytest.mark.parametrize("path", ["/console/", "/console/tasks/", "/console/servings/", "/console/tenants/new/"])
def test_console_pages_send_anonymous_people_to_the_login(path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/oidc/authenticate/?next=")


def test_admin_pages_refuse_members_with_a_readable_page() -> None:
    response = signed_in("alice@example.com", ["team-a"]).get("/console/tenants/new/")
    assert response.status_code == 403
    assert b"Not allowed" in response.content
    assert b"platform administrators" in response.content


def test_admin_sees_the_create_form_with_security_headers() -> None:
    response = signed_in("admin@example.com", ["admin"]).get("/console/tenants/new/")
    assert response.status_code == 200
    assert b'name="cert"' in response.content
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_console_posts_need_the_csrf_token() -> None:
    client = signed_in("admin@example.com", ["admin"], csrf=True)
    assert client.post("/console/tenants/team-x/delete/").status_code == 403


def test_task_list_shows_only_my_tasks_and_filters(settings: Any) -> None:
    from inferencemgmt.operations.models import Operation

    Operation.objects.create(kind="tenants.provision", target="mine", requested_by="alice@example.com")
    Operation.objects.create(kind="tenants.delete", target="theirs", requested_by="bob@example.com")
    Operation.objects.create(kind="tenants.delete", target="mine-too", requested_by="alice@example.com", state="FAILED")
    client = signed_in("alice@example.com", ["team-a"])
    page = client.get("/console/tasks/").content.decode()
    assert "mine" in page
    assert "theirs" not in page
    failed = client.get("/console/tasks/?state=FAILED").content.decode()
    assert "mine-too" in failed
    assert ">mine<" not in failed


def test_swagger_page_keeps_its_own_policy() -> None:
    response = Client().get("/api/docs/")
    assert "cdn.jsdelivr.net" in response["Content-Security-Policy"]


def test_dashboard_is_one_page_of_names_and_each_card_explains_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """The page makes one list call (a page of names); each card's figures are a fragment that
    says when the tenant vanished meanwhile or cannot be read yet."""
    from inferencemgmt.errors import Forbidden, NotFound
    from tenants import selectors

    def tenant_get(identity: Any, name: str) -> dict[str, Any]:
        if name == "gone":
            raise NotFound(description="Tenant gone does not exist")
        if name == "locked":
            raise Forbidden(description="forbidden")
        return {"name": name, "scope": ["team-a"], "quota": {"hard": {}, "used": {}}, "endpoints": 2, "bucket": None}

    pages: list[Any] = []

    def tenant_page(identity: Any, page: Any) -> tuple[list[str], str | None]:
        pages.append(page)
        return ["gone", "locked", "open"], page.token({"k": "next"})

    monkeypatch.setattr(selectors, "tenant_page", tenant_page)
    monkeypatch.setattr(selectors, "tenant_get", tenant_get)
    monkeypatch.setattr(selectors, "known_tenant_name", lambda name: name)
    client = signed_in("alice@example.com", ["team-a"])
    page = client.get("/console/").content.decode()
    assert [p.limit for p in pages] == [24]
    for name in ("gone", "locked", "open"):
        assert f'id="tenant-{name}"' in page
        assert f'data-poll-url="/console/tenants/{name}/card/"' in page
    assert 'id="next-tenants"' in page
    assert "data-final" in client.get("/console/tenants/open/card/").content.decode()
    assert "2" in client.get("/console/tenants/open/card/").content.decode()
    assert "just deleted" in client.get("/console/tenants/gone/card/").content.decode()
    assert "access is being set up" in client.get("/console/tenants/locked/card/").content.decode()
    assert "banner error" not in client.get("/console/tenants/open/card/").content.decode()
    tampered = client.get("/console/?continue=not-a-token")
    assert tampered.status_code == 400


# Issue 17, finding 6: a non-ASCII digit in a console number field was a 500 (int("²")), and an
# Arabic-Indic digit was silently read as a number. Each is a form error, answered 400, nothing done.
NOT_ASCII_NUMBERS = ["\u00b2", "\u0661", "\uff12"]


@pytest.mark.parametrize("raw", NOT_ASCII_NUMBERS)
def test_tenant_form_refuses_a_non_ascii_number_with_a_400(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tenants import services

    monkeypatch.setattr(services, "tenant_create", _must_not_be_called)
    body = {"name": "team-x", "scope": "team-a", "max_endpoints": raw, "cert": SimpleUploadedFile("ca.pem", b"PEM")}
    response = signed_in("admin@example.com", ["admin"]).post("/console/tenants/new/", body)
    assert response.status_code == 400
    assert b"Enter a whole number." in response.content


def _must_not_be_called(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a refused form reached a service")


@pytest.mark.parametrize("raw", NOT_ASCII_NUMBERS)
def test_endpoint_create_form_refuses_a_non_ascii_replica_count_with_a_400(
    raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from endpoints import services
    from servings import selectors as serving_selectors

    monkeypatch.setattr(services, "endpoint_create", _must_not_be_called)
    monkeypatch.setattr(serving_selectors, "serving_list", lambda identity: ["default"])
    body = {"endpointName": "ep-1", "modelName": "resnet", "subjectName": "client", "replicas": raw}
    response = signed_in("alice@example.com", ["team-a"]).post("/console/tenants/team-a1/endpoints/new/", body)
    assert response.status_code == 400
    assert f"replicas: &#x27;{raw}&#x27; is not of type &#x27;integer&#x27;" in response.content.decode()


@pytest.mark.parametrize("raw", NOT_ASCII_NUMBERS)
def test_endpoint_scale_refuses_a_non_ascii_replica_count_with_a_400(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from endpoints import selectors, services

    view = {"status": "available", "replicas": 1, "endpoint url": "https://ep.example", "endpoint status": {}}
    monkeypatch.setattr(services, "endpoint_scale", _must_not_be_called)
    monkeypatch.setattr(selectors, "endpoint_view", lambda identity, tenant, name: view)
    monkeypatch.setattr(selectors, "endpoint_cr", lambda identity, tenant, name: {"spec": {"replicas": 1}})
    monkeypatch.setattr(selectors, "endpoint_events", lambda identity, tenant, name: [])
    # The page shown again draws traffic charts; without this it would ask the platform about team-a1.
    monkeypatch.setattr(
        selectors,
        "endpoint_traffic",
        lambda identity, tenant, name, **_: {"start": 0, "end": 0, "step": 60, "series": {}},
    )
    client = signed_in("alice@example.com", ["team-a"])
    response = client.post("/console/tenants/team-a1/endpoints/ep/scale/", {"replicas": raw})
    assert response.status_code == 400
    assert f"replicas: &#x27;{raw}&#x27; is not of type &#x27;integer&#x27;" in response.content.decode()


@pytest.mark.parametrize("query", ["kind=a%00b", "target=%00", "user=x%00", "state=a%0Ab"])
def test_task_filters_with_control_characters_are_a_400_page(query: str) -> None:
    """A NUL reached the database in the filters: an error (a 500) on PostgreSQL."""
    response = signed_in("admin@example.com", ["admin"]).get(f"/console/tasks/?{query}")
    assert response.status_code == 400
    assert b"Task filters cannot contain control characters." in response.content


def test_endpoint_status_block_says_how_to_call_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from endpoints import selectors

    protocol = {
        "name": "Open Inference Protocol (KServe V2)",
        "httpUrl": "http://ep.team-a1.svc:8080/v2/models/m/infer",
        "grpcAddress": "ep.team-a1.svc:8081",
        "grpcService": "inference.GRPCInferenceService",
        "exampleRequest": "curl -s -d '{\"inputs\": []}' http://ep.team-a1.svc:8080/v2/models/m/infer",
    }
    view = {"status": "available", "replicas": {}, "endpoint url": "ep", "endpoint status": {}, "protocol": protocol}
    monkeypatch.setattr(selectors, "endpoint_view", lambda identity, tenant, name: view)
    client = signed_in("alice@example.com", ["team-a"])
    page = client.get("/console/tenants/team-a1/endpoints/ep/status/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Open Inference Protocol (KServe V2)" in text
    assert '<code id="endpoint-http-url">http://ep.team-a1.svc:8080/v2/models/m/infer</code>' in text
    assert '<code id="endpoint-grpc-address">ep.team-a1.svc:8081</code>' in text
    # The example is shown as text (escaped), never as markup.
    assert "curl -s -d &#x27;{&quot;inputs&quot;: []}&#x27;" in text

    monkeypatch.setattr(selectors, "endpoint_view", lambda identity, tenant, name: {**view, "protocol": None})
    silent = client.get("/console/tenants/team-a1/endpoints/ep/status/")
    assert "endpoint-protocol" not in silent.content.decode()
