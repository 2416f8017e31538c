"""Robot accounts on the live platform: real tenants (provisioned through POST /tenants), real
ServiceAccounts, real TokenRequest tokens verified by real TokenReviews, and Kubernetes RBAC deciding.

Personas: alice (team-a) owns the robots' tenant, bob (team-b) owns another one, admin is a platform
admin. The module runs a Celery worker of its own on a Redis database of its own (ROBOTS_REDIS_DB),
and the devstack fixture re-applies this checkout's RBAC and admission policies.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import override_settings
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from rest_framework.test import APIClient

from inferencemgmt import kube
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import Forbidden
from tenants import authentication
from tests.conftest import WorkerPool, _test_database_url, use_broker
from tests.endpoints.conftest import Platform, platform_values
from tests.inference_endpoints import GROUP, PLURAL, VERSION
from tests.kube_as_user import api_as
from tests.platform_admin import admin_s3_client

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROBOTS_REDIS_DB = 6
REVIEW_CACHE_SECONDS = 1.0
# The API server caches a successful token authentication itself (kube-apiserver's token cache, 10 s by
# default), so a TokenReview may still say "valid" that long after the ServiceAccount is gone.
API_SERVER_TOKEN_CACHE_SECONDS = 10.0
ALICE = Identity("alice@example.com", ("team-a",))


@pytest.fixture(scope="module")
def platform(
    devstack_env: dict[str, str],
    user_token: Callable[[str], str],
    django_db_setup: Any,
    django_db_blocker: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Platform]:
    broker = devstack_env["REDIS_URL"].rsplit("/", 1)[0] + f"/{ROBOTS_REDIS_DB}"
    values = {**platform_values(devstack_env), "IMM_ROBOT_TOKEN_REVIEW_CACHE_SECONDS": REVIEW_CACHE_SECONDS}
    with override_settings(**values), django_db_blocker.unblock():
        previous_broker = use_broker(broker)
        env = {
            **os.environ,
            **devstack_env,
            "DJANGO_SETTINGS_MODULE": "inferencemgmt.settings",
            "DJANGO_DEBUG": "true",
            "DATABASE_URL": _test_database_url(),
            "REDIS_URL": broker,
        }
        pool = WorkerPool(env, tmp_path_factory.mktemp("robot-workers"))
        pool.start("robots")
        found = Platform(
            env=devstack_env,
            token=user_token,
            k8s=config.new_client_from_config(devstack_env["KUBECONFIG"]),
            s3=admin_s3_client(devstack_env),
        )
        authentication.review_cache_clear()
        try:
            yield found
        finally:
            found.cleanup()
            pool.stop_all()
            use_broker(previous_broker)


@pytest.fixture(scope="module")
def tenants(platform: Platform) -> tuple[str, str]:
    """alice's tenant (team-a) and bob's (team-b), made by the admin through the API."""
    return platform.tenant("team-a", maxEndpoints=10), platform.tenant("team-b", maxEndpoints=10)


def as_token(token: str, method: str, path: str, body: Any = None, **extra: Any) -> Any:
    import json

    data = None if body is None else json.dumps(body)
    return getattr(APIClient(), method)(
        path, data=data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}", **extra
    )


def robot(platform: Platform, tenant: str, role: str, user: str = "alice") -> tuple[str, str]:
    """A new robot of ``role`` made by ``user``, and a 10-minute token for it."""
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    created = platform.call(
        user, "post", f"/tenants/{tenant}/robots", {"name": name, "description": role, "role": role}
    )
    assert created.status_code == 200, created.content
    assert created.json()["data"]["username"] == f"system:serviceaccount:{tenant}:{name}"
    token = platform.call(user, "post", f"/tenants/{tenant}/robots/{name}/tokens", {"expiresIn": 600})
    assert token.status_code == 200, token.content
    return name, token.json()["data"]["token"]


def upload(token: str, tenant: str, model: str, data: bytes) -> list[int]:
    """The documented multipart upload, as the token; the status of each step."""
    file = {"modelName": model, "modelVersion": 1, "fileName": "saved_model.pb", "key": None}
    started = as_token(token, "post", f"/tenants/{tenant}/upload/start", file)
    if started.status_code != 200:
        return [started.status_code]
    upload_id = started.json()["data"]["uploadId"]
    query = f"modelName={model}&modelVersion=1&fileName=saved_model.pb&partNumber=1&uploadId={upload_id}"
    part = APIClient().put(
        f"/tenants/{tenant}/upload?{query}",
        data=data,
        content_type="application/octet-stream",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    parts = [{"ETag": part.json()["data"]["ETag"], "PartNumber": 1}] if part.status_code == 200 else []
    done = as_token(token, "post", f"/tenants/{tenant}/upload/done", {**file, "uploadId": upload_id, "parts": parts})
    return [started.status_code, part.status_code, done.status_code]


def test_a_deployer_robot_uploads_creates_and_scales_in_its_tenant_and_nowhere_else(platform, tenants):
    mine, theirs = tenants
    name, token = robot(platform, mine, "deployer")

    # Kubernetes sees the robot as itself (the service account, with exactly its two groups).
    identity = authentication.robot_identity(token)
    assert kube.self_subject_review(identity)[0] == f"system:serviceaccount:{mine}:{name}"
    assert set(kube.self_subject_review(identity)[1]) >= {"system:serviceaccounts", f"system:serviceaccounts:{mine}"}

    assert upload(token, mine, "robot-model", b"model bytes") == [200, 200, 200]
    stored = platform.s3.get_object(Bucket=mine, Key="robot-model/1/saved_model.pb")["Body"].read()
    assert stored == b"model bytes"
    endpoint = {"endpointName": "by-robot", "modelName": "robot-model", "subjectName": "client", "replicas": 1}
    created = as_token(token, "post", f"/tenants/{mine}/endpoints", endpoint)
    assert created.status_code == 200, created.content
    assert created.json()["data"]["warning"] == ""  # the model it uploaded is there
    scaled = as_token(token, "patch", f"/tenants/{mine}/endpoints/by-robot/replicas", {"replicas": 2})
    assert scaled.status_code == 200, scaled.content
    cr = client.CustomObjectsApi(platform.k8s).get_namespaced_custom_object(GROUP, VERSION, mine, PLURAL, "by-robot")
    assert cr["spec"]["replicas"] == 2
    assert as_token(token, "get", f"/tenants/{mine}/endpoints/by-robot").status_code == 200
    assert as_token(token, "get", "/tenants").json()["data"]["tenants"] == [mine]  # its own tenant only

    # Another tenant, tenant administration, and robot management are not the deployer's.
    forbidden = [
        as_token(token, "get", f"/tenants/{theirs}/endpoints"),
        as_token(token, "post", f"/tenants/{theirs}/endpoints", endpoint),
        as_token(token, "get", f"/tenants/{theirs}/models"),
        as_token(
            token, "post", "/tenants", {"name": f"r{uuid.uuid4().hex[:8]}", "cert": "x", "scope": "a", "quota": {}}
        ),
        as_token(token, "patch", f"/tenants/{mine}", {"quota": {"maxEndpoints": 99}}),
        as_token(token, "delete", f"/tenants/{mine}"),
        as_token(token, "post", f"/tenants/{mine}/robots", {"name": "child", "description": "escalation"}),
        as_token(token, "post", f"/tenants/{mine}/robots/{name}/tokens", {"expiresIn": 600}),
    ]
    assert [answer.status_code for answer in forbidden] == [403] * len(forbidden), [a.content for a in forbidden]
    assert upload(token, theirs, "stolen", b"x") == [403]
    assert (
        client.CustomObjectsApi(platform.k8s).list_namespaced_custom_object(GROUP, VERSION, theirs, PLURAL)["items"]
        == []
    )


def test_a_reader_robot_reads_but_cannot_write(platform, tenants):
    mine, _ = tenants
    _, token = robot(platform, mine, "reader")
    assert as_token(token, "get", f"/tenants/{mine}").status_code == 200
    assert as_token(token, "get", f"/tenants/{mine}/endpoints").status_code == 200
    assert as_token(token, "get", f"/tenants/{mine}/models").status_code == 200
    writes = [
        as_token(
            token,
            "post",
            f"/tenants/{mine}/endpoints",
            {"endpointName": "reader-made", "modelName": "model", "subjectName": "client"},
        ),
        as_token(token, "patch", f"/tenants/{mine}/endpoints/by-robot/replicas", {"replicas": 3}),
        as_token(token, "delete", f"/tenants/{mine}/endpoints/by-robot"),
        as_token(token, "post", f"/tenants/{mine}/robots", {"name": "child", "description": ""}),
    ]
    assert [answer.status_code for answer in writes] == [403] * len(writes), [a.content for a in writes]
    assert upload(token, mine, "reader-model", b"x") == [403]
    assert as_token(token, "get", f"/tenants/{mine}/robots").status_code == 403  # robots are not its business


def test_a_deleted_robots_token_is_401_within_the_cache_bound_and_kubernetes_refuses_it_anyway(platform, tenants):
    mine, _ = tenants
    name, token = robot(platform, mine, "reader")
    assert as_token(token, "get", f"/tenants/{mine}/endpoints").status_code == 200
    # Bound to our audience: the Kubernetes API itself does not take it.
    configuration = client.Configuration()
    config.load_kube_config(config_file=platform.env["KUBECONFIG"], client_configuration=configuration)
    configuration.cert_file = configuration.key_file = None
    configuration.api_key = {"authorization": f"Bearer {token}"}
    with pytest.raises(ApiException) as direct:
        client.CoreV1Api(client.ApiClient(configuration)).list_namespaced_service_account(mine)
    assert direct.value.status == 401

    deleted = platform.call("alice", "delete", f"/tenants/{mine}/robots/{name}")
    assert deleted.json() == {"status": "DELETED", "data": {"name": name}}
    gone_at = time.monotonic()
    while True:
        answer = as_token(token, "get", f"/tenants/{mine}/endpoints")
        if answer.status_code == 401:
            break
        bound = REVIEW_CACHE_SECONDS + API_SERVER_TOKEN_CACHE_SECONDS + 3
        assert time.monotonic() - gone_at < bound, "the deleted robot's token still works"
        time.sleep(0.2)
    print(f"deleted robot's token refused after {time.monotonic() - gone_at:.1f}s")
    assert answer.json() == {
        "title": "Authentication required",
        "description": "Token not valid.",
        "code": "auth_token_invalid",
    }
    assert platform.call("alice", "get", f"/tenants/{mine}/robots/{name}").status_code == 404
    # Its RoleBinding went with it.
    with pytest.raises(ApiException) as binding:
        client.RbacAuthorizationV1Api(platform.k8s).read_namespaced_role_binding(f"imm-robot-{name}", mine)
    assert binding.value.status == 404


def test_members_manage_robots_outsiders_do_not(platform, tenants):
    mine, theirs = tenants
    name, _ = robot(platform, mine, "tenant")
    listed = platform.call("alice", "get", f"/tenants/{mine}/robots").json()["data"]["robots"]
    assert name in [entry["name"] for entry in listed]
    again = platform.call("alice", "post", f"/tenants/{mine}/robots", {"name": name, "description": "again"})
    assert (again.status_code, again.json()["code"]) == (409, "robot_exists")
    for method, path, body in (
        ("get", f"/tenants/{mine}/robots", None),
        ("post", f"/tenants/{mine}/robots", {"name": "bobs", "description": ""}),
        ("get", f"/tenants/{mine}/robots/{name}", None),
        ("post", f"/tenants/{mine}/robots/{name}/tokens", {"expiresIn": 600}),
        ("delete", f"/tenants/{mine}/robots/{name}", None),
    ):
        assert platform.call("bob", method, path, body).status_code == 403, (method, path)
    # The admin may (platform-admin ClusterRole); bob's own tenant is his.
    assert platform.call("admin", "get", f"/tenants/{mine}/robots/{name}").status_code == 200
    assert platform.call("bob", "get", f"/tenants/{theirs}/robots").status_code == 200


def test_a_member_may_bind_only_robot_roles_to_own_service_accounts(platform, tenants):
    """The admission policy tenant-robot-bindings: the tenant Role's `rolebindings create` cannot open the tenant."""
    mine, _ = tenants
    rbac = api_as(ALICE, client.RbacAuthorizationV1Api)

    def binding(role: str, subjects: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "metadata": {"name": f"try-{uuid.uuid4().hex[:6]}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": subjects,
        }

    group = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}
    user = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob@example.com"}
    foreign_sa = {"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"}
    for refused in (
        binding(mine, [group]),
        binding(mine, [user]),
        binding("imm-robot-reader", [foreign_sa]),
        binding(mine, [{"kind": "ServiceAccount", "name": "default", "namespace": mine}, user]),
    ):
        with pytest.raises(Forbidden):
            rbac.create_namespaced_role_binding(mine, refused)
    allowed = binding("imm-robot-reader", [{"kind": "ServiceAccount", "name": "default", "namespace": mine}])
    rbac.create_namespaced_role_binding(mine, allowed)
    rbac.delete_namespaced_role_binding(allowed["metadata"]["name"], mine)
