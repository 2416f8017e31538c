"""The MinIO identity backend (IMM_STORE_IDENTITY_BACKEND=minio) at the chokepoint, over a faked HTTP layer.

No MinIO server runs here, so these tests check what objectstore.py sends to MinIO's admin API through
the real SDK (paths, queries, and the bodies it encrypts with the admin's secret, decrypted again
here) and what it makes of MinIO's answers, with a small in-memory MinIO behind the connection pool.
That the store then enforces the policy is not proven here (README: the MinIO backend is not proven
live); the same policy document is enforced by SeaweedFS in tests/tenants/test_tenant_credentials.py.
"""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3
from minio.crypto import encrypt

from inferencemgmt import objectstore
from inferencemgmt.errors import Forbidden, NotFound, UpstreamUnavailable

pytestmark = pytest.mark.unit
ADMIN_KEY, ADMIN_SECRET = "minioadmin", "minio-admin-secret-for-tests"


class Answer:
    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.body = status, body


class FakeMinio(urllib3.PoolManager):
    """MinIO's admin API in memory: canned policies, users (a user is a key pair) and their policies."""

    def __init__(self) -> None:
        super().__init__()
        self.policies: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.refuse = False
        self.down = False

    def _plain(self, body: bytes | None, encrypted: bool) -> Any:
        if not body:
            return None
        if encrypted:
            from minio.crypto import DecryptReader

            class Stream:
                def __init__(self, data: bytes) -> None:
                    self.data, self.at = data, 0

                def read(self, size: int = -1) -> bytes:
                    size = len(self.data) - self.at if size < 0 else size
                    chunk = self.data[self.at : self.at + size]
                    self.at += len(chunk)
                    return chunk

                def stream(self, size: int = 65536) -> Any:
                    while chunk := self.read(size):
                        yield chunk

                def close(self) -> None: ...

                def release_conn(self) -> None: ...

            with DecryptReader(Stream(body), ADMIN_SECRET.encode()) as reader:  # type: ignore[arg-type]
                body = b"".join(reader.stream())
        return json.loads(body)

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> Any:  # type: ignore[override]
        if self.down:
            raise urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]
        parts = urlsplit(url)
        command = parts.path.removeprefix("/minio/admin/v3/")
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        assert kw["headers"]["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ADMIN_KEY}/")
        encrypted = command in {"add-user", "idp/builtin/policy/attach"}
        body = self._plain(kw.get("body"), encrypted)
        self.requests.append((method, command, query, body))
        answer = self._answer(method, command, query, body)
        return urllib3.HTTPResponse(
            body=io.BytesIO(answer.body), status=answer.status, preload_content=kw.get("preload_content", True)
        )

    def _answer(self, method: str, command: str, query: dict[str, str], body: Any) -> Answer:
        if self.refuse:
            return Answer(403, json.dumps({"Code": "AccessDenied", "Message": "Access Denied."}).encode())
        missing_policy = Answer(404, json.dumps({"Code": "XMinioAdminNoSuchPolicy", "Message": "no policy"}).encode())
        if (method, command) == ("PUT", "add-canned-policy"):
            self.policies[query["name"]] = body
            return Answer(200, b"")
        if (method, command) == ("GET", "info-canned-policy"):
            if query["name"] not in self.policies:
                return missing_policy
            return Answer(200, json.dumps(self.policies[query["name"]]).encode())
        if (method, command) == ("DELETE", "remove-canned-policy"):
            return Answer(200, b"") if self.policies.pop(query["name"], None) is not None else missing_policy
        if (method, command) == ("PUT", "add-user"):
            self.users[query["accessKey"]] = {"secret": body["secretKey"], "policies": []}
            return Answer(200, b"")
        if (method, command) == ("POST", "idp/builtin/policy/attach"):
            if not set(body["policies"]) <= set(self.policies):
                return missing_policy
            self.users[body["user"]]["policies"].extend(body["policies"])
            return Answer(204, b"")
        if (method, command) == ("GET", "list-users"):
            listed = {
                key: {"policyName": ",".join(u["policies"]), "status": "enabled"} for key, u in self.users.items()
            }
            return Answer(200, encrypt(json.dumps(listed).encode(), ADMIN_SECRET))
        if (method, command) == ("DELETE", "remove-user"):
            if self.users.pop(query["accessKey"], None) is None:
                return Answer(404, json.dumps({"Code": "XMinioAdminNoSuchUser", "Message": "no user"}).encode())
            return Answer(200, b"")
        raise AssertionError(f"unexpected admin call {method} {command}")


