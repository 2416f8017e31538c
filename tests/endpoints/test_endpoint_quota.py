"""maxEndpoints under contention (issue 22): a refused create never costs the tenant a slot.

The API server charges the tenant's ResourceQuota (``count/inference-endpoints.ai.intel.com``) when
it admits a create and keeps the charge when the store then refuses the object (the name exists),
until the quota controller recounts (5 minutes by default, and the devstack keeps the default). The
API never sends a create for an existing name and checks every "quantity limit" refusal against the
endpoints that exist (docs/endpoint-quota.md). These tests run against the devstack's real API
server and controller manager, so the charges are the real ones.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devstack.chart_e2e import Probe, access_allowed
from devstack.layout import MANAGEMENT_USER
from tenants.manifests import ENDPOINT_COUNT_KEY
from tests.endpoints.conftest import Platform
from tests.inference_endpoints import GROUP, PLURAL, VERSION
from tests.platform_admin import remove_tenant, team_a_tenant_create
from tests.servings.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EXISTS = "Endpoint {} already exists"
LIMIT = "Endpoints have reached the quantity limit"


def create(platform: Platform, tenant: str, name: str) -> Any:
    body = {"endpointName": name, "modelName": "resnet", "subjectName": "client"}
    return platform.call("alice", "post", f"/tenants/{tenant}/endpoints", body)


def created(platform: Platform, tenant: str, name: str) -> None:
    response = create(platform, tenant, name)
    assert response.status_code == 200, response.content


def quota_used(platform: Platform, tenant: str) -> str:
    quota = client.CoreV1Api(platform.k8s).read_namespaced_resource_quota(tenant, tenant)
    return str((quota.status.used or {}).get(ENDPOINT_COUNT_KEY))


@pytest.fixture(scope="module")
def made(platform: Platform) -> Iterator[list[str]]:
    """The module's tenants, removed directly at the end (a deletion task per tenant takes ~20 s)."""
    names: list[str] = []
    yield names
    for name in names:
        remove_tenant(platform.env, name)


def quota_tenant(platform: Platform, made: list[str], limit: int, existing: int) -> str:
    """A team-a tenant ``q<hex>`` with ``maxEndpoints: limit``, counted by the quota controller,
    holding ``existing`` endpoints ``old-0``..."""
    tenant = f"q{uuid.uuid4().hex[:10]}"
    made.append(tenant)
    team_a_tenant_create(platform.k8s, platform.s3, tenant, "test", {"maxEndpoints": limit})
    wait_for(lambda: quota_used(platform, tenant) == "0", 60, interval=0.2, what="the quota controller's first count")
    for index in range(existing):
        created(platform, tenant, f"old-{index}")
    return tenant


