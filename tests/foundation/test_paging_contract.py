"""The paging contract on every list route, live (docs/api-conventions.md "Lists and paging").

For each list: the first page holds at most ``limit`` items and a ``continue``; following the
tokens gives every item exactly once, in order, and the last page has no ``continue``; an altered
token, a token of another list and a bad ``limit`` are each a 400 in the one error shape.

Two tenants of team-a are made through POST /tenants (by a Celery worker of the module's own, on a
Redis database of its own); endpoints are written straight to the cluster with the platform
identity (no controller runs, so no Deployment is made: the list shows them ``pending``), robots
through the API, model files straight into the bucket.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.test import override_settings
from kubernetes import client, config

from tests.conftest import WorkerPool, _test_database_url, use_broker
from tests.endpoints.conftest import Platform, apply_management_api_rbac, platform_values
from tests.inference_endpoints import GROUP, PLURAL, VERSION, endpoint_body
from tests.platform_admin import admin_s3_client
from tests.tenants.test_tenants_api import CERT

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PAGING_REDIS_DB = 9


@pytest.fixture(scope="module")
def platform(
    devstack_env: dict[str, str],
    user_token: Callable[[str], str],
    django_db_setup: Any,
    django_db_blocker: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Platform]:
    broker = devstack_env["REDIS_URL"].rsplit("/", 1)[0] + f"/{PAGING_REDIS_DB}"
    with override_settings(**platform_values(devstack_env)), django_db_blocker.unblock():
        previous_broker = use_broker(broker)
        env = {
            **os.environ,
            **devstack_env,
            "DJANGO_SETTINGS_MODULE": "inferencemgmt.settings",
            "DJANGO_DEBUG": "true",
            "DATABASE_URL": _test_database_url(),
            "REDIS_URL": broker,
        }
        pool = WorkerPool(env, tmp_path_factory.mktemp("paging-workers"))
        pool.start("paging")
        found = Platform(
            env=devstack_env,
            token=user_token,
            k8s=config.new_client_from_config(devstack_env["KUBECONFIG"]),
            s3=admin_s3_client(devstack_env),
        )
        apply_management_api_rbac(found.k8s)
        try:
            yield found
        finally:
            found.cleanup()
            pool.stop_all()
            use_broker(previous_broker)


def tenant_made(platform: Platform) -> str:
    """A team-a tenant through POST /tenants; on a busy machine the create may outlive the route's wait
    (202), and its task is then followed to the end."""
    name = f"pg{uuid.uuid4().hex[:10]}"
    platform.tenants.append(name)
    created = platform.call(
        "admin", "post", "/tenants", {"name": name, "cert": CERT, "scope": "team-a", "quota": {"maxEndpoints": 20}}
    )
    if created.status_code == 202:
        url = created.json()["data"]["task"]["url"]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            state = platform.call("admin", "get", url).json()["data"]["state"]
            if state not in ("PENDING", "RUNNING"):
                break
            time.sleep(0.5)
        assert state == "SUCCEEDED", platform.call("admin", "get", url).content
        return name
    assert created.status_code == 200, created.content
    return name


@pytest.fixture(scope="module")
def tenants(platform: Platform) -> list[str]:
    return sorted([tenant_made(platform), tenant_made(platform)])


def altered(token: str) -> str:
    """The token with its last character changed (a flipped signature bit)."""
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def items_of(answer: dict[str, Any], key: str | None) -> list[Any]:
    return list(answer["data"] if key is None else answer["data"][key])


def walk(platform: Platform, user: str, path: str, key: str | None, limit: int) -> tuple[list[list[Any]], list[str]]:
    """Every page of ``path`` at ``limit``: the pages' items and the tokens that led to them."""
    separator = "&" if "?" in path else "?"
    pages: list[list[Any]] = []
    tokens: list[str] = []
    url = f"{path}{separator}limit={limit}"
    for _ in range(1000):
        answer = platform.call(user, "get", url)
        assert answer.status_code == 200, answer.content
        body = answer.json()
        assert set(body) <= {"status", "data", "continue"}
        assert body["status"] == "OK"
        page = items_of(body, key)
        assert len(page) <= limit
        pages.append(page)
        if "continue" not in body:
            return pages, tokens
        token = body["continue"]
        assert isinstance(token, str)
        assert token
        tokens.append(token)
        url = f"{path}{separator}limit={limit}&continue={quote(token)}"
    raise AssertionError(f"{path} never ended")


