"""kube.py's typed façade: plain dicts from every function, the SDK's errors as domain errors.

The generated client runs for real down to its REST layer; only the socket is replaced (a recorder that
answers with canned bytes), so the SDK's own ``ApiException`` is raised from a real non-2xx answer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client as k8s
from kubernetes.client import rest

from inferencemgmt import kube, resources
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import BadRequest, Conflict, Forbidden, NotFound, UpstreamError, UpstreamUnavailable

pytestmark = pytest.mark.unit

ALICE = Identity("alice@example.com", ("team-a",))
CONFIG_MAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {
        "name": "triton",
        "namespace": "imm-servings",
        "resourceVersion": "42",
        "creationTimestamp": "2024-01-02T03:04:05Z",
        "labels": {"imm/serving-template": "true"},
    },
    "data": {"configMap.tmpl": "x"},
}


class _Wire:
    """The REST layer under a real ApiClient: records each request, answers with the next canned reply."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.headers = headers or {}
        self.sent: list[dict[str, Any]] = []

    def request(self, method: str, url: str, headers: Any = None, body: Any = None, **_: Any) -> rest.RESTResponse:
        self.sent.append({"method": method, "url": url, "headers": dict(headers or {}), "body": body})
        answer = urllib3.HTTPResponse(
            body=self.body, status=self.status, headers=self.headers, reason="canned", preload_content=True
        )
        return rest.RESTResponse(answer)


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point ``kube.api_client_for`` at a real ApiClient over a ``_Wire``; the test sets its reply."""

    def install(status: int, body: Any, headers: dict[str, str] | None = None) -> _Wire:
        fake = _Wire(status, body, headers)
        configuration = k8s.Configuration()
        configuration.host = "http://kube.invalid"
        api_client = k8s.ApiClient(configuration)
        api_client.rest_client = fake  # type: ignore[assignment]
        monkeypatch.setattr(kube, "api_client_for", lambda identity: api_client)
        return fake

    return install


def test_platform_functions_act_as_the_management_api_itself(wire, monkeypatch):
    """``platform_*`` use the service client (no impersonation), never the caller's."""
    sent = wire(200, {"items": [{"metadata": {"name": "t1", "creationTimestamp": "2024-01-02T03:04:05Z"}}]})
    platform_client = kube.api_client_for(ALICE)  # the wire's client, now reached only as the platform
    monkeypatch.setattr(kube, "service_api_client", lambda: platform_client)
    monkeypatch.setattr(kube, "api_client_for", lambda identity: pytest.fail("a platform read used a user's client"))
    listed = kube.platform_namespaces(label_selector="created_by=platform_admin")
    assert _plain(listed)
    assert listed["items"][0]["metadata"]["name"] == "t1"
    assert "labelSelector=created_by%3Dplatform_admin" in sent.sent[0]["url"]


def test_a_platform_read_of_a_missing_object_is_not_found(wire, monkeypatch):
    wire(404, _status(404, 'namespaces "gone" not found'))
    platform_client = kube.api_client_for(ALICE)
    monkeypatch.setattr(kube, "service_api_client", lambda: platform_client)
    with pytest.raises(NotFound) as raised:
        kube.platform_read_namespace("gone")
    assert raised.value.description == 'namespaces "gone" not found'


def _plain(value: Any) -> bool:
    """Only JSON types all the way down: no SDK models, no datetimes."""
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    return value is None or isinstance(value, str | int | float | bool)


def test_a_read_is_the_api_servers_json_with_camel_case_keys_and_string_timestamps(wire):
    sent = wire(200, CONFIG_MAP)
    found = kube.read_config_map(ALICE, "imm-servings", "triton")
    assert found == CONFIG_MAP
    assert _plain(found)
    assert found["metadata"]["resourceVersion"] == "42"
    assert found["metadata"]["creationTimestamp"] == "2024-01-02T03:04:05Z"
    assert sent.sent[0]["method"] == "GET"
    assert sent.sent[0]["url"].endswith("/api/v1/namespaces/imm-servings/configmaps/triton")


