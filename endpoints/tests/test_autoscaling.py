"""Autoscaling of endpoints (README "Autoscaling"): the body's checks, the quota check, the CR, the
409 of a manual scale, the update's conditional write, and what the view shows.

Only ``inferencemgmt.kube`` is faked (the services' calls as the caller); the same paths against the
real API server and controller: tests/endpoints/test_autoscaling_live.py.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.test import override_settings

from endpoints import services
from endpoints.api.serializers import EndpointUpdateSerializer, endpoint_create_arguments
from endpoints.spec import check_autoscaling_quota, endpoint_manifest
from endpoints.status import autoscaling_view
from endpoints.tests.test_spec import create, create_refusal, good, refusal
from inferencemgmt import kube
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import BadRequest, Conflict, ImmError, NotFound

pytestmark = pytest.mark.unit

SCALING = {"minReplicas": 1, "maxReplicas": 3, "targetCPUUtilization": 60}
CPU = {"requests.cpu": "500m", "requests.memory": "256Mi"}
ALICE = Identity("alice@example.com", ("team-a",))


# --- the body ---------------------------------------------------------------------------------------
def test_autoscaling_body_is_checked_and_gets_the_default_scale_down_window():
    data = create(good(autoscaling=SCALING, resources=CPU))
    assert data["autoscaling"] == {**SCALING, "scaleDownStabilizationSeconds": 300}
    assert create(good(autoscaling=None))["autoscaling"] is None
    assert "autoscaling" not in create(good())


@pytest.mark.parametrize(
    ("scaling", "message"),
    [
        ({**SCALING, "minReplicas": 0}, "autoscaling.minReplicas: 0 is less than the minimum of 1"),
        ({**SCALING, "minReplicas": 4}, "autoscaling.minReplicas: 4 is greater than maxReplicas (3)"),
        ({**SCALING, "maxReplicas": 101}, "autoscaling.maxReplicas: 101 is greater than the maximum of 100"),
        ({**SCALING, "targetCPUUtilization": 0}, "targetCPUUtilization: 0 is less than the minimum of 1"),
        ({**SCALING, "targetCPUUtilization": 101}, "targetCPUUtilization: 101 is greater than the maximum of 100"),
        ({**SCALING, "maxReplicas": "3"}, "autoscaling.maxReplicas: '3' is not of type 'integer'"),
        ({"minReplicas": 1, "targetCPUUtilization": 50}, "'maxReplicas' is a required property"),
        ({**SCALING, "maxReplica": 3}, "unknown key(s) maxReplica"),
        ({**SCALING, "scaleDownStabilizationSeconds": 3601}, "3601 is greater than the maximum of 3600"),
        ("3", "autoscaling"),
    ],
)
def test_autoscaling_refusals_name_the_field(scaling, message):
    assert message in create_refusal(good(autoscaling=scaling, resources=CPU))


def test_the_ceiling_of_max_replicas_is_a_setting():
    with override_settings(ENDPOINT_AUTOSCALING_MAX_REPLICAS=5):
        assert "6 is greater than the maximum of 5" in create_refusal(
            good(autoscaling={**SCALING, "maxReplicas": 6}, resources=CPU)
        )
        assert create(good(autoscaling={**SCALING, "maxReplicas": 5}, resources=CPU))["autoscaling"]["maxReplicas"] == 5


def test_replicas_given_with_autoscaling_must_be_within_its_bounds():
    assert "replicas: 4 is outside minReplicas..maxReplicas (1..3)" in create_refusal(
        good(autoscaling=SCALING, replicas=4, resources=CPU)
    )
    assert create(good(autoscaling=SCALING, replicas=2, resources=CPU))["replicas"] == 2


def test_update_takes_autoscaling_and_null_removes_it():
    serializer = EndpointUpdateSerializer(data={"autoscaling": None})
    serializer.is_valid(raise_exception=True)
    assert serializer.validated_data == {"autoscaling": None}
    assert "minReplicas" in refusal(EndpointUpdateSerializer, {"autoscaling": {"maxReplicas": 2}})


def test_an_autoscaled_endpoint_starts_at_min_replicas():
    arguments = endpoint_create_arguments(create(good(autoscaling={**SCALING, "minReplicas": 2}, resources=CPU)))
    spec = endpoint_manifest("team", **arguments)["spec"]
    assert spec["replicas"] == 2
    assert spec["autoscaling"] == {**SCALING, "minReplicas": 2, "scaleDownStabilizationSeconds": 300}
    assert "autoscaling" not in endpoint_manifest("team", **endpoint_create_arguments(create(good())))["spec"]


# --- the quota --------------------------------------------------------------------------------------
def quota_refusal(hard: dict[str, str], resources: dict[str, str] | None, scaling: dict[str, int]) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        check_autoscaling_quota("team", hard, resources, scaling)
    return caught.value


def test_max_replicas_times_the_requests_must_fit_the_quota():
    hard = {"requests.cpu": "2", "requests.memory": "1Gi", "limits.cpu": "4", "pods": "10"}
    check_autoscaling_quota("team", hard, CPU, {**SCALING, "maxReplicas": 4})  # 4 x 500m = 2, 4 x 256Mi = 1Gi
    refused = quota_refusal(hard, CPU, {**SCALING, "maxReplicas": 5})
    assert refused.code == "endpoint_autoscaling_exceeds_quota"
    assert refused.status == 400
    assert refused.description == (
        'The "autoscaling" parameter is invalid. maxReplicas 5 does not fit the resource quota of tenant team: '
        "requests.cpu: 5 x 500m exceeds the quota's 2; requests.memory: 5 x 256Mi exceeds the quota's 1Gi"
    )
    # A bare `cpu` quota is requests.cpu; limits and the pod count are compared too.
    assert "requests.cpu: 3 x 1 exceeds the quota's 2" in str(
        quota_refusal({"cpu": "2"}, {"requests.cpu": "1"}, SCALING).description
    )
    assert "limits.cpu: 3 x 2 exceeds the quota's 4" in str(
        quota_refusal(hard, {**CPU, "limits.cpu": "2"}, {**SCALING, "maxReplicas": 3}).description
    )
    assert "pods: 3 pods exceeds the quota's 2" in str(quota_refusal({"pods": "2"}, CPU, SCALING).description)


def test_cpu_utilization_needs_a_cpu_request():
    for resources in (None, {}, {"requests.memory": "1Gi"}, {"requests.cpu": "0"}):
        refused = quota_refusal({}, resources, SCALING)
        assert refused.code == "endpoint_autoscaling_needs_cpu_request"
        assert "requests.cpu" in str(refused.description)


# --- the services, against a fake API server -------------------------------------------------------
class FakeApi:
    """One endpoint CR and the tenant's quota, as the caller reads and writes them."""

    def __init__(self, spec: dict[str, Any], hard: dict[str, str] | None = None) -> None:
        self.cr: dict[str, Any] = {
            "metadata": {"name": "predict", "namespace": "team", "resourceVersion": "7"},
            "spec": {"endpointName": "predict", "replicas": 1, **spec},
        }
        self.hard = hard or {}
        self.scales: list[dict[str, Any]] = []
        self.patches: list[list[dict[str, Any]]] = []
        self.changed_before_write = 0  # writes answered 409 as if someone had changed the CR just before

    def read_endpoint(self, identity: Identity, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.cr)

    def resource_quotas(self, identity: Identity, namespace: str) -> dict[str, Any]:
        return {"items": [{"metadata": {"name": "team"}, "spec": {"hard": self.hard}}]}

    def _conditional(self, version: str) -> None:
        if self.changed_before_write:
            self.changed_before_write -= 1
            self.cr["metadata"]["resourceVersion"] = str(int(self.cr["metadata"]["resourceVersion"]) + 1)
            raise Conflict(description="the object has been modified")
        if version != self.cr["metadata"]["resourceVersion"]:
            raise Conflict(description="the object has been modified")

    def scale_endpoint(self, identity: Identity, ns: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self._conditional(body["metadata"]["resourceVersion"])
        self.scales.append(body)
        self.cr["spec"]["replicas"] = body["spec"]["replicas"]
        return body

    def patch_endpoint(
        self, identity: Identity, ns: str, name: str, operations: Any, *, content_type: str = kube.MERGE_PATCH
    ) -> dict[str, Any]:
        assert content_type == "application/json-patch+json"
        versions = [op["value"] for op in operations if op["path"] == "/metadata/resourceVersion"]
        if versions:
            self._conditional(versions[0])
        self.patches.append(operations)
        for op in operations:
            key = op["path"].rsplit("/", 1)[1]
            if op["path"].startswith("/spec/"):
                if op["op"] == "add":
                    self.cr["spec"][key] = op["value"]
                elif op["op"] == "remove":
                    del self.cr["spec"][key]
        return self.cr


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(spec: dict[str, Any], hard: dict[str, str] | None = None) -> FakeApi:
        api = FakeApi(spec, hard)
        monkeypatch.setattr(kube, "read_endpoint", api.read_endpoint)
        monkeypatch.setattr(kube, "resource_quotas", api.resource_quotas)
        monkeypatch.setattr(kube, "scale_endpoint", api.scale_endpoint)
        monkeypatch.setattr(kube, "patch_endpoint", api.patch_endpoint)
        monkeypatch.setattr(services, "tenant_required", lambda tenant: None)
        return api

    return install


def test_a_manual_scale_of_an_autoscaled_endpoint_is_a_409_and_changes_nothing(fake):
    api = fake({"autoscaling": SCALING})
    with pytest.raises(Conflict) as refused:
        services.endpoint_scale(ALICE, "team", "predict", 5)
    assert refused.value.code == "endpoint_autoscaled"
    assert refused.value.status == 409
    assert "autoscaling" in str(refused.value.description)
    assert api.scales == []
    assert api.cr["spec"]["replicas"] == 1


def test_a_manual_scale_is_conditional_on_the_endpoint_read(fake):
    api = fake({})
    api.changed_before_write = 1  # e.g. autoscaling switched on in between: read again, decide again
    services.endpoint_scale(ALICE, "team", "predict", 2)
    assert [scale["spec"]["replicas"] for scale in api.scales] == [2]
    assert api.scales[0]["metadata"]["resourceVersion"] == "8"


def test_racing_scales_pause_a_random_growing_moment_and_win_on_the_last_try(fake, monkeypatch):
    ceilings: list[float] = []
    pauses: list[float] = []

    def uniform(low: float, high: float) -> float:
        assert low == 0
        ceilings.append(high)
        return high / 2

    monkeypatch.setattr("endpoints.services.random.uniform", uniform)
    monkeypatch.setattr("endpoints.services.time.sleep", pauses.append)
    api = fake({})
    api.changed_before_write = services.CONFLICT_ATTEMPTS - 1  # others win every race but the last
    services.endpoint_scale(ALICE, "team", "predict", 3)
    assert api.cr["spec"]["replicas"] == 3
    # A random pause before each retry, its ceiling doubling from CONFLICT_PAUSE_SECONDS.
    assert ceilings == [services.CONFLICT_PAUSE_SECONDS * 2**n for n in range(services.CONFLICT_ATTEMPTS - 1)]
    assert pauses == [ceiling / 2 for ceiling in ceilings]


def test_a_scale_that_loses_every_race_is_the_last_409_and_changes_nothing(fake, monkeypatch):
    monkeypatch.setattr("endpoints.services.time.sleep", lambda seconds: None)
    api = fake({})
    api.changed_before_write = services.CONFLICT_ATTEMPTS
    with pytest.raises(Conflict) as refused:
        services.endpoint_scale(ALICE, "team", "predict", 3)
    assert (refused.value.status, refused.value.description) == (409, "the object has been modified")
    assert api.changed_before_write == 0  # every try was made
    assert api.scales == []
    assert api.cr["spec"]["replicas"] == 1


def test_a_refusal_decided_on_the_fresh_object_is_not_retried(fake, monkeypatch):
    pauses: list[float] = []
    monkeypatch.setattr("endpoints.services.time.sleep", pauses.append)
    api = fake({"autoscaling": SCALING})
    api.changed_before_write = 0
    with pytest.raises(Conflict) as refused:
        services.endpoint_scale(ALICE, "team", "predict", 5)
    assert refused.value.code == "endpoint_autoscaled"
    assert pauses == []  # answered at once: only a lost race is tried again


def test_an_update_that_loses_every_race_is_the_last_409(fake, monkeypatch):
    monkeypatch.setattr("endpoints.services.time.sleep", lambda seconds: None)
    api = fake({"resources": {"requests": {"cpu": "1"}}})
    api.changed_before_write = services.CONFLICT_ATTEMPTS
    with pytest.raises(Conflict) as refused:
        services.endpoint_update(ALICE, "team", "predict", {"autoscaling": SCALING})
    assert refused.value.description == "the object has been modified"
    assert "autoscaling" not in api.cr["spec"]


def test_patch_checks_new_autoscaling_with_the_endpoint_resources(fake):
    api = fake({"resources": {"requests": {"cpu": "1"}}}, hard={"requests.cpu": "2"})
    with pytest.raises(ImmError) as refused:
        services.endpoint_update(ALICE, "team", "predict", {"autoscaling": SCALING})
    assert refused.value.code == "endpoint_autoscaling_exceeds_quota"
    assert api.patches == []
    services.endpoint_update(ALICE, "team", "predict", {"autoscaling": {**SCALING, "maxReplicas": 2}})
    assert api.cr["spec"]["autoscaling"]["maxReplicas"] == 2
    # Resources that would no longer fit the kept autoscaling are refused too.
    with pytest.raises(ImmError) as bigger:
        services.endpoint_update(ALICE, "team", "predict", {"resources": {"requests.cpu": "2"}})
    assert bigger.value.code == "endpoint_autoscaling_exceeds_quota"
    assert api.cr["spec"]["resources"] == {"requests": {"cpu": "1"}}


def test_patch_null_removes_autoscaling_whether_or_not_it_was_set(fake):
    api = fake({"autoscaling": SCALING, "resources": {"requests": {"cpu": "1"}}})
    services.endpoint_update(ALICE, "team", "predict", {"autoscaling": None})
    assert "autoscaling" not in api.cr["spec"]
    services.endpoint_update(ALICE, "team", "predict", {"autoscaling": None})  # already off: still fine
    assert "autoscaling" not in api.cr["spec"]
    assert api.patches[-1][1:] == [
        {"op": "add", "path": "/spec/autoscaling", "value": {}},
        {"op": "remove", "path": "/spec/autoscaling"},
    ]
    # Manual scaling works again.
    services.endpoint_scale(ALICE, "team", "predict", 2)
    assert api.cr["spec"]["replicas"] == 2


def test_patch_retries_when_the_endpoint_changed_in_between(fake):
    api = fake({"resources": {"requests": {"cpu": "1"}}})
    api.changed_before_write = 2
    services.endpoint_update(ALICE, "team", "predict", {"autoscaling": SCALING})
    assert api.cr["spec"]["autoscaling"] == SCALING
    assert api.patches[0][0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": "9"}


def test_an_endpoint_that_is_gone_is_a_404(fake, monkeypatch):
    fake({})

    def missing(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise NotFound()

    monkeypatch.setattr(kube, "read_endpoint", missing)
    with pytest.raises(NotFound) as gone:
        services.endpoint_scale(ALICE, "team", "predict", 2)
    assert gone.value.code == "endpoint_not_found"


# --- the view ---------------------------------------------------------------------------------------
def test_the_view_shows_bounds_replicas_and_the_last_decision():
    assert autoscaling_view({"spec": {}}) is None
    cr: dict[str, Any] = {"spec": {"autoscaling": {**SCALING, "scaleDownStabilizationSeconds": 30}}}
    assert autoscaling_view(cr) == {
        **SCALING,
        "scaleDownStabilizationSeconds": 30,
        "currentReplicas": None,
        "desiredReplicas": None,
        "currentCPUUtilization": None,
        "lastScaleTime": None,
        "lastDecision": None,
    }
    decision = {"reason": "SucceededRescale", "message": "the HPA controller was able to update", "time": "t"}
    cr["status"] = {
        "autoscaler": {
            "currentReplicas": 1,
            "desiredReplicas": 2,
            "currentCPUUtilization": 95,
            "lastScaleTime": "2026-01-01T00:00:00Z",
            "lastDecision": decision,
            "conditions": [],
        }
    }
    shown = autoscaling_view(cr)
    assert shown is not None
    assert (shown["currentReplicas"], shown["desiredReplicas"], shown["currentCPUUtilization"]) == (1, 2, 95)
    assert shown["lastDecision"] == decision


def test_the_console_status_block_shows_the_autoscaler():
    from django.template.loader import render_to_string

    view = {"status": "available", "replicas": {"available": 2}, "pods": [], "url": "u", "conditions": []}
    scaling = {
        **SCALING,
        "scaleDownStabilizationSeconds": 30,
        "currentReplicas": 2,
        "desiredReplicas": 3,
        "currentCPUUtilization": 140,
        "lastScaleTime": "2026-12-06T13:00:00Z",
        "lastDecision": {"reason": "SucceededRescale", "message": "the HPA controller was able to update", "time": "t"},
    }
    html = render_to_string("endpoints/_status.html", {"view": {**view, "autoscaling": scaling}, "badge": "ok"})
    assert "1 to 3 replicas at 60% CPU; scale-down window 30 s" in html
    assert "2 current, 3 desired" in html
    assert "140% of the request" in html
    assert "<strong>SucceededRescale</strong>: the HPA controller was able to update" in html
    plain = render_to_string("endpoints/_status.html", {"view": {**view, "autoscaling": None}, "badge": "ok"})
    assert "endpoint-autoscaling" not in plain
