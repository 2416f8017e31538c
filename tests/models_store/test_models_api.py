"""Models and the original multipart protocol against the live platform (docs/compatibility.md)."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import pytest
from kubernetes import client

from tests.inference_endpoints import GROUP, PLURAL, VERSION, endpoint_body
from tests.models_store.conftest import MIB

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db]


def put_object(s3: Any, bucket: str, key: str, data: bytes) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=data)


def endpoint_cr(admin_k8s: client.ApiClient, tenant: str, name: str, model: str, policy: str) -> None:
    body = endpoint_body(name, modelName=model, modelVersionPolicy=policy, replicas=0)
    client.CustomObjectsApi(admin_k8s).create_namespaced_custom_object(GROUP, VERSION, tenant, PLURAL, body)


def delete_endpoints(admin_k8s: client.ApiClient, tenant: str) -> None:
    custom = client.CustomObjectsApi(admin_k8s)
    for item in custom.list_namespaced_custom_object(GROUP, VERSION, tenant, PLURAL)["items"]:
        custom.delete_namespaced_custom_object(GROUP, VERSION, tenant, PLURAL, item["metadata"]["name"])


def test_list_is_one_entry_per_file_without_markers_or_root_objects(call, clean_bucket, s3):
    tenant = clean_bucket
    empty = call("alice", "get", f"/tenants/{tenant}/models")
    assert empty.status_code == 200
    assert empty.content == b'{"status": "OK", "data": {"models": []}}'
    put_object(s3, tenant, "resnet/1/model.pb", b"x" * 18)
    put_object(s3, tenant, "resnet/1/variables/", b"")
    put_object(s3, tenant, "README", b"not a model file")
    listed = call("alice", "get", f"/tenants/{tenant}/models/")
    assert listed.status_code == 200, listed.content
    assert listed.json() == {
        "status": "OK",
        "data": {"models": [{"path": "resnet/1/model.pb", "name": "resnet", "version": "1", "size": 18}]},
    }


def test_delete_then_delete_again_is_404(call, clean_bucket, s3):
    tenant = clean_bucket
    put_object(s3, tenant, "resnet/1/model.pb", b"x" * 18)
    put_object(s3, tenant, "resnet/1/variables/", b"")
    put_object(s3, tenant, "resnet/2/model.pb", b"y")
    deleted = call("alice", "delete", f"/tenants/{tenant}/models", {"modelName": "resnet", "modelVersion": 1})
    assert deleted.status_code == 200, deleted.content
    assert deleted.content == b'{"status": "DELETED", "data": {"model_path": "resnet/1/"}}'
    left = [item["Key"] for item in s3.list_objects_v2(Bucket=tenant).get("Contents", [])]
    assert left == ["resnet/2/model.pb"]
    again = call("alice", "delete", f"/tenants/{tenant}/models", {"modelName": "resnet", "modelVersion": 1})
    assert again.status_code == 404
    assert again.json()["description"] == "Model resnet/1/ does not exist"


def test_deleting_a_served_version_is_refused_unless_forced(call, clean_bucket, s3, admin_k8s):
    tenant = clean_bucket
    for key in ("resnet/1/m.pb", "resnet/2/m.pb", "bert/1/m.pb", "bert/2/m.pb"):
        put_object(s3, tenant, key, b"data")
    endpoint_cr(admin_k8s, tenant, "pinned", "resnet", "{specific{versions:1 }}")
    endpoint_cr(admin_k8s, tenant, "newest", "bert", "{latest{}}")
    try:
        refused = call("alice", "delete", f"/tenants/{tenant}/models", {"modelName": "resnet", "modelVersion": 1})
        assert refused.status_code == 409, refused.content
        assert refused.json()["code"] == "model_in_use"
        assert "409 Conflict" in refused.json()["title"]
        assert "pinned" in refused.json()["description"]
        assert s3.list_objects_v2(Bucket=tenant, Prefix="resnet/1/")["KeyCount"] == 1

        unused = call("alice", "delete", f"/tenants/{tenant}/models", {"modelName": "resnet", "modelVersion": 2})
        assert unused.status_code == 200, unused.content

        latest = call("alice", "delete", f"/tenants/{tenant}/models", {"modelName": "bert", "modelVersion": 2})
        assert latest.status_code == 409
        assert "newest" in latest.json()["description"]
        older = call("alice", "delete", f"/tenants/{tenant}/models", {"modelName": "bert", "modelVersion": 1})
        assert older.status_code == 200

        grouped = call("alice", "get", f"/tenants/{tenant}/models?view=grouped")
        assert grouped.status_code == 200, grouped.content
        assert grouped.json()["data"]["models"] == [
            {
                "name": "bert",
                "size": 4,
                "versions": [
                    {"version": "2", "size": 4, "files": [{"path": "bert/2/m.pb", "size": 4}], "endpoints": ["newest"]}
                ],
            },
            {
                "name": "resnet",
                "size": 4,
                "versions": [
                    {
                        "version": "1",
                        "size": 4,
                        "files": [{"path": "resnet/1/m.pb", "size": 4}],
                        "endpoints": ["pinned"],
                    }
                ],
            },
        ]

        bad_force = call(
            "alice", "delete", f"/tenants/{tenant}/models", {"modelName": "resnet", "modelVersion": 1, "force": "yes"}
        )
        assert bad_force.status_code == 400
        forced = call(
            "alice", "delete", f"/tenants/{tenant}/models", {"modelName": "resnet", "modelVersion": 1, "force": True}
        )
        assert forced.status_code == 200, forced.content
        assert s3.list_objects_v2(Bucket=tenant, Prefix="resnet/1/")["KeyCount"] == 0
    finally:
        delete_endpoints(admin_k8s, tenant)


def test_start_needs_every_documented_field(call, tenant):
    answer = call("alice", "post", f"/tenants/{tenant}/upload/start", {"modelName": "resnet2"})
    assert answer.status_code == 400
    assert answer.json()["title"] == "Failed data validation"
    assert "'modelVersion' is a required property" in answer.json()["description"]


def upload_query(tenant: str, upload_id: str | None, part: str | int, **extra: str) -> str:
    query = {"modelName": "resnet", "modelVersion": "1", "fileName": "big.bin", "partNumber": str(part)}
    if upload_id is not None:
        query["uploadId"] = upload_id
    query.update(extra)
    from urllib.parse import urlencode

    return f"/tenants/{tenant}/upload?{urlencode(query)}"


def test_compatibility_multipart_flow_gives_a_byte_identical_object(call, clean_bucket, s3):
    tenant = clean_bucket
    file = {"modelName": "resnet", "modelVersion": 1, "fileName": "big.bin", "key": None}
    started = call("alice", "post", f"/tenants/{tenant}/upload/start", file)
    assert started.status_code == 200, started.content
    assert started.json()["data"]["op"] == "upload_init"
    upload_id = started.json()["data"]["uploadId"]

    data = os.urandom(5 * MIB + 1) + os.urandom(777)
    chunks = [data[: 5 * MIB + 1], data[5 * MIB + 1 :]]
    parts = []
    for number, chunk in enumerate(chunks, start=1):
        sent = call("alice", "put", upload_query(tenant, upload_id, number), raw=chunk)
        assert sent.status_code == 200, sent.content
        body = sent.json()["data"]
        assert body["op"] == "upload_part"
        assert body["ETag"] == f'"{hashlib.md5(chunk).hexdigest()}"'  # noqa: S324 -- S3's ETag is an MD5
        parts.append({"ETag": body["ETag"], "PartNumber": number})

    done = call("alice", "post", f"/tenants/{tenant}/upload/done", {**file, "uploadId": upload_id, "parts": parts})
    assert done.status_code == 200, done.content
    assert done.content == b'{"status": "OK", "data": {"uploadId": "%s", "op": "upload_complete"}}' % upload_id.encode()
    stored = s3.get_object(Bucket=tenant, Key="resnet/1/big.bin")["Body"].read()
    assert len(stored) == len(data)
    assert stored == data
    assert s3.list_multipart_uploads(Bucket=tenant).get("Uploads", []) == []


def test_part_put_parameters_are_checked_before_any_upstream_call(call, tenant):
    missing = call("alice", "put", upload_query(tenant, None, 1), raw=b"x")
    assert missing.status_code == 400
    assert missing.json()["title"] == "uploadId parameter required"
    for bad in ("abc", "0", "10001"):
        answer = call("alice", "put", upload_query(tenant, "some-id", bad), raw=b"x")
        assert answer.status_code == 400
        assert answer["Content-Type"].startswith("application/json")
        assert answer.json()["code"] == "part_number_invalid"


def test_done_refuses_small_middle_parts_and_unknown_part_keys(call, clean_bucket, s3):
    tenant = clean_bucket
    file = {"modelName": "resnet", "modelVersion": 1, "fileName": "f.bin"}
    upload_id = call("alice", "post", f"/tenants/{tenant}/upload/start", file).json()["data"]["uploadId"]
    parts = []
    for number in (1, 2):
        query = upload_query(tenant, upload_id, number, fileName="f.bin")
        parts.append({"ETag": call("alice", "put", query, raw=b"tiny").json()["data"]["ETag"], "PartNumber": number})
    small = call("alice", "post", f"/tenants/{tenant}/upload/done", {**file, "uploadId": upload_id, "parts": parts})
    assert small.status_code == 400
    assert small.json()["code"] == "part_too_small"
    extra = [{**parts[0], "Size": 4}]
    unknown = call("alice", "post", f"/tenants/{tenant}/upload/done", {**file, "uploadId": upload_id, "parts": extra})
    assert unknown.status_code == 400
    assert "unknown property 'Size'" in unknown.json()["description"]


def test_abort_leaves_no_parts(call, clean_bucket, s3):
    tenant = clean_bucket
    file = {"modelName": "resnet", "modelVersion": 1, "fileName": "big.bin"}
    upload_id = call("alice", "post", f"/tenants/{tenant}/upload/start", file).json()["data"]["uploadId"]
    assert call("alice", "put", upload_query(tenant, upload_id, 1), raw=b"z" * 1000).status_code == 200
    assert len(s3.list_multipart_uploads(Bucket=tenant).get("Uploads", [])) == 1
    aborted = call("alice", "post", f"/tenants/{tenant}/upload/abort", {**file, "uploadId": upload_id})
    assert aborted.status_code == 200, aborted.content
    assert aborted.json()["data"] == {"uploadId": upload_id, "op": "upload_abort"}
    assert s3.list_multipart_uploads(Bucket=tenant).get("Uploads", []) == []
    with pytest.raises(s3.exceptions.NoSuchUpload):
        s3.list_parts(Bucket=tenant, Key="resnet/1/big.bin", UploadId=upload_id)


def test_dir_makes_a_hidden_zero_byte_marker(call, clean_bucket, s3):
    tenant = clean_bucket
    made = call(
        "alice", "post", f"/tenants/{tenant}/upload/dir", {"modelName": "mmm", "modelVersion": 1, "key": "variables"}
    )
    assert made.status_code == 200, made.content
    assert made.json()["data"]["op"] == "create_dir"
    head = s3.head_object(Bucket=tenant, Key="mmm/1/variables/")
    assert head["ContentLength"] == 0
    assert call("alice", "get", f"/tenants/{tenant}/models").json()["data"]["models"] == []
    partial = call("alice", "post", f"/tenants/{tenant}/upload/dir", {"key": "variables"})
    assert partial.status_code == 400
    assert "'modelName' is a required property" in partial.json()["description"]


def test_the_original_client_sequence_with_the_bare_token(call, clean_bucket, s3):
    """model_upload_cli.py: start, full PART_SIZE reads, an extra empty part when the size is a multiple, done."""
    tenant = clean_bucket
    part_size = 30 * MIB
    data = os.urandom(2 * part_size)
    base = f"/tenants/{tenant}"
    start = {"modelName": "resnet", "modelVersion": 1, "fileName": "saved_model.pb", "key": None}
    answer = call("carol", "post", f"{base}/upload/start", start, bare=True)
    assert answer.status_code == 200, answer.content
    upload_id = answer.json()["data"]["uploadId"]
    parts, offset, number = [], 0, 1
    while True:
        chunk = data[offset : offset + part_size]
        offset += len(chunk)
        query = upload_query(tenant, upload_id, number, fileName="saved_model.pb")
        sent = call("carol", "put", query, raw=chunk, bare=True)
        assert sent.status_code == 200, sent.content
        parts.append({"ETag": sent.json()["data"]["ETag"], "PartNumber": number})
        number += 1
        if len(chunk) < part_size:
            break
    assert len(parts) == 3  # the empty third part of a file of exactly two parts
    done = call("carol", "post", f"{base}/upload/done", {**start, "uploadId": upload_id, "parts": parts}, bare=True)
    assert done.status_code == 200, done.content
    stored = s3.get_object(Bucket=tenant, Key="resnet/1/saved_model.pb")["Body"].read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()
    listed = call("carol", "get", f"{base}/models", bare=True).json()["data"]["models"]
    assert listed == [{"path": "resnet/1/saved_model.pb", "name": "resnet", "version": "1", "size": 2 * part_size}]


TRAVERSALS = [
    ("post", "upload/start", {"modelName": "resnet", "modelVersion": 1, "fileName": "../../x"}),
    ("post", "upload/start", {"modelName": "res/net", "modelVersion": 1, "fileName": "x"}),
    ("post", "upload/start", {"modelName": "resnet", "modelVersion": 1, "fileName": "x", "key": "/etc"}),
    ("post", "upload/start", {"modelName": "resnet", "modelVersion": 1, "fileName": "a\x00b"}),
    ("post", "upload/dir", {"modelName": "resnet", "modelVersion": 1, "key": "a/../../b"}),
    ("post", "upload/done", {"modelName": "..", "modelVersion": 1, "fileName": "x", "uploadId": "u", "parts": []}),
    ("post", "upload/abort", {"modelName": "resnet", "modelVersion": 1, "fileName": "x//y", "uploadId": "u"}),
    ("delete", "models", {"modelName": "../other", "modelVersion": 1}),
    ("post", "uploads", {"modelName": "resnet", "modelVersion": 1, "path": "../../x", "size": 1}),
    ("post", "uploads", {"modelName": "resnet", "modelVersion": 1, "path": "a\nb", "size": 1}),
    # Issue 17, finding 6: backslashes reached the store (a 502; only its own normalisation stopped
    # the traversal), and their siblings: other separators, look-alike dots.
    ("post", "upload/start", {"modelName": "resnet", "modelVersion": 1, "fileName": "..\\..\\x"}),
    ("post", "uploads", {"modelName": "resnet", "modelVersion": 1, "path": "..\\..\\x", "size": 1}),
    ("post", "upload/dir", {"modelName": "resnet", "modelVersion": 1, "key": "a\\..\\..\\b"}),
    ("post", "upload/start", {"modelName": "resnet", "modelVersion": 1, "fileName": "..\uff0f..\uff0fx"}),
    ("post", "upload/start", {"modelName": "resnet", "modelVersion": 1, "fileName": "\uff0e\uff0e/x"}),
    ("post", "upload/start", {"modelName": "res\\net", "modelVersion": 1, "fileName": "x"}),
]


@pytest.mark.parametrize(("method", "route", "body"), TRAVERSALS)
def test_traversal_and_control_characters_are_400(call, tenant, s3, method, route, body):
    answer = call("alice", method, f"/tenants/{tenant}/{route}", body)
    assert answer.status_code == 400, answer.content
    assert s3.list_multipart_uploads(Bucket=tenant).get("Uploads", []) == []


@pytest.mark.parametrize("file_name", ["../escape", "/abs", "a\x01b", ".", "..\\..\\x", "\u2025/x"])
def test_part_put_with_a_bad_file_name_is_400(call, tenant, file_name):
    answer = call("alice", "put", upload_query(tenant, "u", 1, fileName=file_name), raw=b"x")
    assert answer.status_code == 400
    assert answer.json()["title"] == "Invalid parameter"


ROUTES = [
    ("get", "models", None),
    ("delete", "models", {"modelName": "resnet", "modelVersion": 1}),
    ("post", "upload/start", {"modelName": "resnet", "modelVersion": 1, "fileName": "f"}),
    ("put", "upload?modelName=resnet&modelVersion=1&fileName=f&partNumber=1&uploadId=u", b"x"),
    ("post", "upload/done", {"modelName": "resnet", "modelVersion": 1, "fileName": "f", "uploadId": "u", "parts": []}),
    ("post", "upload/abort", {"modelName": "resnet", "modelVersion": 1, "fileName": "f", "uploadId": "u"}),
    ("post", "upload/dir", {"modelName": "resnet", "modelVersion": 1, "key": "k"}),
    ("post", "uploads", {"modelName": "resnet", "modelVersion": 1, "path": "f", "size": 1}),
    ("get", "uploads/00000000-0000-0000-0000-000000000000", None),
    ("delete", "uploads/00000000-0000-0000-0000-000000000000", None),
]


@pytest.mark.parametrize("user", ["bob", "dave"])
@pytest.mark.parametrize(("method", "route", "body"), ROUTES)
def test_outsiders_get_403_on_every_route(call, tenant, s3, user, method, route, body):
    """Case 29: bob (team-b) and dave (no group) may not touch team-a's tenant; nothing reaches the bucket."""
    if isinstance(body, bytes):
        answer = call(user, method, f"/tenants/{tenant}/{route}", raw=body)
    else:
        answer = call(user, method, f"/tenants/{tenant}/{route}", body)
    assert answer.status_code == 403, answer.content
    assert answer.json()["code"] == "tenant_forbidden"
    assert s3.list_multipart_uploads(Bucket=tenant).get("Uploads", []) == []


