"""Prometheus metrics: what a scripted run of requests leaves in ``GET /metrics``, who may read it,
bounded labels, upstream calls counted at the chokepoints, and an operation's duration counted once."""

from __future__ import annotations

import threading
import time
import urllib.request
import uuid
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from inferencemgmt import metrics
from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import NotFound, UpstreamUnavailable
from inferencemgmt.kube import kube_errors
from inferencemgmt.operations.execution import execute_operation
from inferencemgmt.operations.models import Operation
from inferencemgmt.tests.test_operations import FakeTask, RetryRequested

pytestmark = [pytest.mark.unit, pytest.mark.django_db]

SCRAPE_TOKEN = "scrape-" + "x" * 40
ADMIN = Identity("admin@example.com", ("admin",))
ALICE = Identity("alice@example.com", ("team-a",))


@pytest.fixture
def scrape(settings: Any, api: Any) -> Any:
    settings.IMM_METRICS_SCRAPE_TOKEN = SCRAPE_TOKEN

    def read() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        response = api.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {SCRAPE_TOKEN}")
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/plain")
        samples = {}
        for family in text_string_to_metric_families(response.content.decode()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    return read


def _observations(metric: Any) -> float:
    """How many observations a histogram (or one labelled child) holds."""
    return float(sum(s.value for family in metric.collect() for s in family.samples if s.name.endswith("_count")))


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _token(issuer: Any, identity: Identity) -> str:
    return f"Bearer {issuer.mint(email=identity.username, groups=list(identity.groups))}"


def test_scraped_counts_match_a_scripted_run_by_route_method_and_status(api, issuer, scrape):
    before = scrape()
    for _ in range(3):
        assert api.get("/tasks", HTTP_AUTHORIZATION=_token(issuer, ALICE)).status_code == 200
    for _ in range(2):
        assert api.get("/tasks/", HTTP_AUTHORIZATION="Bearer not-a-token").status_code == 401
    assert api.get(f"/tasks/{uuid.uuid4()}", HTTP_AUTHORIZATION=_token(issuer, ALICE)).status_code == 404
    assert api.delete("/tasks", HTTP_AUTHORIZATION=_token(issuer, ALICE)).status_code == 405
    assert api.get("/no/such/route").status_code == 404
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    total = "imm_api_requests_total"
    assert delta(total, route="tasks", method="GET", status="200") == 3
    assert delta(total, route="tasks", method="GET", status="401") == 2
    assert delta(total, route="tasks/<operation_id>", method="GET", status="404") == 1
    assert delta(total, route="tasks", method="DELETE", status="405") == 1
    assert delta(total, route="<unmatched>", method="GET", status="404") == 1
    # The first scrape is itself counted by the second one.
    assert delta(total, route="metrics", method="GET", status="200") == 1
    assert delta("imm_api_request_duration_seconds_count", route="tasks", method="GET") == 5
    # Between requests only the scrape itself is in flight.
    assert _value(after, "imm_api_requests_in_flight") == 1


def test_label_cardinality_does_not_grow_with_tenants_or_paths(api, issuer, scrape):
    token = _token(issuer, ALICE)
    api.get(f"/tasks/{uuid.uuid4()}", HTTP_AUTHORIZATION=token)
    api.get(f"/tenants/warmup-{uuid.uuid4().hex[:8]}/endpoints/e/events", HTTP_AUTHORIZATION=token)
    scrape()  # a scrape is counted after it answers: the next one shows its series
    series_before = set(scrape())
    names = [f"tenant-{uuid.uuid4().hex[:10]}" for _ in range(25)]
    for name in names:
        api.get(f"/tasks/{uuid.uuid4()}", HTTP_AUTHORIZATION=token)
        api.get(f"/tenants/{name}/endpoints/e/events", HTTP_AUTHORIZATION=token)
    series_after = set(scrape())
    assert series_after == series_before
    templated = [key for key in series_after if dict(key[1]).get("route") == "tenants/<tenant>/endpoints/<name>/events"]
    assert templated  # the tenant routes were counted, under their template
    text = api.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {SCRAPE_TOKEN}").content.decode()
    assert not [name for name in names if name in text]


def test_metrics_route_answers_admins_and_the_scrape_token_only(api, issuer, settings):
    settings.IMM_METRICS_SCRAPE_TOKEN = SCRAPE_TOKEN
    missing = api.get("/metrics")
    assert missing.status_code == 401
    assert missing.json()["code"] == "auth_token_missing"
    wrong = api.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {SCRAPE_TOKEN}x")
    assert wrong.status_code == 401
    assert set(wrong.json()) == {"title", "description", "code"}
    member = api.get("/metrics", HTTP_AUTHORIZATION=_token(issuer, ALICE))
    assert member.status_code == 403
    assert member.json()["code"] == "forbidden"
    admin = api.get("/metrics", HTTP_AUTHORIZATION=_token(issuer, ADMIN))
    assert admin.status_code == 200
    assert b"imm_api_requests_total" in admin.content
    assert api.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {SCRAPE_TOKEN}").status_code == 200


def test_without_a_scrape_token_setting_no_bearer_value_is_a_scrape_token(api, settings):
    settings.IMM_METRICS_SCRAPE_TOKEN = ""
    assert not metrics.scrape_token_matches("", "")
    assert api.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_route_templates_never_carry_values():
    assert metrics.route_label(r"^tenants/(?P<tenant>[^/]+)/endpoints/(?P<name>[^/]+)/replicas/?$") == (
        "tenants/<tenant>/endpoints/<name>/replicas"
    )
    assert metrics.route_label("console/tenants/<str:tenant>/") == "console/tenants/<str:tenant>/"
    assert metrics.route_label("") == metrics.UNMATCHED


def test_kubernetes_calls_are_counted_by_outcome_at_the_chokepoint():
    def count(outcome: str) -> float:
        return float(metrics.UPSTREAM_CALLS.labels("kubernetes", outcome)._value.get())

    before = {outcome: count(outcome) for outcome in ("ok", "rejected", "error")}
    with kube_errors():
        pass
    with pytest.raises(NotFound), kube_errors():
        raise ApiException(status=404, reason="Not Found")
    with pytest.raises(UpstreamUnavailable), kube_errors():
        raise ApiException(status=503, reason="Service Unavailable")
    assert {outcome: count(outcome) - before[outcome] for outcome in before} == {"ok": 1, "rejected": 1, "error": 1}


def _operation() -> Operation:
    return Operation.objects.create(
        kind="tests.metrics", target="t", requested_by=ALICE.username, requested_identity=ALICE.as_record()
    )


def test_an_operations_duration_is_recorded_once_even_when_its_message_comes_again():
    histogram = metrics.OPERATION_DURATION.labels("tests.metrics")
    succeeded = metrics.OPERATIONS.labels("tests.metrics", "SUCCEEDED")
    retries = metrics.OPERATION_RETRIES.labels("tests.metrics")
    waits = metrics.OPERATION_QUEUE_WAIT.labels("tests.metrics")

    def observations() -> float:
        return _observations(histogram)

    def waited() -> float:
        return _observations(waits)

    counts = (observations(), succeeded._value.get(), retries._value.get(), waited())
    operation = _operation()
    attempts = []

    def body(run: Any) -> dict[str, str]:
        attempts.append(1)
        if len(attempts) == 1:
            raise UpstreamUnavailable("kubernetes", "connection refused")
        return {"done": "yes"}

    with pytest.raises(RetryRequested):
        execute_operation(FakeTask(), str(operation.pk), body)
    execute_operation(FakeTask(), str(operation.pk), body)
    execute_operation(FakeTask(), str(operation.pk), body)  # a duplicate message: nothing to do
    operation.refresh_from_db()
    assert operation.state == Operation.State.SUCCEEDED
    assert len(attempts) == 2
    assert observations() - counts[0] == 1
    assert succeeded._value.get() - counts[1] == 1
    assert retries._value.get() - counts[2] == 1
    assert waited() - counts[3] == 2  # each claim from PENDING waited in the queue


class _Reconciler:
    """Answers from a script: a state word, or an error to raise."""

    def __init__(self, script: dict[str, Any]) -> None:
        self.script = script

    def reconcile(self, namespace: str, name: str) -> str:
        answer = self.script[f"{namespace}/{name}"]
        if isinstance(answer, Exception):
            raise answer
        return str(answer)


class _Elector:
    def __init__(self) -> None:
        self.leading = threading.Event()


def test_reconciles_are_counted_by_result_with_retries_depth_and_leader():
    from servings.controller.loop import Controller

    elector = _Elector()
    script = {
        "t/ready": "Ready",
        "t/flaky": UpstreamUnavailable("kubernetes", "down"),
        "t/bug": KeyError("x"),
        "t/odd": "SomethingNew",
    }
    controller = Controller(
        None,
        reconciler=_Reconciler(script),  # type: ignore[arg-type]
        elector=elector,  # type: ignore[arg-type]
        templates_namespace="imm-servings",
    )

    def value(metric: Any) -> float:
        return float(metric._value.get())

    results = ("Ready", "error", "crashed", "other")
    before = {result: value(metrics.RECONCILES.labels(result)) for result in results}
    retries = value(metrics.WORKQUEUE_RETRIES)
    durations = _observations(metrics.RECONCILE_DURATION)
    controller.observe()
    assert value(metrics.LEADER) == 0
    elector.leading.set()
    for key in script:
        controller.queue.add(key)
    controller.observe()
    assert value(metrics.LEADER) == 1
    assert value(metrics.WORKQUEUE_DEPTH) == 4
    worker = threading.Thread(target=controller._work)
    worker.start()
    deadline = time.monotonic() + 10
    while len(controller.queue) and time.monotonic() < deadline:
        time.sleep(0.01)
    controller.stop()
    worker.join(5)
    after = {result: value(metrics.RECONCILES.labels(result)) - before[result] for result in results}
    assert after == {"Ready": 1, "error": 1, "crashed": 1, "other": 1}
    assert value(metrics.WORKQUEUE_RETRIES) - retries == 2
    assert _observations(metrics.RECONCILE_DURATION) - (durations) == 4


def test_the_worker_and_controller_port_serves_the_text_format():
    port = metrics.serve(0, "127.0.0.1")
    assert metrics.serve(0, "127.0.0.1") == port  # one server per process
    metrics.OPERATIONS.labels("tests.port", "SUCCEEDED").inc()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    assert 'imm_operations_total{kind="tests.port",state="SUCCEEDED"} 1.0' in text