def in_parallel(calls: list[Callable[[], Any]], delays: list[float] | None = None) -> list[Any]:
    """Run every call in its own thread, all released at once (each after its delay); their answers."""
    answers: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index: int) -> None:
        barrier.wait()
        if delays:
            time.sleep(delays[index])
        try:
            answers[index] = calls[index]()
        except Exception as exc:  # handed to the test's thread, which raises it
            answers[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(answer is not None for answer in answers), "a create did not answer within 120 s"
    for answer in answers:
        if isinstance(answer, Exception):
            raise answer
    return answers


def descriptions(answers: list[Any]) -> list[str]:
    return sorted(answer.json().get("description", "") if answer.status_code != 200 else "" for answer in answers)


# --- the bug of issue 22 ----------------------------------------------------------------------------
def test_a_refused_duplicate_costs_no_slot_sequential(platform, made):
    tenant = quota_tenant(platform, made, limit=3, existing=1)
    duplicate = create(platform, tenant, "old-0")
    assert duplicate.status_code == 409
    assert duplicate.json()["description"] == EXISTS.format("old-0")
    assert quota_used(platform, tenant) == "1"  # never sent, never charged
    created(platform, tenant, "second")
    created(platform, tenant, "third")
    refused = create(platform, tenant, "fourth")
    assert refused.status_code == 409
    assert refused.json()["description"] == LIMIT
    assert platform.crs(tenant) == ["old-0", "second", "third"]
    assert quota_used(platform, tenant) == "3"


def test_a_refused_duplicate_costs_no_slot_parallel(platform, made):
    """The issue's reproduction: after the duplicate, 6 parallel creates; two fit, four are refused."""
    tenant = quota_tenant(platform, made, limit=3, existing=1)
    assert create(platform, tenant, "old-0").status_code == 409
    answers = in_parallel([partial(create, platform, tenant, f"new-{index}") for index in range(6)])
    assert sorted(answer.status_code for answer in answers) == [200, 200, 409, 409, 409, 409]
    assert descriptions(answers) == ["", ""] + [LIMIT] * 4
    assert len(platform.crs(tenant)) == 3
    assert quota_used(platform, tenant) == "3"


def test_a_charge_leaked_by_a_create_outside_the_api_is_given_back(platform, made):
    """A create of an existing name sent straight to Kubernetes (``kubectl create``) leaks a charge
    the API cannot prevent; the next create through the API finds the count stale, corrects it and
    succeeds."""
    tenant = quota_tenant(platform, made, limit=2, existing=1)
    cr = platform.cr(tenant, "old-0")
    assert cr is not None
    again = {key: cr[key] for key in ("apiVersion", "kind", "spec")} | {"metadata": {"name": "old-0"}}
    with pytest.raises(ApiException) as refused:
        platform.custom().create_namespaced_custom_object(GROUP, VERSION, tenant, PLURAL, again)
    assert refused.value.status == 409
    # The premise: Kubernetes itself kept the charge of the refused create (1 endpoint, 2 charged).
    assert quota_used(platform, tenant) == "2"
    assert platform.crs(tenant) == ["old-0"]
    started = time.monotonic()
    created(platform, tenant, "second")
    assert time.monotonic() - started < 30, "the stale count was waited out instead of corrected"
    assert quota_used(platform, tenant) == "2"
    third = create(platform, tenant, "third")
    assert third.status_code == 409
    assert third.json()["description"] == LIMIT
    assert platform.crs(tenant) == ["old-0", "second"]


def test_parallel_creates_of_one_new_name_make_one_endpoint_and_leave_the_rest_usable(platform, made):
    """Parallel creates of the same new name can all pass the existence check; the losers' charges
    leak, and the creates of other names that follow still get every remaining slot."""
    tenant = quota_tenant(platform, made, limit=4, existing=0)
    twins = in_parallel([partial(create, platform, tenant, "twin")] * 5)
    assert sorted(answer.status_code for answer in twins) == [200, 409, 409, 409, 409]
    assert descriptions(twins) == [""] + [EXISTS.format("twin")] * 4
    for name in ("alpha", "beta", "gamma"):
        created(platform, tenant, name)
    refused = create(platform, tenant, "delta")
    assert refused.json()["description"] == LIMIT
    assert platform.crs(tenant) == ["alpha", "beta", "gamma", "twin"]


def test_only_the_management_api_may_correct_quota_usage(platform, made):
    """The correction needs a write to quota status; a tenant member holding it could lift their own
    limit. Asked of the live cluster's RBAC (SubjectAccessReview) in a real tenant."""
    tenant = quota_tenant(platform, made, limit=1, existing=0)
    usage = Probe("correct quota usage", True, "update", "resourcequotas", namespace=tenant, subresource="status")
    limits = Probe("change quota limits", False, "update", "resourcequotas", namespace=tenant)
    member = ("alice", ["team-a", "system:authenticated"])
    management = (MANAGEMENT_USER, ["system:authenticated"])
    assert access_allowed(platform.k8s, *member, Probe("read quota", True, "get", "resourcequotas", namespace=tenant))
    assert not access_allowed(platform.k8s, *member, usage)
    assert not access_allowed(platform.k8s, *member, limits)
    assert access_allowed(platform.k8s, *management, usage)
    assert not access_allowed(platform.k8s, *management, limits)


# --- the property: any interleaving ends with exactly min(N, L - existing) new endpoints --------------
@pytest.mark.parametrize("seed", range(1, 9))
def test_any_interleaving_creates_exactly_what_the_limit_allows(platform, made, seed):
    """N creates of new names and D duplicates (of existing names and of the new ones), released
    together in a random order with random start delays, against a limit L with E endpoints present:
    exactly min(N, L - E) new endpoints, every name at most once, a limit refusal only when the
    tenant is full, and afterwards the tenant can be filled to exactly L (no slot lost)."""
    rng = random.Random(seed)  # noqa: S311 -- reproducible interleavings, not secrets
    limit = rng.randint(2, 5)
    existing = rng.randint(0, limit - 1)
    new_names = [f"n{seed}-{index}" for index in range(rng.randint(1, 6))]
    tenant = quota_tenant(platform, made, limit, existing)
    duplicate_names = [f"old-{index}" for index in range(existing)] + new_names
    duplicates = [rng.choice(duplicate_names) for _ in range(rng.randint(1, 4))]
    names = new_names + duplicates
    rng.shuffle(names)
    delays = [rng.uniform(0, 0.05) for _ in names]
    case = f"seed={seed} L={limit} E={existing} names={names}"

    answers = in_parallel([partial(create, platform, tenant, name) for name in names], delays)

    room = limit - existing
    made = sorted(name for name, answer in zip(names, answers, strict=True) if answer.status_code == 200)
    assert len(made) == min(len(new_names), room), case
    assert len(set(made)) == len(made), case
    assert set(made) <= set(new_names), case
    for name, answer in zip(names, answers, strict=True):
        assert answer.status_code in (200, 409), (case, name, answer.content)
        if answer.status_code == 409:
            assert answer.json()["description"] in (EXISTS.format(name), LIMIT), (case, name, answer.content)
            if name.startswith("old-"):
                assert answer.json()["description"] == EXISTS.format(name), (case, name)
    if any(answer.status_code == 409 and answer.json()["description"] == LIMIT for answer in answers):
        assert len(platform.crs(tenant)) == limit, case
    assert platform.crs(tenant) == sorted([f"old-{index}" for index in range(existing)] + made), case

    # No slot was lost to a refused create: filling the tenant reaches exactly the limit.
    index = 0
    while True:
        answer = create(platform, tenant, f"fill-{index}")
        if answer.status_code != 200:
            assert answer.json()["description"] == LIMIT, (case, answer.content)
            break
        index += 1
        assert index <= limit, case
    assert len(platform.crs(tenant)) == limit, case
