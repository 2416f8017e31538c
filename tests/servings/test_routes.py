# The generated Kubernetes models make every field Optional; these tests read fields they just asserted exist.
# mypy: disable-error-code="union-attr,index,arg-type,type-var,no-any-return,return-value,misc"
"""``/servings`` routes against the live API server: every call runs as the user (impersonation),
so Kubernetes RBAC decides: everyone authenticated reads, only the admin group writes."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client
from rest_framework.test import APIClient

from inferencemgmt.auth.identity import Identity
from servings.catalogue import shipped_templates
from tests.inference_endpoints import FORBIDDEN_EDITS, GROUP, PLURAL, VERSION, endpoint_body, forbidden_template

# Every write is audited (audit/): the record needs the database.
pytestmark = [pytest.mark.integration, pytest.mark.django_db]

ADMIN = Identity("admin@example.com", ("admin",), is_admin=True)
USER = Identity("alice@example.com", ("team-a",))


@pytest.fixture(autouse=True)
def _cluster(settings, devstack_env):
    settings.IMM_KUBECONFIG = devstack_env["IMM_KUBECONFIG"]
    settings.SERVING_TEMPLATES_NAMESPACE = "imm-servings"


def api(identity: Identity | None) -> APIClient:
    api_client = APIClient()
    if identity is not None:
        api_client.force_authenticate(user=identity)
    return api_client


def test_every_authenticated_user_lists_only_labelled_templates():
    response = api(USER).get("/servings")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "OK"
    assert {"ovms", "tf-serving"} <= set(body["data"])
    assert "kube-root-ca.crt" not in body["data"]
    assert body["data"] == sorted(body["data"])
    assert api(USER).get("/servings/").status_code == 200


def test_view_returns_the_original_data_keys():
    response = api(USER).get("/servings/tf-serving")
    assert response.status_code == 200
    data = response.json()["data"]
    assert sorted(data) == ["configMap.tmpl", "deployment.tmpl", "ingress.tmpl", "service.tmpl"]
    assert data == shipped_templates()["tf-serving"]


@pytest.mark.parametrize("name", ["no-such-serving", "kube-root-ca.crt"])
def test_unknown_or_unlabelled_is_404(name):
    response = api(USER).get(f"/servings/{name}")
    assert response.status_code == 404
    assert response.json()["code"] == "serving_not_found"


def test_anonymous_is_401_and_non_admin_cannot_write():
    assert api(None).get("/servings").status_code == 401
    response = api(USER).post("/servings/mine", shipped_templates()["tf-serving"], format="json")
    assert response.status_code == 403


def test_admin_lifecycle_with_test_render_and_in_use_refusal(admin, tenant):
    name = f"custom-{uuid.uuid4().hex[:6]}"
    good = dict(shipped_templates()["tf-serving"])
    assert api(ADMIN).post(f"/servings/{name}", good, format="json").json() == {
        "status": "CREATED",
        "data": {"name": name},
    }
    try:
        again = api(ADMIN).post(f"/servings/{name}", good, format="json")
        assert again.status_code == 409
        assert again.json()["code"] == "serving_already_exists"

        broken = {**good, "ingress.tmpl": "{{ spec.noSuchField }}"}
        refused = api(ADMIN).put(f"/servings/{name}", broken, format="json")
        assert refused.status_code == 400
        assert refused.json()["code"] == "serving_render_failed"
        assert "ingress.tmpl" in refused.json()["description"]

        changed = {**good, "service.tmpl": good["service.tmpl"].replace("port: 9000", "port: 9001")}
        assert api(ADMIN).put(f"/servings/{name}", changed, format="json").json()["status"] == "PATCHED"
        assert "port: 9001" in api(USER).get(f"/servings/{name}").json()["data"]["service.tmpl"]

        custom = client.CustomObjectsApi(admin)
        custom.create_namespaced_custom_object(GROUP, VERSION, tenant, PLURAL, endpoint_body("user", servingName=name))
        in_use = api(ADMIN).delete(f"/servings/{name}")
        assert in_use.status_code == 409
        assert in_use.json()["code"] == "serving_in_use"
        assert f"{tenant}/user" in in_use.json()["description"]
        custom.delete_namespaced_custom_object(GROUP, VERSION, tenant, PLURAL, "user")
    finally:
        deleted = api(ADMIN).delete(f"/servings/{name}")
    assert deleted.json() == {"status": "DELETED", "data": {"name": name}}
    assert api(USER).get(f"/servings/{name}").status_code == 404


@pytest.mark.parametrize("edit", sorted(FORBIDDEN_EDITS))
def test_a_template_the_restricted_profile_forbids_is_400_naming_the_field_and_not_stored(edit):
    """Finding 2 of issue 17: its pods would run in tenant namespaces with the controller's rights."""
    hostile, field = forbidden_template(edit)
    name = f"hostile-{uuid.uuid4().hex[:6]}"
    refused = api(ADMIN).post(f"/servings/{name}", hostile, format="json")
    assert refused.status_code == 400
    assert refused.json()["code"] == "serving_template_forbidden"
    assert refused.json()["title"] == "Failed data validation"
    assert refused.json()["description"].startswith(
        f"deployment.tmpl: forbidden by the restricted pod security profile: {field}: "
    )
    assert api(USER).get(f"/servings/{name}").status_code == 404


def test_an_existing_template_cannot_be_replaced_by_a_forbidden_one():
    name = f"custom-{uuid.uuid4().hex[:6]}"
    good = dict(shipped_templates()["tf-serving"])
    assert api(ADMIN).post(f"/servings/{name}", good, format="json").json()["status"] == "CREATED"
    try:
        hostile, field = forbidden_template("privileged")
        refused = api(ADMIN).put(f"/servings/{name}", hostile, format="json")
        assert refused.status_code == 400
        assert refused.json()["code"] == "serving_template_forbidden"
        assert field in refused.json()["description"]
        assert api(USER).get(f"/servings/{name}").json()["data"] == good
    finally:
        api(ADMIN).delete(f"/servings/{name}")


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("ab", None, "name"),
        ("valid-name", {"configMap.tmpl": "x"}, "service.tmpl"),
        ("valid-name", "not an object", "body"),
    ],
)
def test_bad_input_is_400_naming_the_field(name, body, field):
    payload = shipped_templates()["tf-serving"] if body is None else body
    response = api(ADMIN).post(f"/servings/{name}", payload, format="json")
    assert response.status_code == 400
    assert response.json()["description"].startswith(field)


def test_serving_exists_for_endpoint_creation():
    from servings.selectors import serving_exists

    assert serving_exists(USER, "tf-serving") is True
    assert serving_exists(USER, "kube-root-ca.crt") is False
    assert serving_exists(USER, "no-such-serving") is False