@pytest.fixture
def minio(monkeypatch: pytest.MonkeyPatch, settings: Any) -> FakeMinio:
    settings.IMM_STORE_IDENTITY_BACKEND = "minio"
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9000"
    settings.S3_IAM_ENDPOINT_URL = ""
    settings.S3_ACCESS_KEY_ID, settings.S3_SECRET_ACCESS_KEY = ADMIN_KEY, ADMIN_SECRET
    fake = FakeMinio()
    real = urllib3.PoolManager
    monkeypatch.setattr(objectstore, "_minio_client", None)
    monkeypatch.setattr(urllib3, "PoolManager", lambda *a, **k: fake)
    objectstore._minio()  # built now, on the fake pool
    monkeypatch.setattr(urllib3, "PoolManager", real)
    return fake


def test_the_identity_is_a_policy_of_exactly_read_and_list_of_the_bucket(minio):
    assert objectstore.tenant_identity_ensure("acme") is True
    assert objectstore.tenant_identity_ensure("acme") is False  # create-or-verify: written again
    assert objectstore.tenant_identity_exists("acme") is True
    assert objectstore.tenant_identity_exists("other") is False
    puts = [r for r in minio.requests if r[1] == "add-canned-policy"]
    assert [r[2] for r in puts] == [{"name": "imm-tenant-acme"}] * 2
    assert puts[0][3] == {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::acme"]},
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::acme/*"]},
        ],
    }


def test_a_key_is_a_user_with_only_the_tenants_policy_and_revoking_removes_it(minio):
    objectstore.tenant_identity_ensure("acme")
    objectstore.tenant_identity_ensure("other")
    minio.users["someone-else"] = {"secret": "x", "policies": ["readwrite"]}
    first = objectstore.tenant_key_create("acme")
    theirs = objectstore.tenant_key_create("other")
    assert minio.users[first.access_key_id] == {"secret": first.secret_access_key, "policies": ["imm-tenant-acme"]}
    add = next(r for r in minio.requests if r[1] == "add-user")
    assert add[2] == {"accessKey": first.access_key_id}
    assert add[3] == {"status": "enabled", "secretKey": first.secret_access_key}  # sent encrypted, read back here
    assert len(first.access_key_id) == 20
    assert len(first.secret_access_key) == 40
    second = objectstore.tenant_key_create("acme")
    assert objectstore.tenant_keys("acme") == sorted([first.access_key_id, second.access_key_id])
    assert objectstore.tenant_keys("other") == [theirs.access_key_id]

    assert objectstore.tenant_key_delete("acme", first.access_key_id) is True
    assert objectstore.tenant_key_delete("acme", first.access_key_id) is False
    # Only the tenant's own users can be removed through it, never another user of the store.
    assert objectstore.tenant_key_delete("acme", "someone-else") is False
    assert objectstore.tenant_key_delete("acme", theirs.access_key_id) is False
    assert set(minio.users) == {"someone-else", second.access_key_id, theirs.access_key_id}

    assert objectstore.tenant_identity_delete("acme") is True
    assert objectstore.tenant_identity_delete("acme") is False  # safe to run again
    assert set(minio.users) == {"someone-else", theirs.access_key_id}
    assert "imm-tenant-acme" not in minio.policies


def test_a_key_whose_policy_cannot_be_attached_is_removed_again(minio):
    # No policy of the tenant: MinIO refuses the attach, and no bare user may stay behind.
    with pytest.raises(NotFound) as refused:
        objectstore.tenant_key_create("acme")
    assert refused.value.code == "object_store_identity_not_found"
    assert minio.users == {}


def test_refusals_and_outages_are_domain_errors(minio):
    minio.refuse = True
    with pytest.raises(Forbidden) as refused:
        objectstore.tenant_identity_ensure("acme")
    assert refused.value.code == "object_store_identity_forbidden"
    minio.refuse, minio.down = False, True
    with pytest.raises(UpstreamUnavailable):
        objectstore.tenant_keys("acme")