def assert_contract(
    platform: Platform,
    user: str,
    path: str,
    key: str | None,
    name: Callable[[Any], str],
    expected: list[str],
    maximum: int = 500,
) -> str:
    """First page, continuation, end, and the 400s; returns a token of this list for cross-checks."""
    pages, tokens = walk(platform, user, path, key, limit=1)
    names = [name(item) for page in pages for item in page]
    assert len(names) == len(set(names)), f"{path}: an item came twice: {names}"
    for wanted in expected:
        assert wanted in names, f"{path}: {wanted} missing from {names}"
    mine = [found for found in names if found in expected]
    assert mine == sorted(mine)
    assert tokens, f"{path}: more items than the limit gave no continue"
    # The same list in one page of the maximum: the same items (nothing lost in the paging).
    whole, _ = walk(platform, user, path, key, limit=maximum)
    assert sorted(names) == sorted(name(item) for page in whole for item in page)
    # Tampered, foreign and malformed tokens; bad limits: a 400 in the one error shape, every time.
    separator = "&" if "?" in path else "?"
    for bad in (altered(tokens[0]), "x" + tokens[0], "garbage", "A" * 5000):
        refused = platform.call(user, "get", f"{path}{separator}continue={quote(bad)}")
        assert refused.status_code == 400, (path, refused.content)
        assert refused.json() == {
            "title": "Invalid continue token",
            "description": refused.json()["description"],
            "code": "invalid_continue",
        }
    for limit in ("0", str(maximum + 1), "-1", "1.5", "abc", "%C2%B2"):
        refused = platform.call(user, "get", f"{path}{separator}limit={limit}")
        assert refused.status_code == 400, (path, limit, refused.content)
        assert refused.json()["code"] == "validation_failed"
        assert refused.json()["description"] == f"limit: must be an integer from 1 to {maximum}"
    return tokens[0]


def test_tenants_page_for_admins_and_members(platform, tenants):
    admin_token = assert_contract(platform, "admin", "/tenants", "tenants", str, tenants)
    member_token = assert_contract(platform, "alice", "/tenants", "tenants", str, tenants)
    bob = [name for page in walk(platform, "bob", "/tenants", "tenants", 500)[0] for name in page]
    assert not set(tenants) & set(bob)
    # A token is bound to its caller: alice cannot continue the admin's walk, nor bob alice's.
    assert platform.call("alice", "get", f"/tenants?continue={quote(admin_token)}").status_code == 400
    assert platform.call("bob", "get", f"/tenants?continue={quote(member_token)}").status_code == 400


def test_tenants_page_of_a_member_of_two_groups_merges_them_each_tenant_once(platform, tenants):
    """carol (team-a and team-b) pages through one labelled list per group, merged by name: a tenant of
    both groups comes once, and the whole list is in name order."""
    both = tenants[1]
    changed = platform.call("admin", "patch", f"/tenants/{both}", {"scope": ["team-a", "team-b"]})
    assert changed.status_code == 200, changed.content
    try:
        carol_token = assert_contract(platform, "carol", "/tenants", "tenants", str, tenants)
        for limit in (1, 3, 500):
            names = [name for page in walk(platform, "carol", "/tenants", "tenants", limit)[0] for name in page]
            assert names == sorted(set(names)), f"limit {limit}: not in order or not once each"
            assert set(tenants) <= set(names)
        bob = [name for page in walk(platform, "bob", "/tenants", "tenants", 500)[0] for name in page]
        assert both in bob
        assert tenants[0] not in bob
        assert platform.call("alice", "get", f"/tenants?continue={quote(carol_token)}").status_code == 400
    finally:
        restored = platform.call("admin", "patch", f"/tenants/{both}", {"scope": ["team-a"]})
        assert restored.status_code == 200, restored.content


def test_endpoints_page_with_one_list_of_their_deployments(platform, tenants):
    tenant = tenants[0]
    custom = client.CustomObjectsApi(platform.k8s)
    names = [f"pg-{index}-{uuid.uuid4().hex[:4]}" for index in range(3)]
    for name in names:
        custom.create_namespaced_custom_object(GROUP, VERSION, tenant, PLURAL, endpoint_body(name, replicas=0))
    token = assert_contract(
        platform, "alice", f"/tenants/{tenant}/endpoints", "endpoints", lambda item: item["name"], sorted(names)
    )
    first = platform.call("alice", "get", f"/tenants/{tenant}/endpoints?limit=1").json()["data"]["endpoints"][0]
    assert set(first) == {"name", "url", "status"}
    # A token of one tenant's list is refused on another tenant's, and on another route.
    assert platform.call("alice", "get", f"/tenants/{tenants[1]}/endpoints?continue={quote(token)}").status_code == 400
    assert platform.call("alice", "get", f"/tenants/{tenant}/robots?continue={quote(token)}").status_code == 400