def test_members_and_admins_may_list_and_unknown_tenants_are_404(call, tenant, api):
    """Tenant names are not secret: an unknown tenant is 404 for everyone signed in (as on the endpoint
    routes and ``GET /tenants/<name>``); an existing tenant not theirs is 403."""
    assert call("carol", "get", f"/tenants/{tenant}/models").status_code == 200
    assert call("admin", "get", f"/tenants/{tenant}/models").status_code == 200
    assert call("bob", "get", f"/tenants/{tenant}/models").status_code == 403
    for user in ("alice", "bob", "admin"):
        missing = call(user, "get", "/tenants/no-such-tenant-x/models")
        assert missing.status_code == 404, (user, missing.content)
        assert missing.json()["description"] == "Tenant no-such-tenant-x does not exist"
    assert call("admin", "get", "/tenants/Not_A_Name/models").status_code == 404
    assert api.get(f"/tenants/{tenant}/models").status_code == 401


def test_a_bad_part_body_length_is_refused(call, tenant):
    answer = call("alice", "put", upload_query(tenant, "u", 1), raw=b"x", CONTENT_LENGTH=str(6 * 1024 * 1024 * 1024))
    assert answer.status_code == 400
    assert answer.json()["code"] == "part_size_invalid"
    assert json.loads(answer.content)["title"] == "Invalid parameter"


