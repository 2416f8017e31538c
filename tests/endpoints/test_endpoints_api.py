"""The endpoint routes on the live platform: real tenants, real tokens, RBAC as the user, the real controller.

Personas: alice (team-a) owns the tenants, bob (team-b) is an outsider, dave is in no group, carol
is in both, admin is a platform admin. Case numbers are those of the original project's endpoint tests.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
from kubernetes import client

from tests.endpoints.conftest import Platform
from tests.inference_endpoints import GROUP, PLURAL, VERSION
from tests.servings.conftest import ControllerProcess, wait_for

# The database holds only the tenant Operations (made by the module fixture); it must exist for them.
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def body(name: str, **changes: Any) -> dict[str, Any]:
    return {"endpointName": name, "modelName": "resnet", "subjectName": "client", **changes}


def url(platform: Platform, name: str, tenant: str) -> str:
    return f"{name}-{tenant}.{platform.env['PLATFORM_DOMAIN']}:443"


@pytest.fixture(scope="module")
def team(platform: Platform) -> str:
    """A team-a tenant without compute quota (endpoints need no resources there)."""
    return platform.tenant(maxEndpoints=50)


def create(platform: Platform, tenant: str, name: str, user: str = "alice", **changes: Any) -> Any:
    return platform.call(user, "post", f"/tenants/{tenant}/endpoints", body(name, **changes))


def created(platform: Platform, tenant: str, name: str, **changes: Any) -> None:
    response = create(platform, tenant, name, **changes)
    assert response.status_code == 200, response.content


# --- create ---------------------------------------------------------------------------------------
def test_create_writes_the_documented_cr_and_answers_url_and_warning(platform, team):  # 22, 51
    response = create(
        platform,
        team,
        "predict",
        modelVersionPolicy="{specific {versions: 1 versions: 12}}",
        replicas=0,
        resources={"requests.cpu": "100m", "limits.memory": "1Gi", "requests.nvidia.com/gpu": "1"},
    )
    assert response.status_code == 200, response.content
    assert response.content == (
        b'{"status": "CREATED", "data": {"url": "%s", "warning": "resnet model is not available on the platform"}}'
        % url(platform, "predict", team).encode()
    )
    cr = platform.cr(team, "predict")
    assert cr is not None
    assert cr["spec"] == {
        "endpointName": "predict",
        "modelName": "resnet",
        "subjectName": "client",
        "servingName": "tf-serving",
        "modelVersionPolicy": "{specific{versions:1 versions:12 }}",
        "replicas": 0,
        "resources": {"requests": {"cpu": "100m", "nvidia.com/gpu": "1"}, "limits": {"memory": "1Gi"}},
    }
    # Without replicas the CRD's default (1) applies; the trailing slash is accepted.
    plain = platform.call("carol", "post", f"/tenants/{team}/endpoints/", body("plain"))
    assert plain.status_code == 200, plain.content
    assert platform.cr(team, "plain")["spec"]["replicas"] == 1
    assert platform.cr(team, "plain")["spec"]["modelVersionPolicy"] == "{latest{}}"


def test_warning_is_empty_once_the_model_has_a_version_in_the_bucket(platform, team):  # 23
    platform.s3.put_object(Bucket=team, Key="mobilenet/", Body=b"")
    platform.s3.put_object(Bucket=team, Key="mobilenet/1/", Body=b"")  # directory markers are not a model
    marker_only = create(platform, team, "marker-only", modelName="mobilenet")
    assert marker_only.json()["data"]["warning"] == "mobilenet model is not available on the platform"
    platform.s3.put_object(Bucket=team, Key="mobilenet/1/saved_model.pb", Body=b"model bytes")
    present = create(platform, team, "with-model", modelName="mobilenet")
    assert present.json() == {"status": "CREATED", "data": {"url": url(platform, "with-model", team), "warning": ""}}


def test_duplicate_is_409_conflict_and_leaves_the_first(platform, team):  # 24
    created(platform, team, "twice", modelName="first")
    again = create(platform, team, "twice", modelName="second")
    assert again.status_code == 409
    assert "Conflict" in again.json()["title"]
    assert again.json()["description"] == "Endpoint twice already exists"
    assert platform.cr(team, "twice")["spec"]["modelName"] == "first"


def test_refusals_before_anything_is_written(platform, team):  # 28, 50, validation
    before = platform.crs(team)
    saturn = create(platform, "saturn", "predict2")
    assert saturn.status_code == 404
    assert saturn.json()["description"] == "Tenant saturn does not exist"
    serving = create(platform, team, "no-serving", servingName="no-such-serving")
    assert serving.status_code == 404
    assert serving.json()["description"] == "Serving no-such-serving does not exist"
    digit = create(platform, team, "1predict")
    assert digit.status_code == 400
    assert digit.json()["description"].startswith("endpointName: '1predict' does not match")
    long_name = "e" * (63 - len(team))
    too_long = create(platform, team, long_name)
    assert too_long.status_code == 400
    assert f"'{long_name}-{team}' is too long" in too_long.json()["description"]
    quantity = create(platform, team, "bad-quantity", resources={"limits.memory": "1Ga"})
    assert quantity.status_code == 400
    assert quantity.json()["description"].startswith("resources: limits.memory: '1Ga' does not match")
    malformed = platform.call("alice", "post", f"/tenants/{team}/endpoints", raw="{not json")
    assert malformed.status_code == 400
    assert platform.crs(team) == before


def test_quota_compliance_on_create_and_update(platform):  # 25, 26
    tenant = platform.tenant(**{"requests.cpu": "2", "limits.memory": "2Gi", "maxEndpoints": 5})
    empty = create(platform, tenant, "empty", resources={})
    assert empty.status_code == 400
    assert "No resources provided" in empty.json()["description"]
    assert f"There's resource quota specified in {tenant} tenant" in empty.json()["description"]
    absent = create(platform, tenant, "absent")
    assert "No resources provided" in absent.json()["description"]
    partial = create(platform, tenant, "partial", resources={"requests.cpu": "1"})
    assert partial.status_code == 400
    assert partial.json()["description"] == (
        'The "resources" parameter is invalid. Missing resources values. '
        "You need to provide: {'limits.memory': '2Gi'}"
    )
    assert platform.crs(tenant) == []
    created(platform, tenant, "fits", resources={"requests.cpu": "1", "limits.memory": "1Gi", "limits.cpu": "1"})
    update = platform.call(
        "alice", "patch", f"/tenants/{tenant}/endpoints/fits", {"resources": {"requests.cpu": "500m"}}
    )
    assert update.status_code == 400
    assert "Missing resources values" in update.json()["description"]
    assert platform.cr(tenant, "fits")["spec"]["resources"]["limits"] == {"memory": "1Gi", "cpu": "1"}


def test_max_endpoints_is_the_quota_object_count(platform):  # 27
    tenant = platform.tenant(maxEndpoints=1)
    created(platform, tenant, "only")
    refused = create(platform, tenant, "second")
    assert refused.status_code == 409
    assert refused.json()["title"] == "409 Conflict"
    assert refused.json()["description"] == "Endpoints have reached the quantity limit"
    assert platform.crs(tenant) == ["only"]
    assert platform.call("alice", "delete", f"/tenants/{tenant}/endpoints/only").status_code == 200

    def slot_free() -> bool:
        response = create(platform, tenant, "second")
        assert response.status_code in (200, 409), response.content
        return response.status_code == 200

    wait_for(slot_free, 120, interval=1, what="the quota to count the deletion")


def test_parallel_creates_never_exceed_max_endpoints(platform):
    tenant = platform.tenant(maxEndpoints=3)
    statuses: list[int] = []
    lock = threading.Lock()

    def one(index: int) -> None:
        response = create(platform, tenant, f"race-{index}")
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=one, args=(index,)) for index in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(statuses) == [200] * 3 + [409] * 7
    assert len(platform.crs(tenant)) == 3


# --- authorisation --------------------------------------------------------------------------------
def test_outsiders_get_403_and_cannot_tell_whether_an_endpoint_exists(platform, team):  # 29
    created(platform, team, "secret")
    base = f"/tenants/{team}/endpoints"
    for user in ("bob", "dave"):
        for name in ("secret", "never-made"):
            answers = {
                "view": platform.call(user, "get", f"{base}/{name}"),
                "update": platform.call(user, "patch", f"{base}/{name}", {"subjectName": "bob"}),
                "scale": platform.call(user, "patch", f"{base}/{name}/replicas", {"replicas": 3}),
                "delete": platform.call(user, "delete", f"{base}/{name}"),
                "delete-body": platform.call(user, "delete", base, {"endpointName": name}),
                "events": platform.call(user, "get", f"{base}/{name}/events"),
                "logs": platform.call(user, "get", f"{base}/{name}/logs"),
                "pause": platform.call(user, "post", f"{base}/{name}/pause"),
                "create": create(platform, team, name, user=user),
            }
            assert {route: answer.status_code for route, answer in answers.items()} == dict.fromkeys(answers, 403)
        assert platform.call(user, "get", base).status_code == 403
    cr = platform.cr(team, "secret")
    assert cr["spec"]["subjectName"] == "client"
    assert cr["spec"]["replicas"] == 1
    assert platform.cr(team, "never-made") is None


# --- view, list, update, delete (no controller needed) --------------------------------------------
def test_view_of_a_new_endpoint_and_of_an_unknown_one(platform, team):  # 36, 37
    created(platform, team, "viewed", resources={"requests.cpu": "250m"})
    view = platform.call("alice", "get", f"/tenants/{team}/endpoints/viewed")
    assert view.status_code == 200, view.content
    data = view.json()["data"]
    assert list(data)[:5] == ["endpoint status", "endpoint url", "subject name", "resources", "replicas"]
    assert data["endpoint url"] == url(platform, "viewed", team)
    assert data["subject name"] == "client"
    assert data["resources"] == {"requests": {"cpu": "250m"}}
    assert set(data["endpoint status"]) == {"running pods", "pending pods", "failed pods"}
    assert {"status", "reason", "conditions"} <= set(data)
    for name in ("not_exist", "not-exist"):
        missing = platform.call("alice", "get", f"/tenants/{team}/endpoints/{name}")
        assert missing.status_code == 404
        assert missing.json()["description"] == f"Endpoint {name} does not exist"


def test_update_replaces_resources_and_echoes_the_body(platform, team):  # 32 (CR), 34
    created(platform, team, "updated", resources={"requests.cpu": "1", "limits.memory": "1Gi"})
    changes = {
        "modelName": "new-name",
        "modelVersionPolicy": "{specific{versions: 2}}",
        "resources": {"requests.cpu": "200m"},
        "colour": "ignored",
    }
    patched = platform.call("alice", "patch", f"/tenants/{team}/endpoints/updated", changes)
    assert patched.status_code == 200, patched.content
    assert patched.json() == {"status": "PATCHED", "data": {"url": url(platform, "updated", team), "values": changes}}
    spec = platform.cr(team, "updated")["spec"]
    assert spec["modelName"] == "new-name"
    assert spec["modelVersionPolicy"] == "{specific{versions:2 }}"
    assert spec["resources"] == {"requests": {"cpu": "200m"}}  # limits.memory is gone: replaced, not merged

    for refused, status, text in (
        ({"modelName": 0}, 400, "modelName: 0 is not of type 'string'"),
        ({}, 400, "give at least one of modelName, modelVersionPolicy, resources, subjectName, autoscaling"),
    ):
        answer = platform.call("alice", "patch", f"/tenants/{team}/endpoints/updated", refused)
        assert (answer.status_code, answer.json()["description"]) == (status, text)
    unknown = platform.call("alice", "patch", f"/tenants/{team}/endpoints/unknown-one", {"modelName": "x-model"})
    assert unknown.status_code == 404
    assert unknown.json()["description"] == "Endpoint unknown-one does not exist"
    assert platform.cr(team, "updated")["spec"]["modelName"] == "new-name"
    assert platform.cr(team, "unknown-one") is None


def test_scale_validation(platform, team):  # 31
    created(platform, team, "scaled-v")
    path = f"/tenants/{team}/endpoints/scaled-v/replicas"
    for refused, text in (
        ({"replicas": -1}, "replicas: -1 is less than the minimum of 0"),
        ({"replicas": "many"}, "replicas: 'many' is not of type 'integer'"),
        ({}, "replicas: 'replicas' is a required property"),
    ):
        answer = platform.call("alice", "patch", path, refused)
        assert (answer.status_code, answer.json()["description"]) == (400, text)
    unknown = platform.call("alice", "patch", f"/tenants/{team}/endpoints/nobody/replicas", {"replicas": 1})
    assert unknown.status_code == 404
    assert unknown.json()["description"] == "Endpoint nobody does not exist"
    assert platform.cr(team, "scaled-v")["spec"]["replicas"] == 1


def test_delete_in_both_forms(platform, team):  # 38
    created(platform, team, "gone-body")
    created(platform, team, "gone-path")
    by_body = platform.call("alice", "delete", f"/tenants/{team}/endpoints", {"endpointName": "gone-body"})
    assert (
        by_body.content == b'{"status": "DELETED", "data": {"url": "%s"}}' % url(platform, "gone-body", team).encode()
    )
    by_path = platform.call("alice", "delete", f"/tenants/{team}/endpoints/gone-path/")
    assert by_path.json() == {"status": "DELETED", "data": {"url": url(platform, "gone-path", team)}}
    assert platform.cr(team, "gone-body") is None
    assert platform.cr(team, "gone-path") is None
    again = platform.call("alice", "delete", f"/tenants/{team}/endpoints", {"endpointName": "gone-body"})
    assert again.status_code == 404
    assert again.json()["description"] == "Endpoint gone-body does not exist"


def test_empty_list_is_byte_exact(platform):  # 35
    tenant = platform.tenant(maxEndpoints=1)
    listed = platform.call("alice", "get", f"/tenants/{tenant}/endpoints")
    assert listed.content == b'{"status": "OK", "data": {"endpoints": []}}'


# --- live status: the controller renders, kwok runs the pods --------------------------------------
def deployment(platform: Platform, tenant: str, name: str) -> Any:
    found = client.AppsV1Api(platform.k8s).list_namespaced_deployment(
        tenant, label_selector=f"ai.intel.com/inference-endpoint={name}"
    )
    return found.items[0] if found.items else None


def deployment_replicas(platform: Platform, tenant: str, name: str) -> int | None:
    found = deployment(platform, tenant, name)
    return None if found is None else int(found.spec.replicas)


def listed_status(platform: Platform, tenant: str, name: str) -> str | None:
    entries = platform.call("alice", "get", f"/tenants/{tenant}/endpoints").json()["data"]["endpoints"]
    return next((entry["status"] for entry in entries if entry["name"] == name), None)


def wait_listed(platform: Platform, tenant: str, name: str, status: str, timeout: float = 240) -> None:
    seen: list[str | None] = []

    def check() -> bool:
        seen.append(listed_status(platform, tenant, name))
        return seen[-1] == status

    try:
        wait_for(check, timeout, 1, f"{name} to be listed as {status}")
    except AssertionError:
        raise AssertionError(f"{name} never listed as {status!r}; seen {sorted(set(map(str, seen)))}") from None


@pytest.fixture(scope="module")
def live(platform: Platform, controller: ControllerProcess) -> str:
    """A team-a tenant whose endpoints the test controller renders."""
    return platform.tenant(maxEndpoints=20)


def test_list_merges_live_deployment_status(platform, live):  # 35
    created(platform, live, "listed", replicas=2)
    created(platform, live, "zero", replicas=0)
    # A CR the controller cannot render (its serving was deleted after the API's check) is still listed.
    orphan = {"endpointName": "orphan", "modelName": "resnet", "subjectName": "c", "servingName": "vanished"}
    platform.custom().create_namespaced_custom_object(
        GROUP,
        VERSION,
        live,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "InferenceEndpoint",
            "metadata": {"name": "orphan"},
            "spec": orphan,
        },
    )
    wait_listed(platform, live, "listed", "available")
    wait_listed(platform, live, "zero", "scaled to 0")
    assert listed_status(platform, live, "orphan") == "pending"
    entries = platform.call("alice", "get", f"/tenants/{live}/endpoints").json()["data"]["endpoints"]
    assert [entry["name"] for entry in entries] == sorted(entry["name"] for entry in entries)
    assert {entry["name"]: entry["url"] for entry in entries}["listed"] == url(platform, "listed", live)
    # The reason is the CR status the controller writes: waited for, like every controller outcome.
    wait_for(
        lambda: (
            platform.call("alice", "get", f"/tenants/{live}/endpoints/orphan").json()["data"]["reason"]
            == "ServingNotFound"
        ),
        120,
        1,
        "the controller's ServingNotFound reason",
    )


def test_scale_goes_through_to_the_deployment_and_the_view(platform, live):  # 30
    created(platform, live, "scaler")
    path = f"/tenants/{live}/endpoints/scaler/replicas"
    for replicas in (5, 2, 0):
        scaled = platform.call("alice", "patch", path, {"replicas": replicas})
        assert scaled.content == b'{"status": "PATCHED", "data": {"url": "%s", "values": {"replicas": %d}}}' % (
            url(platform, "scaler", live).encode(),
            replicas,
        )
        assert platform.cr(live, "scaler")["spec"]["replicas"] == replicas
        wanted = replicas
        wait_for(lambda: deployment_replicas(platform, live, "scaler") == wanted, 180, 1, f"{wanted} replicas")  # noqa: B023
        if replicas == 2:

            def two_running() -> bool:
                view = platform.call("alice", "get", f"/tenants/{live}/endpoints/scaler").json()["data"]
                return view["endpoint status"]["running pods"] == 2 and view["replicas"]["available"] == 2

            wait_for(two_running, 240, 1, "the view to show 2 running pods")
    wait_listed(platform, live, "scaler", "scaled to 0")
    # The list reads the live Deployment; `reason` is the CR status the controller writes a moment
    # later, so it is waited for, not assumed to have landed already.
    views: list[dict[str, Any]] = []

    def controller_says_scaled_to_zero() -> bool:
        views.append(platform.call("alice", "get", f"/tenants/{live}/endpoints/scaler").json()["data"])
        return bool(views[-1]["reason"] == "ScaledToZero")

    wait_for(controller_says_scaled_to_zero, 120, 1, "the controller's ScaledToZero reason")
    assert views[-1]["replicas"] == {"available": None, "unavailable": None}


def test_updates_reach_the_rendered_objects(platform, live):  # 32, 33
    created(platform, live, "changing")
    changes = {"modelName": "new-name", "modelVersionPolicy": "{specific{versions:2 }}", "subjectName": "updated"}
    assert platform.call("alice", "patch", f"/tenants/{live}/endpoints/changing", changes).status_code == 200
    core, net = client.CoreV1Api(platform.k8s), client.NetworkingV1Api(platform.k8s)

    def rendered() -> bool:
        try:
            tf_conf = core.read_namespaced_config_map("changing", live).data["tf.conf"]
            ingress = net.read_namespaced_ingress("changing", live)
        except client.exceptions.ApiException:
            return False
        return (
            'name:"new-name"' in tf_conf  # what the original test looks for
            and f"s3://{live}/new-name" in tf_conf
            and ingress.metadata.annotations.get("allowed-values") == "CN=updated"
        )

    wait_for(rendered, 180, 1, "the ConfigMap and Ingress to follow the update")


def test_a_model_name_outside_the_basic_plane_is_rendered(platform, live):
    # An emoji is a valid model name (a folder of the bucket). The SDK's own JSON writer escapes it as
    # a surrogate pair, which the API server's YAML decoder of apply patches refuses: the controller
    # must send it as UTF-8, or such an endpoint is Degraded forever with "invalid Unicode character".
    model = "rocket-\U0001f680"
    created(platform, live, "emoji", modelName=model)
    core = client.CoreV1Api(platform.k8s)

    def rendered() -> bool:
        try:
            return f"s3://{live}/{model}" in core.read_namespaced_config_map("emoji", live).data["tf.conf"]
        except client.exceptions.ApiException:
            return False

    wait_for(rendered, 180, 1, "the ConfigMap to hold the model's name")
    view = platform.call("alice", "get", f"/tenants/{live}/endpoints/emoji").json()["data"]
    assert view["reason"] != "ApplyFailed", view


def test_pause_remembers_and_resume_restores(platform, live):
    created(platform, live, "pausing", replicas=3)
    base = f"/tenants/{live}/endpoints/pausing"
    paused = platform.call("alice", "post", f"{base}/pause")
    assert paused.json() == {
        "status": "PATCHED",
        "data": {"url": url(platform, "pausing", live), "values": {"replicas": 0}},
    }
    cr = platform.cr(live, "pausing")
    assert cr["spec"]["replicas"] == 0
    assert cr["metadata"]["annotations"]["imm.ai.intel.com/paused-replicas"] == "3"
    assert platform.call("alice", "post", f"{base}/pause").json()["data"]["values"] == {"replicas": 0}
    assert platform.cr(live, "pausing")["metadata"]["annotations"]["imm.ai.intel.com/paused-replicas"] == "3"
    wait_for(lambda: deployment_replicas(platform, live, "pausing") == 0, 180, 1, "the Deployment at 0")
    assert platform.call("alice", "get", base).json()["data"]["paused"] is True

    resumed = platform.call("alice", "post", f"{base}/resume")
    assert resumed.json()["data"]["values"] == {"replicas": 3}
    cr = platform.cr(live, "pausing")
    assert cr["spec"]["replicas"] == 3
    assert "imm.ai.intel.com/paused-replicas" not in (cr["metadata"].get("annotations") or {})
    wait_for(lambda: deployment_replicas(platform, live, "pausing") == 3, 180, 1, "the Deployment at 3")
    unknown = platform.call("alice", "post", f"/tenants/{live}/endpoints/nobody/pause")
    assert unknown.status_code == 404


def test_events_and_logs(platform, live):
    created(platform, live, "observed")
    base = f"/tenants/{live}/endpoints/observed"

    def events() -> list[dict[str, Any]]:
        found = platform.call("alice", "get", f"{base}/events").json()["data"]["events"]
        objects = {event["object"].split("/")[0] for event in found}
        return found if {"Deployment", "Pod"} <= objects else []

    found = wait_for(events, 240, 1, "events of the Deployment and its pod")
    assert all(set(event) == {"time", "type", "reason", "object", "message", "count"} for event in found)
    assert [event["time"] for event in found] == sorted(event["time"] for event in found)
    assert any(event["reason"] == "ScalingReplicaSet" for event in found)

    wait_for(lambda: deployment(platform, live, "observed").status.available_replicas == 1, 240, 1, "a pod")
    # kwok's fake nodes keep no container logs: a clear error, not an empty success.
    logs = platform.call("alice", "get", f"{base}/logs?tail=5")
    assert logs.status_code == 502, logs.content
    assert logs.json()["title"] == "Logs are not available"
    assert logs.json()["code"] == "endpoint_logs_unavailable"
    assert "observed" in logs.json()["description"]
    bad_tail = platform.call("alice", "get", f"{base}/logs?tail=many")
    assert bad_tail.status_code == 400
    assert bad_tail.json()["description"] == "tail: 'many' is not a whole number from 1 to 10000"


def test_delete_lets_garbage_collection_take_the_children(platform, live):  # 38
    created(platform, live, "collected")
    wait_for(lambda: deployment(platform, live, "collected") is not None, 180, 1, "the Deployment")
    assert platform.call("alice", "delete", f"/tenants/{live}/endpoints/collected").status_code == 200
    wait_for(lambda: deployment(platform, live, "collected") is None, 180, 1, "the Deployment to be collected")
    assert listed_status(platform, live, "collected") is None


def test_admin_may_act_in_any_tenant(platform, team):
    name = f"adm{uuid.uuid4().hex[:6]}"
    assert create(platform, team, name, user="admin").status_code == 200
    assert platform.call("admin", "get", f"/tenants/{team}/endpoints/{name}").status_code == 200
    deleted = platform.call("admin", "delete", f"/tenants/{team}/endpoints/{name}")
    assert json.loads(deleted.content)["status"] == "DELETED"