def test_a_list_is_the_list_object_with_its_continue_token(wire):
    listing = {"items": [CONFIG_MAP], "metadata": {"continue": "next-page", "resourceVersion": "7"}}
    sent = wire(200, listing)
    found = kube.config_maps(ALICE, "imm-servings", label_selector="a=b", limit=5, continue_token="this-page")
    assert found == listing
    assert _plain(found)
    url = sent.sent[0]["url"]
    assert "labelSelector=a%3Db" in url
    assert "limit=5" in url
    assert "continue=this-page" in url


def test_an_empty_page_sends_no_continue(wire):
    sent = wire(200, {"items": [], "metadata": {}})
    assert kube.service_accounts(ALICE, "t1", label_selector="robot=true", limit=10)["items"] == []
    assert "continue" not in sent.sent[0]["url"]


def test_custom_object_calls_name_the_inference_endpoint_resource_and_send_the_patch_type(wire):
    sent = wire(200, {"metadata": {"name": "e1"}, "spec": {"replicas": 2}})
    patched = kube.patch_endpoint(
        ALICE, "t1", "e1", [{"op": "remove", "path": "/spec/x"}], content_type=kube.JSON_PATCH
    )
    assert patched == {"metadata": {"name": "e1"}, "spec": {"replicas": 2}}
    request = sent.sent[0]
    assert request["method"] == "PATCH"
    assert request["url"].endswith(f"/apis/{resources.GROUP}/{resources.VERSION}/namespaces/t1/{resources.PLURAL}/e1")
    assert request["headers"]["Content-Type"] == kube.JSON_PATCH
    kube.scale_endpoint(ALICE, "t1", "e1", {"spec": {"replicas": 3}})
    assert sent.sent[1]["url"].endswith(f"/{resources.PLURAL}/e1/scale")
    assert sent.sent[1]["headers"]["Content-Type"] == kube.MERGE_PATCH


def test_a_delete_answers_a_dict_even_when_the_body_is_empty(wire):
    wire(200, b"")
    assert kube.delete_endpoint(ALICE, "t1", "e1") == {}


def test_a_pod_log_is_text(wire):
    sent = wire(200, "line one\nline two ü\n".encode())
    text = kube.pod_log(ALICE, "t1", "p1", container="server", tail_lines=5)
    assert text.splitlines() == ["line one", "line two ü"]
    assert "tailLines=5" in sent.sent[0]["url"]
    assert "container=server" in sent.sent[0]["url"]


@pytest.mark.parametrize(
    ("read", "path"),
    [
        (
            lambda: kube.deployments(ALICE, "t1", label_selector="endpoint in (a,b)"),
            "/apis/apps/v1/namespaces/t1/deployments",
        ),
        (
            lambda: kube.replica_sets(ALICE, "t1", label_selector="endpoint=a"),
            "/apis/apps/v1/namespaces/t1/replicasets",
        ),
        (lambda: kube.pods(ALICE, "t1", label_selector="endpoint=a"), "/api/v1/namespaces/t1/pods"),
        (lambda: kube.resource_quotas(ALICE, "t1"), "/api/v1/namespaces/t1/resourcequotas"),
        (lambda: kube.namespaces(ALICE, label_selector="a=b", limit=50), "/api/v1/namespaces"),
    ],
)
def test_an_endpoints_children_are_listed_as_the_caller_as_list_objects(wire, read, path):
    listing = {"items": [{"metadata": {"name": "a-1", "creationTimestamp": "2024-01-02T03:04:05Z"}}], "metadata": {}}
    sent = wire(200, listing)
    found = read()
    assert found == listing
    assert _plain(found)
    request = sent.sent[0]
    assert request["method"] == "GET"
    assert request["url"].split("?")[0].endswith(path)
    assert "continue" not in request["url"]


