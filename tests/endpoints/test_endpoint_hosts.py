"""Two tenants can never serve the same inference host (issue 17, finding 5), on the live platform.

Tenant ``z-h<r>``'s endpoint ``svc`` and tenant ``h<r>``'s endpoint ``svc-z`` are both
``svc-z-h<r>.<domain>``. Alice (team-a) owns the first tenant, bob (team-b) the second: neither can
see the other's tenant, and the API refuses the second endpoint with 409 ``endpoint_host_taken``,
atomically under parallel creates, leaving no claim behind a failure, a deletion or a deleted tenant.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from kubernetes import client

from tests.endpoints.conftest import Platform
from tests.inference_endpoints import GROUP, PLURAL, VERSION, endpoint_body
from tests.tenants.test_tenants_api import CERT

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
CLAIM_LABEL = "ai.intel.com/inference-host"


def make_tenant(platform: Platform, name: str, scope: str, **quota: Any) -> str:
    platform.tenants.append(name)
    made = platform.call("admin", "post", "/tenants", {"name": name, "cert": CERT, "scope": scope, "quota": quota})
    assert made.status_code == 200, made.content
    return name


@pytest.fixture
def pair(platform: Platform) -> tuple[str, str]:
    """(alice's tenant ``z-h<r>``, bob's tenant ``h<r>``): endpoint ``svc`` of the first and ``svc-z``
    of the second share one host."""
    suffix = f"h{uuid.uuid4().hex[:8]}"
    return make_tenant(platform, f"z-{suffix}", "team-a", maxEndpoints=5), make_tenant(
        platform, suffix, "team-b", maxEndpoints=5
    )


def create(platform: Platform, user: str, tenant: str, name: str) -> Any:
    body = {"endpointName": name, "modelName": "resnet", "subjectName": "client"}
    return platform.call(user, "post", f"/tenants/{tenant}/endpoints", body)


def delete(platform: Platform, user: str, tenant: str, name: str) -> Any:
    return platform.call(user, "delete", f"/tenants/{tenant}/endpoints/{name}")


def claims(platform: Platform, tenant: str) -> dict[str, str]:
    """The host claims of ``tenant``'s endpoints: lease name -> holder."""
    leases = client.CoordinationV1Api(platform.k8s).list_namespaced_lease(
        platform.env["IMM_SYSTEM_NAMESPACE"], label_selector=f"{CLAIM_LABEL}=true,ai.intel.com/tenant={tenant}"
    )
    return {str(lease.metadata.name): str(lease.spec.holder_identity) for lease in leases.items}


def assert_host_taken(platform: Platform, answer: Any, host_label: str) -> None:
    assert answer.status_code == 409, answer.content
    error = answer.json()
    assert set(error) == {"title", "description", "code"}
    assert error["code"] == "endpoint_host_taken"
    assert f"{host_label}.{platform.env['PLATFORM_DOMAIN']}" in error["description"]


def test_a_host_used_by_another_tenants_endpoint_is_refused_and_freed_by_its_deletion(platform, pair):
    alices, bobs = pair
    label = f"svc-{alices}"
    assert create(platform, "bob", bobs, "svc-z").status_code == 200
    assert claims(platform, bobs) == {f"inference-host.{label}": f"{bobs}/svc-z"}

    assert_host_taken(platform, create(platform, "alice", alices, "svc"), label)
    assert platform.crs(alices) == []
    assert claims(platform, alices) == {}

    assert delete(platform, "bob", bobs, "svc-z").status_code == 200
    assert claims(platform, bobs) == {}
    assert create(platform, "alice", alices, "svc").status_code == 200
    assert_host_taken(platform, create(platform, "bob", bobs, "svc-z"), label)
    assert platform.crs(bobs) == []


def test_parallel_creates_of_one_host_by_two_tenants_make_exactly_one_endpoint(platform, pair):
    alices, bobs = pair
    for _ in range(3):
        answers: dict[str, int] = {}

        def one(user: str, tenant: str, name: str, into: dict[str, int]) -> None:
            into[user] = create(platform, user, tenant, name).status_code

        threads = [
            threading.Thread(target=one, args=("alice", alices, "svc", answers)),
            threading.Thread(target=one, args=("bob", bobs, "svc-z", answers)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert sorted(answers.values()) == [200, 409], answers
        winner = next(user for user, status in answers.items() if status == 200)
        tenant, name = (alices, "svc") if winner == "alice" else (bobs, "svc-z")
        assert platform.crs(alices) + platform.crs(bobs) == [name]
        assert claims(platform, alices) | claims(platform, bobs) == {f"inference-host.svc-{alices}": f"{tenant}/{name}"}
        assert delete(platform, winner, tenant, name).status_code == 200


def test_an_endpoint_made_around_the_api_still_holds_its_host(platform, pair):
    alices, bobs = pair
    cr = endpoint_body("svc-z", replicas=0)
    client.CustomObjectsApi(platform.k8s).create_namespaced_custom_object(GROUP, VERSION, bobs, PLURAL, cr)
    assert claims(platform, bobs) == {}  # no claim: it was made before (or around) the API
    assert_host_taken(platform, create(platform, "alice", alices, "svc"), f"svc-{alices}")
    assert platform.crs(alices) == []


def test_failed_creates_deleted_endpoints_and_deleted_tenants_leave_no_claim(platform):
    tenant = make_tenant(platform, f"h{uuid.uuid4().hex[:8]}", "team-a", maxEndpoints=1)
    assert create(platform, "alice", tenant, "first").status_code == 200
    refused = create(platform, "alice", tenant, "second")  # claimed, then refused by the quota
    assert refused.status_code == 409
    assert refused.json()["code"] == "endpoints_quantity_limit_reached"
    assert claims(platform, tenant) == {f"inference-host.first-{tenant}": f"{tenant}/first"}
    assert platform.call("admin", "delete", f"/tenants/{tenant}").status_code == 200
    assert claims(platform, tenant) == {}
