"""The console side: a console action is recorded once with its outcome, the audit page filters and
pages, bad filters are a 400 page, the CSV link, and the admins' usage ranking."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditRecord
from tests.console.test_console_units import signed_in
from usage.models import UsageSample

pytestmark = [pytest.mark.unit, pytest.mark.django_db]


def _record(tenant: str, target: str, minutes_ago: int) -> None:
    AuditRecord(
        time=timezone.now() - timedelta(minutes=minutes_ago),
        username="alice@example.com",
        groups=["team-a"],
        action="endpoint.scale",
        tenant=tenant,
        target=target,
        method="PATCH",
        route="endpoint-replicas",
        status_code=200,
        outcome="SUCCEEDED",
        request_id=f"r-{target}",
    ).save()


def test_a_refused_console_action_is_recorded_once_as_failed():
    browser = signed_in("alice@example.com", ["team-a"])
    answer = browser.post("/console/tenants/some-tenant/delete/")
    assert answer.status_code == 403
    [record] = AuditRecord.objects.all()
    assert (record.username, record.action, record.tenant, record.route) == (
        "alice@example.com",
        "tenant.delete",
        "some-tenant",
        "console-tenant-delete",
    )
    assert (record.status_code, record.outcome) == (403, "FAILED")
    # A GET of the same route changes nothing and is not recorded.
    browser.get("/console/tenants/some-tenant/delete/")
    assert AuditRecord.objects.count() == 1


def test_the_audit_page_lists_filters_and_pages_for_admins():
    for index in range(60):
        _record("a-tenant", f"e{index}", 100 - index)
    browser = signed_in("admin@example.com", ["admin"])
    page = browser.get("/console/audit/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("<tr>") == 51  # the header and the first 50 records, newest first
    assert "e59" in html
    assert 'id="audit-older"' in html
    older = browser.get(
        "/console/audit/?"
        + html.split('id="audit-older"')[0].rsplit('href="?', 1)[1].split('"')[0].replace("&amp;", "&")
    )
    assert older.status_code == 200
    assert older.content.decode().count("<tr>") == 11
    filtered = browser.get("/console/audit/", {"user": "nobody"})
    assert "No record matches." in filtered.content.decode()
    exported = browser.get("/console/audit/export.csv", {"tenant": "a-tenant"})
    assert exported["Content-Type"].startswith("text/csv")
    assert len(b"".join(exported.streaming_content).decode().splitlines()) == 61  # type: ignore[attr-defined]


def test_bad_filters_are_a_400_page():
    browser = signed_in("admin@example.com", ["admin"])
    for query in ({"from": "yesterday"}, {"action": "x.y"}, {"continue": "forged"}):
        answer = browser.get("/console/audit/", query)
        assert answer.status_code == 400, query


def test_the_usage_ranking_is_for_admins():
    now = timezone.now()
    UsageSample.objects.create(time=now - timedelta(minutes=30), tenant="gpu-team", replicas=2, gpus=2)
    UsageSample.objects.create(time=now - timedelta(minutes=30), tenant="cpu-team", replicas=5, cpu_millicores=5000)
    page = signed_in("admin@example.com", ["admin"]).get("/console/usage/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.index("gpu-team") < html.index("cpu-team")
    assert signed_in("alice@example.com", ["team-a"]).get("/console/usage/").status_code == 403
