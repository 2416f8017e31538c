"""The audit trail with the Kubernetes chokepoint faked: one record per action with the right fields,
failures recorded with their outcome, the outcome of a started task settled once, members reading
only their tenants' records, limit/continue pages with an opaque token, no route that changes a
record, and the retention purge."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.admin.sites import site
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from audit import services
from audit.actions import ACTIONS, NOT_AUDITED
from audit.admin import AuditRecordAdmin
from audit.models import AuditRecord
from inferencemgmt.operations.models import Operation
from inferencemgmt.operations.services import operation_finished
from inferencemgmt.tests.kube_fakes import NamespaceJson, patch_kube
from tenants import manifests
from tenants.tests.test_robot_routes import TENANT, FakeCluster

pytestmark = [pytest.mark.unit, pytest.mark.django_db]
OTHER = "audit-other-u1"


class Cluster(FakeCluster, NamespaceJson):
    """The robot tenant (scope team-a) and another tenant (scope team-b), listable for membership."""

    def _namespace(self, name: str, scope: list[str]) -> dict[str, Any]:
        labels = {manifests.TENANT_OWNER_LABEL: django_settings.PLATFORM_ADMIN_LABEL}
        annotations = {manifests.SCOPE_ANNOTATION: json.dumps(scope)}
        return {"metadata": {"name": name, "labels": labels, "annotations": annotations}}

    def platform_namespaces(self, *, label_selector: str = "") -> dict[str, Any]:
        return {"items": [self._namespace(TENANT, ["team-a"]), self._namespace(OTHER, ["team-b"])], "metadata": {}}


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, issuer: Any) -> Cluster:
    fake = Cluster()
    patch_kube(monkeypatch, fake)
    return fake


def call(api: Any, issuer: Any, method: str, path: str, body: Any = None, *, who: str = "alice", **extra: Any) -> Any:
    groups = {"alice": ["team-a"], "bob": ["team-b"], "admin": ["admin"]}[who]
    token = issuer.mint(email=f"{who}@example.com", groups=groups)
    data = None if body is None else json.dumps(body)
    return getattr(api, method)(
        path, data=data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}", **extra
    )


# --- the table --------------------------------------------------------------------------------------
def _routes(patterns: list[Any]) -> list[URLPattern]:
    found: list[URLPattern] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace != "admin":
                found.extend(_routes(pattern.url_patterns))
        elif isinstance(pattern, URLPattern) and pattern.name:
            found.append(pattern)
    return found


def test_every_writing_api_route_is_audited_or_left_out_with_a_reason():
    missing = []
    names = set()
    for pattern in _routes(get_resolver().url_patterns):
        names.add(pattern.name)
        view_class = getattr(pattern.callback, "view_class", None)
        if view_class is None:
            continue
        for method in ("post", "put", "patch", "delete"):
            if not hasattr(view_class, method):
                continue
            key = (pattern.name, method.upper())
            if key not in NOT_AUDITED and (*key, "") not in ACTIONS:
                missing.append(key)
    assert missing == []
    # Every console and API route the table names exists (a renamed route would silently stop auditing).
    assert {route for route, _, _ in ACTIONS} - names == set()
    assert {"console-endpoint-action", "console-tenant-create", "robot-tokens", "endpoint-replicas"} <= names


# --- one record per action, with the right fields ---------------------------------------------------
def test_a_robot_creation_leaves_one_record_with_every_field(api, issuer, cluster):
    answer = call(
        api, issuer, "post", f"/tenants/{TENANT}/robots", {"name": "ci", "description": "CI"}, REMOTE_ADDR="10.1.2.3"
    )
    assert answer.status_code == 200, answer.content
    [record] = AuditRecord.objects.all()
    assert record.username == "alice@example.com"
    assert record.groups == ["team-a"]
    assert record.robot is False
    assert record.action == "robot.create"
    assert record.tenant == TENANT
    assert record.target == "ci"
    assert (record.method, record.route) == ("POST", "robot-list")
    assert (record.status_code, record.outcome, record.error) == (200, "SUCCEEDED", "")
    assert record.request_id == answer["X-Request-ID"]
    assert record.client_address == "10.1.2.3"
    assert record.operation_id is None
    assert timezone.now() - record.time < timedelta(minutes=1)


def test_a_failed_action_is_recorded_with_its_status_and_error_code(api, issuer, cluster):
    call(api, issuer, "post", f"/tenants/{TENANT}/robots", {"name": "ci", "description": "CI"})
    again = call(api, issuer, "post", f"/tenants/{TENANT}/robots", {"name": "ci", "description": "CI"})
    assert again.status_code == 409
    invalid = call(api, issuer, "post", f"/tenants/{TENANT}/robots", {"name": "Not A Name", "description": "x"})
    assert invalid.status_code == 400
    gone = call(api, issuer, "delete", f"/tenants/{TENANT}/robots/nobody")
    assert gone.status_code == 404
    records = list(
        AuditRecord.objects.order_by("id").values_list("action", "target", "status_code", "outcome", "error")
    )
    assert records == [
        ("robot.create", "ci", 200, "SUCCEEDED", ""),
        ("robot.create", "ci", 409, "FAILED", "robot_exists"),
        ("robot.create", "Not A Name", 400, "FAILED", "validation_failed"),
        ("robot.delete", "nobody", 404, "FAILED", "robot_not_found"),
    ]


def test_a_robot_is_recorded_as_itself(cluster, settings):
    from django.http import HttpResponse

    from audit.middleware import AuditMiddleware
    from inferencemgmt.auth.identity import identity_from_service_account

    robot = identity_from_service_account(f"system:serviceaccount:{TENANT}:ci")
    request = RequestFactory().post(f"/tenants/{TENANT}/endpoints/e1/pause")
    request.user = robot  # type: ignore[assignment]  # what DRF puts there for a robot
    request.resolver_match = get_resolver().resolve(request.path_info)

    def view(request: Any) -> Any:
        return HttpResponse(status=403)  # Kubernetes refused the robot

    middleware = AuditMiddleware(view)
    middleware.process_view(request, view, (), request.resolver_match.kwargs)
    assert middleware(request).status_code == 403
    [record] = AuditRecord.objects.all()
    assert (record.username, record.robot, record.action, record.tenant, record.target) == (
        f"system:serviceaccount:{TENANT}:ci",
        True,
        "endpoint.pause",
        TENANT,
        "e1",
    )
    assert record.groups == ["system:serviceaccounts", f"system:serviceaccounts:{TENANT}"]
    assert (record.status_code, record.outcome) == (403, "FAILED")


def test_reads_refused_sign_ins_and_unlisted_routes_leave_no_record(api, issuer, cluster):
    assert call(api, issuer, "get", f"/tenants/{TENANT}/robots").status_code == 200
    assert api.post(f"/tenants/{TENANT}/robots", data="{}", content_type="application/json").status_code == 401
    assert AuditRecord.objects.count() == 0


def test_the_client_address_is_the_proxys_view_only_when_proxies_are_trusted(api, issuer, cluster, settings):
    body = {"name": "ci", "description": "CI"}
    spoofed = {"REMOTE_ADDR": "10.0.0.9", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 192.0.2.7"}
    call(api, issuer, "post", f"/tenants/{TENANT}/robots", body, **spoofed)
    settings.IMM_TRUST_PROXY_HEADERS = True
    call(api, issuer, "post", f"/tenants/{TENANT}/robots", {**body, "name": "ci2"}, **spoofed)
    assert list(AuditRecord.objects.order_by("id").values_list("client_address", flat=True)) == [
        "10.0.0.9",
        "192.0.2.7",
    ]


# --- the outcome of a started task ------------------------------------------------------------------
def _entry(**overrides: Any) -> services.AuditEntry:
    fields: dict[str, Any] = {
        "time": timezone.now(),
        "username": "admin@example.com",
        "groups": ("admin",),
        "robot": False,
        "action": "tenant.delete",
        "tenant": TENANT,
        "target": TENANT,
        "method": "DELETE",
        "route": "tenant-detail",
        "status_code": 202,
        "error": "",
        "operation_ids": (),
        "request_id": "r1",
        "client_address": "127.0.0.1",
    }
    fields.update(overrides)
    return services.AuditEntry(**fields)


def test_a_202_record_is_pending_until_its_task_ends_then_settles_once():
    operation = Operation.objects.create(kind="tenants.delete", target=TENANT, requested_by="admin@example.com")
    record = services.audit_record(_entry(operation_ids=(operation.pk,)))
    assert record is not None
    assert record.outcome == "PENDING"
    operation_finished.send(Operation, operation_id=operation.pk, state="ROLLED_BACK")
    assert AuditRecord.objects.get().outcome == "ROLLED_BACK"
    operation_finished.send(Operation, operation_id=operation.pk, state="SUCCEEDED")
    assert AuditRecord.objects.get().outcome == "ROLLED_BACK"  # settled once, never rewritten


def test_a_task_that_ended_before_its_record_was_written_still_settles_it():
    operation = Operation.objects.create(
        kind="tenants.delete", target=TENANT, requested_by="admin@example.com", state="FAILED"
    )
    services.audit_record(_entry(operation_ids=(operation.pk,)))
    assert AuditRecord.objects.get().outcome == "FAILED"


def test_the_backstop_settles_records_whose_signal_was_lost():
    operation = Operation.objects.create(kind="tenants.delete", target=TENANT, requested_by="admin@example.com")
    services.audit_record(_entry(operation_ids=(operation.pk,)))
    Operation.objects.filter(pk=operation.pk).update(state="SUCCEEDED")
    assert services.audit_settle_pending() == 1
    assert AuditRecord.objects.get().outcome == "SUCCEEDED"


# --- append-only ------------------------------------------------------------------------------------
def test_no_route_changes_or_deletes_a_record(api, issuer, cluster):
    services.audit_record(_entry(status_code=200))
    before = list(AuditRecord.objects.values())
    for method in ("post", "put", "patch", "delete"):
        for path in ("/audit", "/audit/export", f"/audit/{before[0]['id']}"):
            answer = call(api, issuer, method, path, {"outcome": "SUCCEEDED"}, who="admin")
            assert answer.status_code in (404, 405), (method, path, answer.status_code)
            assert set(answer.json()) >= {"title", "code"}
    assert list(AuditRecord.objects.values()) == before


def test_a_stored_record_refuses_save_and_delete_and_the_admin_is_read_only(rf):
    record = services.audit_record(_entry(status_code=200))
    assert record is not None
    record.outcome = "FAILED"
    with pytest.raises(PermissionError):
        record.save()
    with pytest.raises(PermissionError):
        record.delete()
    admin = AuditRecordAdmin(AuditRecord, site)
    request = rf.get("/admin/")
    assert not admin.has_add_permission(request)
    assert not admin.has_change_permission(request, record)
    assert not admin.has_delete_permission(request, record)
    assert AuditRecord.objects.get().outcome == "SUCCEEDED"


def test_the_purge_removes_only_records_past_retention(settings):
    settings.IMM_AUDIT_RETENTION_DAYS = 30
    services.audit_record(_entry(status_code=200, time=timezone.now() - timedelta(days=31), request_id="old"))
    services.audit_record(_entry(status_code=200, time=timezone.now() - timedelta(days=29), request_id="kept"))
    assert services.audit_purge() == 1
    assert list(AuditRecord.objects.values_list("request_id", flat=True)) == ["kept"]


# --- reading ----------------------------------------------------------------------------------------
def _records() -> None:
    for index in range(6):
        services.audit_record(
            _entry(
                status_code=200,
                tenant=TENANT if index % 2 == 0 else OTHER,
                target=f"t{index}",
                time=timezone.now() - timedelta(minutes=10 - index),
                action="endpoint.scale" if index < 3 else "robot.create",
            )
        )
    services.audit_record(_entry(status_code=200, tenant="", action="serving.replace", target="triton"))


def test_admins_read_every_record_and_members_only_their_tenants(api, issuer, cluster):
    _records()
    everything = call(api, issuer, "get", "/audit", who="admin").json()["data"]["items"]
    assert len(everything) == 7
    alices = call(api, issuer, "get", "/audit").json()["data"]["items"]
    assert [item["target"] for item in alices] == ["t4", "t2", "t0"]
    assert {item["tenant"] for item in alices} == {TENANT}
    bobs = call(api, issuer, "get", "/audit", who="bob").json()["data"]["items"]
    assert {item["tenant"] for item in bobs} == {OTHER}
    refused = call(api, issuer, "get", f"/audit?tenant={OTHER}")
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    exported = call(api, issuer, "get", "/audit/export")
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert rows[0][:3] == ["id", "time", "user"]
    assert sorted(row[7] for row in rows[1:]) == ["t0", "t2", "t4"]


def test_filters_narrow_the_records(api, issuer, cluster):
    _records()
    scale = call(api, issuer, "get", "/audit?action=endpoint.scale", who="admin").json()["data"]["items"]
    assert [item["target"] for item in scale] == ["t2", "t1", "t0"]
    since = (timezone.now() - timedelta(minutes=6, seconds=30)).isoformat()
    recent = call(api, issuer, "get", "/audit", who="admin", QUERY_STRING="").json()
    assert len(recent["data"]["items"]) == 7
    window = api.get(
        "/audit",
        {"from": since, "tenant": TENANT},
        HTTP_AUTHORIZATION=f"Bearer {issuer.mint(email='admin@example.com', groups=['admin'])}",
    ).json()["data"]["items"]
    assert [item["target"] for item in window] == ["t4"]
    nobody = call(api, issuer, "get", "/audit?user=carol@example.com", who="admin").json()["data"]["items"]
    assert nobody == []


def test_pages_follow_an_opaque_token_and_a_tampered_one_is_refused(api, issuer, cluster):
    _records()
    seen: list[str] = []
    query = "/audit?limit=3"
    while True:
        page = call(api, issuer, "get", query, who="admin").json()["data"]
        seen.extend(item["target"] for item in page["items"])
        if page["continue"] is None:
            break
        token = page["continue"]
        query = f"/audit?limit=3&continue={token}"
    assert seen == ["triton", "t5", "t4", "t3", "t2", "t1", "t0"]
    first = call(api, issuer, "get", "/audit?limit=3", who="admin").json()["data"]["continue"]
    tampered = first[:-2] + ("AA" if not first.endswith("AA") else "BB")
    for bad in (f"/audit?limit=3&continue={tampered}", f"/audit?limit=3&action=robot.create&continue={first}"):
        answer = call(api, issuer, "get", bad, who="admin")
        assert answer.status_code == 400, bad
        assert answer.json()["code"] == "invalid_continue"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("tenant=Not_A_Tenant", "tenant"),
        ("action=endpoint.explode", "action"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=0001-01-01T00:00:00Z", "from"),
        ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("user=a%00b", "user"),
    ],
)
def test_bad_filters_are_400_in_the_one_error_shape(api, issuer, cluster, query, field):
    for path in ("/audit", "/audit/export"):
        if field == "limit" and path == "/audit/export":
            continue
        answer = call(api, issuer, "get", f"{path}?{query}", who="admin")
        assert answer.status_code == 400, (path, query)
        body = answer.json()
        assert body["code"] == "validation_failed"
        assert body["description"].startswith(f"{field}:")


def test_csv_cells_cannot_become_formulas(api, issuer, cluster):
    services.audit_record(_entry(status_code=200, target="=HYPERLINK(1)"))
    exported = call(api, issuer, "get", "/audit/export", who="admin")
    assert exported["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert rows[1][7] == "'=HYPERLINK(1)"


def test_unknown_operation_ids_and_non_final_states_change_nothing():
    services.audit_record(_entry(operation_ids=(uuid.uuid4(),)))
    assert services.audit_outcome_settle(uuid.uuid4(), "SUCCEEDED") == 0
    pending = AuditRecord.objects.get().operation_id
    assert pending is not None
    assert services.audit_outcome_settle(pending, "RUNNING") == 0
    assert AuditRecord.objects.get().outcome == "PENDING"