def test_the_label_selector_and_page_are_sent_and_omitted_when_empty(wire):
    sent = wire(200, {"items": [], "metadata": {}})
    kube.deployments(ALICE, "t1", label_selector="endpoint in (a,b)")
    assert "labelSelector=endpoint%20in%20%28a%2Cb%29" in sent.sent[0]["url"]
    kube.pods(ALICE, "t1")
    assert "?" not in sent.sent[1]["url"]
    kube.namespaces(ALICE, label_selector="a=b", limit=50, continue_token="next")
    assert "labelSelector=a%3Db" in sent.sent[2]["url"]
    assert "limit=50" in sent.sent[2]["url"]
    assert "continue=next" in sent.sent[2]["url"]


def test_events_are_found_by_the_object_they_are_about(wire):
    event = {"involvedObject": {"kind": "Pod", "name": "a-1"}, "reason": "Scheduled", "lastTimestamp": None}
    sent = wire(200, {"items": [event], "metadata": {}})
    found = kube.events(ALICE, "t1", field_selector="involvedObject.name=a-1")
    assert found["items"] == [event]
    url = sent.sent[0]["url"]
    assert url.split("?")[0].endswith("/api/v1/namespaces/t1/events")
    assert "fieldSelector=involvedObject.name%3Da-1" in url


def test_a_deployment_and_a_service_are_read_by_name(wire):
    deployment = {"metadata": {"name": "a", "generation": 3}, "status": {"updatedReplicas": 1}}
    sent = wire(200, deployment)
    assert kube.read_deployment(ALICE, "t1", "a") == deployment
    assert sent.sent[0]["url"].endswith("/apis/apps/v1/namespaces/t1/deployments/a")
    kube.read_service(ALICE, "t1", "a")
    assert sent.sent[1]["url"].endswith("/api/v1/namespaces/t1/services/a")


def test_a_missing_service_is_not_found(wire):
    wire(404, _status(404, 'services "a" not found'))
    with pytest.raises(NotFound) as raised:
        kube.read_service(ALICE, "t1", "a")
    assert raised.value.description == 'services "a" not found'


def test_the_usage_samplers_lists_are_every_namespaces_as_the_platform(wire, monkeypatch):
    sent = wire(200, {"items": [{"metadata": {"name": "a", "namespace": "t1"}}], "metadata": {}})
    platform_client = kube.api_client_for(ALICE)
    monkeypatch.setattr(kube, "service_api_client", lambda: platform_client)
    monkeypatch.setattr(kube, "api_client_for", lambda identity: pytest.fail("a platform read used a user's client"))
    found = kube.platform_deployments_everywhere(label_selector="endpoint")
    assert _plain(found)
    assert found["items"][0]["metadata"]["name"] == "a"
    assert sent.sent[0]["url"].split("?")[0].endswith("/apis/apps/v1/deployments")
    assert "labelSelector=endpoint" in sent.sent[0]["url"]
    kube.platform_resource_quotas_everywhere()
    assert sent.sent[1]["url"].endswith("/api/v1/resourcequotas")
    kube.platform_namespaces(label_selector="a=b", limit=50, continue_token="next")
    assert "limit=50" in sent.sent[2]["url"]
    assert "continue=next" in sent.sent[2]["url"]


def test_the_host_claim_leases_are_kept_as_the_platform_with_their_preconditions(wire, monkeypatch):
    lease = {"metadata": {"name": "inference-host.a-b", "uid": "u1", "resourceVersion": "7"}, "spec": {}}
    sent = wire(200, lease)
    platform_client = kube.api_client_for(ALICE)
    monkeypatch.setattr(kube, "service_api_client", lambda: platform_client)
    monkeypatch.setattr(kube, "api_client_for", lambda identity: pytest.fail("a claim used a user's client"))
    assert kube.platform_read_lease("imm-system", "inference-host.a-b") == lease
    assert sent.sent[0]["url"].endswith("/apis/coordination.k8s.io/v1/namespaces/imm-system/leases/inference-host.a-b")
    kube.platform_delete_lease("imm-system", "inference-host.a-b", preconditions={"uid": "u1"})
    assert sent.sent[1]["method"] == "DELETE"
    assert sent.sent[1]["body"]["preconditions"] == {"uid": "u1"}
    kube.platform_delete_leases("imm-system", label_selector="t=b")
    assert sent.sent[2]["url"].split("?")[0].endswith("/namespaces/imm-system/leases")
    assert "labelSelector=t%3Db" in sent.sent[2]["url"]


