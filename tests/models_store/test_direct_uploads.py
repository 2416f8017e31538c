"""Direct-to-storage uploads: presigned part URLs, resume from the parts listed, verified completion."""

from __future__ import annotations

import hashlib
import os

import pytest
import requests

from models_store.models import DirectUpload, ModelVersion
from tests.models_store.conftest import MIB

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 -- the store's part ETag is an MD5


def put_part(url: str, data: bytes) -> requests.Response:
    """What a client does with a presigned URL: the bytes go to the store, not through the API."""
    return requests.put(url, data=data, timeout=60)


def test_direct_upload_resumes_after_two_of_five_parts(call, clean_bucket, s3, operations_worker):
    tenant = clean_bucket
    data = os.urandom(4 * 5 * MIB + 4321)
    pieces = [data[i : i + 5 * MIB] for i in range(0, len(data), 5 * MIB)]
    started = call(
        "alice",
        "post",
        f"/tenants/{tenant}/uploads",
        {"modelName": "bert", "modelVersion": 3, "path": "weights/model.bin", "size": len(data), "partSize": 5 * MIB},
    )
    assert started.status_code == 200, started.content
    plan = started.json()["data"]
    assert started.json()["status"] == "CREATED"
    assert (plan["key"], plan["partCount"], plan["partSize"]) == ("bert/3/weights/model.bin", 5, 5 * MIB)
    assert [p["size"] for p in plan["missing"]] == [5 * MIB] * 4 + [4321]
    for part in plan["missing"][:2]:  # the client stops after two parts
        assert put_part(part["url"], pieces[part["partNumber"] - 1]).status_code == 200

    resumed = call("alice", "get", f"/tenants/{tenant}/uploads/{plan['uploadId']}")
    assert resumed.status_code == 200, resumed.content
    state = resumed.json()["data"]
    assert [(p["partNumber"], p["size"]) for p in state["uploaded"]] == [(1, 5 * MIB), (2, 5 * MIB)]
    assert [p["partNumber"] for p in state["missing"]] == [3, 4, 5]
    for part in state["missing"]:
        assert put_part(part["url"], pieces[part["partNumber"] - 1]).status_code == 200

    checksums = [{"partNumber": n, "md5": md5(piece)} for n, piece in enumerate(pieces, start=1)]
    done = call("alice", "post", f"/tenants/{tenant}/uploads/{plan['uploadId']}/complete", {"parts": checksums})
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "CREATED"
    assert done.json()["data"]["size"] == len(data)
    stored = s3.get_object(Bucket=tenant, Key="bert/3/weights/model.bin")["Body"].read()
    assert stored == data
    assert DirectUpload.objects.get(pk=plan["uploadId"]).state == DirectUpload.State.COMPLETED
    version = ModelVersion.objects.get(tenant=tenant, name="bert", version=3)
    assert (version.files, version.bytes, version.recorded_by) == (1, len(data), "alice@example.com")
    again = call("alice", "post", f"/tenants/{tenant}/uploads/{plan['uploadId']}/complete", {"parts": checksums})
    assert again.status_code == 409


def test_a_checksum_mismatch_is_refused_and_the_upload_stays_open(call, clean_bucket, s3, operations_worker):
    tenant = clean_bucket
    data = b"model bytes"
    plan = call(
        "alice", "post", f"/tenants/{tenant}/uploads", {"modelName": "tiny", "modelVersion": 1, "path": "m", "size": 11}
    ).json()["data"]
    assert plan["partCount"] == 1
    assert put_part(plan["missing"][0]["url"], data).status_code == 200
    url = f"/tenants/{tenant}/uploads/{plan['uploadId']}/complete"
    wrong = call("alice", "post", url, {"parts": [{"partNumber": 1, "md5": md5(b"other bytes")}]})
    assert wrong.status_code == 400, wrong.content
    assert wrong.json()["code"] == "upload_checksum_mismatch"
    assert s3.list_objects_v2(Bucket=tenant).get("KeyCount", 0) == 0
    assert call("alice", "get", f"/tenants/{tenant}/uploads/{plan['uploadId']}").json()["data"]["state"] == "OPEN"
    incomplete = call("alice", "post", url, {"parts": []})
    assert incomplete.status_code == 400
    right = call("alice", "post", url, {"parts": [{"partNumber": 1, "md5": md5(data)}]})
    assert right.status_code == 200, right.content
    assert s3.get_object(Bucket=tenant, Key="tiny/1/m")["Body"].read() == data


