"""The tenant-identity steps of the provisioning saga (issue 18), with the store's IAM API faked.

The fake behaves as AWS IAM does where stores differ: a user with keys or policies cannot be
deleted, names are unique, and a caller without the right gets a bare 403 (as SeaweedFS answers).
The real store's enforcement of the policy is proven by tests/tenants/test_tenant_credentials.py.
"""

from __future__ import annotations

import base64
import json
from io import StringIO
from typing import Any

import pytest
from botocore.exceptions import ClientError
from django.core.management import call_command
from django.core.management.base import CommandError

from inferencemgmt import kube, objectstore
from inferencemgmt.errors import Forbidden
from tenants import manifests, provisioning

pytestmark = pytest.mark.unit
PLATFORM_KEY, PLATFORM_SECRET = "PLATFORMKEY", "platform-secret-never-in-a-tenant"


def _error(code: str, status: int, operation: str) -> ClientError:
    error = {"Code": code, "Message": f"{code} ({operation})"} if code else {}
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)  # type: ignore[typeddict-item]


class FakeIam:
    """Users with inline policies and access keys, as the IAM API keeps them."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.refuse = False
        self.calls: list[str] = []
        self.made = 0
        #: how many keys the user held after each key was made (AWS allows two)
        self.key_counts: list[int] = []

    def _user(self, name: str, operation: str) -> dict[str, Any]:
        self.calls.append(operation)
        if self.refuse:
            raise _error("", 403, operation)
        if name not in self.users:
            raise _error("NoSuchEntity", 404, operation)
        return self.users[name]

    def create_user(self, UserName: str) -> dict[str, Any]:  # noqa: N803 -- boto3's names
        self.calls.append("CreateUser")
        if self.refuse:
            raise _error("", 403, "CreateUser")
        if UserName in self.users:
            raise _error("EntityAlreadyExists", 409, "CreateUser")
        self.users[UserName] = {"policies": {}, "keys": {}}
        return {"User": {"UserName": UserName}}

    def put_user_policy(self, UserName: str, PolicyName: str, PolicyDocument: str) -> None:  # noqa: N803
        self._user(UserName, "PutUserPolicy")["policies"][PolicyName] = json.loads(PolicyDocument)

    def get_user(self, UserName: str) -> dict[str, Any]:  # noqa: N803
        self._user(UserName, "GetUser")
        return {"User": {"UserName": UserName}}

    def list_access_keys(self, UserName: str) -> dict[str, Any]:  # noqa: N803
        keys = self._user(UserName, "ListAccessKeys")["keys"]
        return {"AccessKeyMetadata": [{"AccessKeyId": key, "Status": "Active"} for key in keys]}

    def create_access_key(self, UserName: str) -> dict[str, Any]:  # noqa: N803
        user = self._user(UserName, "CreateAccessKey")
        self.made += 1
        key_id, secret = f"AKIA{self.made:04d}", f"secret-{self.made}"
        user["keys"][key_id] = secret
        self.key_counts.append(len(user["keys"]))
        return {"AccessKey": {"AccessKeyId": key_id, "SecretAccessKey": secret, "UserName": UserName}}

    def delete_access_key(self, UserName: str, AccessKeyId: str) -> None:  # noqa: N803
        keys = self._user(UserName, "DeleteAccessKey")["keys"]
        if AccessKeyId not in keys:
            raise _error("NoSuchEntity", 404, "DeleteAccessKey")
        del keys[AccessKeyId]

    def list_user_policies(self, UserName: str) -> dict[str, Any]:  # noqa: N803
        return {"PolicyNames": list(self._user(UserName, "ListUserPolicies")["policies"])}

    def delete_user_policy(self, UserName: str, PolicyName: str) -> None:  # noqa: N803
        policies = self._user(UserName, "DeleteUserPolicy")["policies"]
        if PolicyName not in policies:
            raise _error("NoSuchEntity", 404, "DeleteUserPolicy")
        del policies[PolicyName]

    def delete_user(self, UserName: str) -> None:  # noqa: N803
        user = self._user(UserName, "DeleteUser")
        if user["keys"] or user["policies"]:
            raise _error("DeleteConflict", 409, "DeleteUser")
        del self.users[UserName]


@pytest.fixture
def iam(monkeypatch: pytest.MonkeyPatch, settings: Any) -> FakeIam:
    settings.IMM_STORE_IDENTITY_BACKEND = "aws-iam"
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:1"
    settings.S3_ACCESS_KEY_ID, settings.S3_SECRET_ACCESS_KEY = PLATFORM_KEY, PLATFORM_SECRET
    fake = FakeIam()
    monkeypatch.setattr(objectstore, "_iam", lambda: fake)
    return fake


def tenant(name: str) -> provisioning.Tenant:
    return provisioning.Tenant(name=name, identity=None, operation_id="op-1")  # type: ignore[arg-type]


def identity_step() -> provisioning.Step:
    return next(step for step in provisioning.CREATE_STEPS if step.name == "object-store-identity")


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def test_the_identity_step_is_create_or_verify_and_grants_read_and_list_of_its_bucket_only(iam):
    step = identity_step()
    step.apply(tenant("acme"))
    step.apply(tenant("acme"))  # a retried run adopts what the first one made
    assert list(iam.users) == ["imm-tenant-acme"]
    policy = iam.users["imm-tenant-acme"]["policies"]["imm-tenant-read"]
    statements = [(s["Effect"], s["Action"], s["Resource"]) for s in policy["Statement"]]
    assert statements == [
        ("Allow", ["s3:ListBucket"], ["arn:aws:s3:::acme"]),
        ("Allow", ["s3:GetObject"], ["arn:aws:s3:::acme/*"]),
    ]
    names = [step.name for step in provisioning.CREATE_STEPS]
    assert names.index("bucket") < names.index("object-store-identity") < names.index("object-store-secret")


def test_an_adopted_identity_loses_any_other_policy(iam):
    iam.create_user(UserName="imm-tenant-acme")
    everything = {"Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]}]}
    iam.put_user_policy(UserName="imm-tenant-acme", PolicyName="wide", PolicyDocument=json.dumps(everything))
    assert objectstore.tenant_identity_ensure("acme") is False
    assert list(iam.users["imm-tenant-acme"]["policies"]) == ["imm-tenant-read"]


def test_the_secret_holds_the_identitys_one_key_and_a_retry_revokes_the_earlier_one(iam):
    identity_step().apply(tenant("acme"))
    first = decoded(provisioning.store_secret_body("acme"))
    second = decoded(provisioning.store_secret_body("acme"))  # a retried secret step
    keys = iam.users["imm-tenant-acme"]["keys"]
    assert list(keys) == [second["minio.access_key_id"]]
    assert first["minio.access_key_id"] not in keys
    assert keys[second["minio.access_key_id"]] == second["minio.access_secret_key"]
    assert PLATFORM_KEY not in second.values()
    assert PLATFORM_SECRET not in second.values()
    assert second["minio.endpoint_url"] == "http://127.0.0.1:1"


def test_removal_deletes_keys_policy_and_user_and_can_run_again(iam):
    identity_step().apply(tenant("acme"))
    provisioning.store_secret_body("acme")
    provisioning.identity_remove("acme")
    assert iam.users == {}
    provisioning.identity_remove("acme")  # deletion re-run: already gone is fine


def test_a_store_that_refuses_identities_is_a_403_and_the_undo_goes_on(iam):
    iam.refuse = True
    step = identity_step()
    with pytest.raises(Forbidden) as refused:
        step.apply(tenant("acme"))
    assert refused.value.code == "object_store_identity_forbidden"
    assert not refused.value.retryable
    step.undo(tenant("acme"), None)  # does not raise: the rollback continues with the bucket and namespace
    assert iam.calls[-1] == "ListAccessKeys"


def test_backend_none_gives_the_tenant_no_key_and_never_calls_the_store(iam, settings):
    settings.IMM_STORE_IDENTITY_BACKEND = "none"
    for step in provisioning.CREATE_STEPS:
        if step.name == "object-store-identity":
            step.apply(tenant("acme"))
            step.undo(tenant("acme"), None)
    secret = decoded(provisioning.store_secret_body("acme"))
    assert "minio.access_key_id" not in secret
    assert "minio.access_secret_key" not in secret
    assert PLATFORM_KEY not in secret.values()
    assert iam.calls == []


def test_long_tenant_names_make_unique_identity_names_within_iams_limit():
    long_a, long_b = "a" * 62 + "x", "a" * 62 + "y"
    names = {objectstore.tenant_identity_name(long_a), objectstore.tenant_identity_name(long_b)}
    assert len(names) == 2
    assert all(len(name) == 64 for name in names)
    assert objectstore.tenant_identity_name(long_a) == objectstore.tenant_identity_name(long_a)
    assert objectstore.tenant_identity_name("acme") == "imm-tenant-acme"


# --- migrate_tenant_credentials ---------------------------------------------------------------------
class FakeSecrets:
    def __init__(self, iam: FakeIam, **secrets: dict[str, Any] | None) -> None:
        self.iam = iam
        self.secrets = dict(secrets)
        self.written: list[str] = []

    def call_json(self, api_client: Any, api: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        from inferencemgmt.errors import NotFound

        if method == "list_namespace":
            return {"items": [{"metadata": {"name": name}} for name in self.secrets]}
        if method == "read_namespaced_secret":
            secret = self.secrets[args[1]]
            if secret is None:
                raise NotFound(description="secrets not found", code="kubernetes_not_found")
            return secret
        if method == "replace_namespaced_secret":
            if self.secrets[args[1]] is None:
                raise NotFound(description="secrets not found", code="kubernetes_not_found")
            self.secrets[args[1]] = args[2]
            self.written.append(args[1])
            return {}
        if method == "create_namespaced_secret":
            self.secrets[args[0]] = args[1]
            self.written.append(args[0])
            return {}
        raise AssertionError(method)


def test_migration_gives_old_tenants_their_own_key_once(iam, monkeypatch):
    platform = manifests.store_secret(
        "old", access_key=PLATFORM_KEY, secret_key=PLATFORM_SECRET, endpoint_url="http://s3", region="r"
    )
    cluster = FakeSecrets(iam, old=platform, missing=None)
    monkeypatch.setattr(kube, "own_api_client", lambda *a, **k: object())
    monkeypatch.setattr(kube, "call_json", cluster.call_json)
    out = StringIO()
    call_command("migrate_tenant_credentials", "--kubeconfig", "admin.kubeconfig", stdout=out)
    assert sorted(cluster.written) == ["missing", "old"]
    assert "2 tenants, 2 migrated, 0 already had their own key" in out.getvalue()
    for name in ("old", "missing"):
        secret = decoded(cluster.secrets[name])  # type: ignore[arg-type]
        assert PLATFORM_KEY not in secret.values()
        assert PLATFORM_SECRET not in secret.values()
        assert list(iam.users[f"imm-tenant-{name}"]["keys"]) == [secret["minio.access_key_id"]]

    again = StringIO()
    call_command("migrate_tenant_credentials", "--kubeconfig", "admin.kubeconfig", stdout=again)
    assert "2 tenants, 0 migrated, 2 already had their own key" in again.getvalue()
    assert sorted(cluster.written) == ["missing", "old"]


def test_migration_refuses_unknown_tenants_and_backend_none(iam, monkeypatch, settings):
    cluster = FakeSecrets(iam, old=None)
    monkeypatch.setattr(kube, "own_api_client", lambda *a, **k: object())
    monkeypatch.setattr(kube, "call_json", cluster.call_json)
    with pytest.raises(CommandError, match="not a tenant namespace: nope"):
        call_command("migrate_tenant_credentials", "nope", "--kubeconfig", "k", stdout=StringIO())
    settings.IMM_STORE_IDENTITY_BACKEND = "none"
    with pytest.raises(CommandError, match="none"):
        call_command("migrate_tenant_credentials", "--kubeconfig", "k", stdout=StringIO())
    assert cluster.written == []
    assert iam.users == {}