def _status(code: int, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [
        (404, NotFound, "kubernetes_not_found"),
        (409, Conflict, "kubernetes_conflict"),
        (422, BadRequest, "kubernetes_invalid"),
        (401, UpstreamError, "kubernetes_unauthorized"),
    ],
)
def test_the_sdks_api_exception_becomes_the_domain_error(wire, status, error_type, code):
    wire(status, _status(status, "the API server's own words"))
    with pytest.raises(error_type) as raised:
        kube.create_config_map(ALICE, "imm-servings", CONFIG_MAP)
    assert raised.value.code == code
    if status != 401:
        assert raised.value.description == "the API server's own words"


def test_an_unexpected_status_is_a_502_that_keeps_the_upstream_status(wire):
    wire(418, _status(418, "short and stout"))
    with pytest.raises(UpstreamError) as raised:
        kube.read_namespace(ALICE, "t1")
    assert raised.value.status == 502
    assert raised.value.upstream_status == 418


def test_a_transient_status_is_a_503_with_retry_after(wire, settings):
    settings.IMM_KUBE_RETRIES = 0
    wire(503, _status(503, "etcd is busy"), {"Retry-After": "7"})
    with pytest.raises(UpstreamUnavailable) as raised:
        kube.endpoints(ALICE, "t1")
    assert raised.value.retry_after == 7


def test_a_403_from_a_ready_api_server_stays_a_403(wire, monkeypatch):
    monkeypatch.setattr(kube, "_api_server_ready", lambda: True)
    wire(403, _status(403, 'configmaps "triton" is forbidden'))
    with pytest.raises(Forbidden) as raised:
        kube.delete_config_map(ALICE, "imm-servings", "triton")
    assert raised.value.code == "kubernetes_forbidden"


def test_a_403_from_a_starting_api_server_is_a_503(wire, monkeypatch):
    monkeypatch.setattr(kube, "_api_server_ready", lambda: False)
    wire(403, _status(403, "forbidden"))
    with pytest.raises(UpstreamUnavailable):
        kube.read_service_account(ALICE, "t1", "robot-1")


def test_an_endpoints_child_read_during_an_api_server_start_is_a_503_not_a_403(wire, monkeypatch):
    """The children's reads (once ``call_json``, which had no probe) now tell a starting server apart."""
    monkeypatch.setattr(kube, "_api_server_ready", lambda: False)
    wire(403, _status(403, "forbidden"))
    with pytest.raises(UpstreamUnavailable):
        kube.pods(ALICE, "t1", label_selector="endpoint=a")
    monkeypatch.setattr(kube, "_api_server_ready", lambda: True)
    with pytest.raises(Forbidden):
        kube.pods(ALICE, "t1", label_selector="endpoint=a")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-02T03:04:05Z", "2024-01-02T03:04:05+00:00"),
        ("2024-01-02T03:04:05.250000Z", "2024-01-02T03:04:05.250000+00:00"),
        (None, None),
        ("", None),
    ],
)
def test_timestamps_keep_the_form_the_api_has_always_answered(value, expected):
    assert kube.timestamp_iso(value) == expected


def test_the_api_classes_loaded_at_start_are_every_one_the_module_calls() -> None:
    """``load_api_classes`` runs at process start so no request pays a lazy import: a class called but
    missing from the list would be imported on some user's request again."""
    source = Path(kube.__file__).read_text()
    calls = re.sub(r"API_CLASSES = \(.*?\)\n", "", source, flags=re.DOTALL)  # the calls, not the list
    called = set(re.findall(r'"([A-Z][A-Za-z0-9]*Api)"', calls))
    assert "CoreV1Api" in called
    assert called == set(kube.API_CLASSES)
    kube.load_api_classes()
    assert all(name in vars(k8s) for name in kube.API_CLASSES)  # imported, not left to the lazy loader