def test_robots_page(platform, tenants):
    tenant = tenants[0]
    names = [f"bot-{index}" for index in range(3)]
    for name in names:
        made = platform.call("alice", "post", f"/tenants/{tenant}/robots", {"name": name, "description": "paging"})
        assert made.status_code == 200, made.content
    assert_contract(platform, "alice", f"/tenants/{tenant}/robots", "robots", lambda item: item["name"], names)


def test_models_page_as_files_and_grouped(platform, tenants):
    tenant = tenants[1]
    files = ["alpha/1/model.bin", "alpha/2/model.bin", "beta/1/model.bin", "gamma/1/a.bin", "gamma/1/b.bin"]
    for key in files:
        platform.s3.put_object(Bucket=tenant, Key=key, Body=b"weights")
    platform.s3.put_object(Bucket=tenant, Key="beta/2/", Body=b"")  # a directory marker: never listed
    assert_contract(platform, "alice", f"/tenants/{tenant}/models", "models", lambda item: item["path"], files)
    assert_contract(
        platform,
        "alice",
        f"/tenants/{tenant}/models?view=grouped",
        "models",
        lambda item: item["name"],
        ["alpha", "beta", "gamma"],
    )
    grouped = platform.call("alice", "get", f"/tenants/{tenant}/models?view=grouped&limit=1").json()
    assert [version["version"] for version in grouped["data"]["models"][0]["versions"]] == ["1", "2"]
    # The grouped view's token is not the files view's.
    refused = platform.call("alice", "get", f"/tenants/{tenant}/models?continue={quote(grouped['continue'])}")
    assert refused.status_code == 400


def test_servings_page(platform, tenants):
    every = platform.call("alice", "get", "/servings?limit=500").json()["data"]
    assert len(every) >= 2, "the devstack ships at least two serving templates"
    assert_contract(platform, "alice", "/servings", None, str, every)


def test_tasks_page_newest_first_with_filters_bound_to_the_token(platform, tenants):
    """Operation rows made here (the database is emptied between tests); two share a creation time,
    so the keyset's tie-break on the id is exercised."""
    from django.utils import timezone

    from inferencemgmt.operations.models import Operation

    kind = f"paging.t{uuid.uuid4().hex[:6]}"
    now = timezone.now()
    made = []
    for index, seconds in enumerate((30, 20, 20, 10, 0)):
        row = Operation.objects.create(kind=kind, target=f"t{index}", requested_by="alice@example.com")
        Operation.objects.filter(pk=row.pk).update(created_at=now - timedelta(seconds=seconds))
        made.append(str(row.pk))
    every = platform.call("admin", "get", f"/tasks?limit=200&kind={kind}").json()["data"]["tasks"]
    ids = [task["id"] for task in every]
    assert sorted(ids) == sorted(made)
    token = assert_contract(platform, "admin", f"/tasks?kind={kind}", "tasks", lambda item: item["id"], [], 200)
    pages, _ = walk(platform, "admin", f"/tasks?kind={kind}", "tasks", limit=2)
    walked = [task for page in pages for task in page]
    assert [task["id"] for task in walked] == ids  # newest first, the same order as one big page
    created = [task["created_at"] for task in walked]
    assert created == sorted(created, reverse=True)
    # The filters are part of what the token continues: another filter refuses it.
    assert platform.call("admin", "get", f"/tasks?continue={quote(token)}").status_code == 400
    assert platform.call("admin", "get", f"/tasks?kind={kind}&continue={quote(token)}").status_code == 200
    # alice sees her own rows (she requested them), with her own tokens.
    assert_contract(platform, "alice", f"/tasks?kind={kind}", "tasks", lambda item: item["id"], [], 200)
    # The documented maximum of this route (200).
    assert platform.call("admin", "get", "/tasks?limit=201").status_code == 400
    assert platform.call("admin", "get", "/tasks?limit=200").status_code == 200