@pytest.mark.parametrize("size", [10, 6 * MIB])
def test_a_part_for_an_unknown_upload_is_404(call, tenant, size):
    answer = call("alice", "put", upload_query(tenant, "no-such-upload", 1), raw=b"q" * size)
    assert answer.status_code == 404, answer.content
    assert answer.json()["code"] == "object_store_not_found"


@pytest.mark.parametrize("upload_id", ["apps/v1", "../x", "a b"])
def test_a_malformed_upload_id_is_the_callers_error_on_every_upload_step(call, tenant, upload_id):
    """The fuzzing found `"uploadId": "apps/v1"` answered 502: the store's "invalid request" is ours to refuse."""
    file = {"modelName": "resnet", "modelVersion": 1, "fileName": "big.bin"}
    answers = {
        "part": call("alice", "put", upload_query(tenant, upload_id, 1), raw=b"q" * 10),
        "done": call(
            "alice",
            "post",
            f"/tenants/{tenant}/upload/done",
            {**file, "uploadId": upload_id, "parts": [{"ETag": '"' + "0" * 32 + '"', "PartNumber": 1}]},
        ),
        "abort": call("alice", "post", f"/tenants/{tenant}/upload/abort", {**file, "uploadId": upload_id}),
    }
    for step, answer in answers.items():
        assert answer.status_code in (400, 404), f"{step}: {answer.status_code} {answer.content[:200]!r}"