def test_a_part_of_the_wrong_size_fails_completion(call, clean_bucket, operations_worker):
    tenant = clean_bucket
    plan = call(
        "alice", "post", f"/tenants/{tenant}/uploads", {"modelName": "tiny", "modelVersion": 2, "path": "m", "size": 10}
    ).json()["data"]
    short = b"12345"
    assert put_part(plan["missing"][0]["url"], short).status_code == 200
    answer = call(
        "alice",
        "post",
        f"/tenants/{tenant}/uploads/{plan['uploadId']}/complete",
        {"parts": [{"partNumber": 1, "md5": md5(short)}]},
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "upload_size_mismatch"


def test_abort_cleans_up_and_bob_cannot_touch_it(call, clean_bucket, s3):
    tenant = clean_bucket
    plan = call(
        "alice",
        "post",
        f"/tenants/{tenant}/uploads",
        {"modelName": "bert", "modelVersion": 1, "path": "x.bin", "size": 6 * MIB},
    ).json()["data"]
    assert put_part(plan["missing"][0]["url"], b"a" * 1000).status_code == 200
    upload = f"/tenants/{tenant}/uploads/{plan['uploadId']}"
    assert call("bob", "get", upload).status_code == 403
    assert call("bob", "delete", upload).status_code == 403
    assert len(s3.list_multipart_uploads(Bucket=tenant).get("Uploads", [])) == 1
    aborted = call("alice", "delete", upload)
    assert aborted.status_code == 200, aborted.content
    assert aborted.json() == {"status": "DELETED", "data": {"uploadId": plan["uploadId"]}}
    assert s3.list_multipart_uploads(Bucket=tenant).get("Uploads", []) == []
    assert call("alice", "get", upload).json()["data"]["state"] == "ABORTED"


def test_unknown_upload_ids_are_404(call, tenant):
    for upload_id in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        answer = call("alice", "get", f"/tenants/{tenant}/uploads/{upload_id}")
        assert answer.status_code == 404
        assert answer.json()["code"] == "upload_not_found"


def test_stale_uploads_of_both_protocols_are_aborted(call, clean_bucket, s3):
    from datetime import timedelta

    from models_store.jobs import uploads_abort_stale

    tenant = clean_bucket
    call("alice", "post", f"/tenants/{tenant}/upload/start", {"modelName": "old", "modelVersion": 1, "fileName": "f"})
    call("alice", "post", f"/tenants/{tenant}/uploads", {"modelName": "old", "modelVersion": 1, "path": "g", "size": 1})
    assert len(s3.list_multipart_uploads(Bucket=tenant).get("Uploads", [])) == 2
    assert uploads_abort_stale(timedelta(hours=1), tenant) == 0
    assert uploads_abort_stale(timedelta(seconds=0), tenant) == 2
    assert s3.list_multipart_uploads(Bucket=tenant).get("Uploads", []) == []
    assert DirectUpload.objects.get(tenant=tenant).state == DirectUpload.State.ABORTED


def test_completion_can_be_followed_as_a_task(call, clean_bucket, s3, operations_worker):
    import time

    tenant = clean_bucket
    plan = call(
        "alice", "post", f"/tenants/{tenant}/uploads", {"modelName": "tiny", "modelVersion": 5, "path": "m", "size": 3}
    ).json()["data"]
    assert put_part(plan["missing"][0]["url"], b"abc").status_code == 200
    answer = call(
        "alice",
        "post",
        f"/tenants/{tenant}/uploads/{plan['uploadId']}/complete",
        {"parts": [{"partNumber": 1, "md5": md5(b"abc")}]},
        HTTP_PREFER="respond-async",
    )
    assert answer.status_code == 202, answer.content
    task = answer.json()["data"]["task"]
    assert answer["Location"] == task["url"]
    deadline = time.monotonic() + 30
    state = task["state"]
    while state not in ("SUCCEEDED", "FAILED") and time.monotonic() < deadline:
        time.sleep(0.2)
        followed = call("alice", "get", f"/tasks/{task['id']}").json()["data"]
        state = followed["state"]
    assert state == "SUCCEEDED"
    assert followed["kind"] == "models.upload_complete"
    assert followed["result"]["key"] == "tiny/5/m"
    assert s3.get_object(Bucket=tenant, Key="tiny/5/m")["Body"].read() == b"abc"


def test_a_version_beyond_int64_is_refused_before_anything_is_written(call, clean_bucket):
    """It overflowed the upload row's BigIntegerField: a 500 (found with the schema's version bounds)."""
    body = {"modelName": "big", "modelVersion": 2**63, "path": "m", "size": 11}
    answer = call("alice", "post", f"/tenants/{clean_bucket}/uploads", body)
    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == "validation_failed"
    assert answer.json()["description"] == f"modelVersion: {2**63} is greater than the maximum of {2**63 - 1}"
    assert not DirectUpload.objects.filter(tenant=clean_bucket).exists()
