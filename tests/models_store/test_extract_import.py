"""Server-side extraction of tarballs and imports (from another bucket path, from a URL) as Operations."""

from __future__ import annotations

import http.server
import io
import os
import tarfile
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from models_store.models import ModelVersion
from tenants import manifests

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def tarball(members: list[tuple[str, bytes | None, bytes]]) -> bytes:
    """(name, data or None for a directory, kind) -> a .tar.gz; kind b"link" makes a symlink."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if kind == b"link":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def keys_of(s3: Any, bucket: str) -> dict[str, int]:
    return {item["Key"]: item["Size"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_a_tarball_is_extracted_safely_into_the_version(call, clean_bucket, s3, operations_worker):
    tenant = clean_bucket
    weights = os.urandom(20 * 1024 * 1024)
    archive = tarball(
        [
            ("./saved_model.pb", b"graph", b""),
            ("./variables", None, b""),
            ("./variables/variables.data-00000-of-00001", weights, b""),
            ("./assets", None, b""),
            ("../../escape.txt", b"evil", b""),
            ("link", None, b"link"),
        ]
    )
    s3.put_object(Bucket=tenant, Key="uploads/resnet.tar.gz", Body=archive)
    answer = call(
        "alice",
        "post",
        f"/tenants/{tenant}/models/extract",
        {"modelName": "resnet", "modelVersion": 1, "archive": "uploads/resnet.tar.gz"},
    )
    assert answer.status_code == 200, answer.content
    result = answer.json()["data"]
    assert (result["files"], result["directories"]) == (2, 2)
    assert [item["name"] for item in result["skipped"]] == ["../../escape.txt", "link"]
    assert result["skippedCount"] == 2
    assert keys_of(s3, tenant) == {
        "resnet/1/saved_model.pb": 5,
        "resnet/1/variables/": 0,
        "resnet/1/variables/variables.data-00000-of-00001": len(weights),
        "resnet/1/assets/": 0,
    }
    stored = s3.get_object(Bucket=tenant, Key="resnet/1/variables/variables.data-00000-of-00001")["Body"].read()
    assert stored == weights
    assert ModelVersion.objects.get(tenant=tenant, name="resnet", version=1).files == 2


def test_extracting_what_is_not_an_archive_fails_with_400(call, clean_bucket, s3, operations_worker):
    tenant = clean_bucket
    s3.put_object(Bucket=tenant, Key="junk.tar", Body=b"not a tarball at all" * 100)
    body = {"modelName": "resnet", "modelVersion": 1, "archive": "junk.tar", "keepArchive": True}
    answer = call("alice", "post", f"/tenants/{tenant}/models/extract", body)
    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == "archive_invalid"
    missing = call("alice", "post", f"/tenants/{tenant}/models/extract", {**body, "archive": "nothing.tar"})
    assert missing.status_code == 404


def test_a_hostile_archive_is_refused_whole_and_the_task_list_stays_small(call, clean_bucket, s3, operations_worker):
    """Issue 17, finding 4: a few hundred bytes of .tar.bz2 (symlinks with 1,000,000-character PAX
    names) gave a 20 MB operation result and a 50 MB ``GET /tasks``."""
    tenant = clean_bucket
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:bz2", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("config.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
        for i in range(20):
            link = tarfile.TarInfo(f"{i}" + "a" * 1_000_000)
            link.type, link.linkname = tarfile.SYMTYPE, "b" * 1_000_000
            tar.addfile(link)
    hostile = buffer.getvalue()
    assert len(hostile) < 2000
    s3.put_object(Bucket=tenant, Key="uploads/hostile.tar.bz2", Body=hostile)
    body = {"modelName": "hostile", "modelVersion": 1, "archive": "uploads/hostile.tar.bz2"}
    answer = call("alice", "post", f"/tenants/{tenant}/models/extract", body)
    assert answer.status_code == 400, answer.content[:2000]
    error = answer.json()
    assert (error["code"], error["title"]) == ("archive_too_large", "Archive refused")
    assert "Nothing of it was kept" in error["description"]
    assert len(answer.content) < 1000
    # config.json had been written before the first hostile member: it is gone again, and no version.
    assert keys_of(s3, tenant) == {"uploads/hostile.tar.bz2": len(hostile)}
    assert not ModelVersion.objects.filter(tenant=tenant, name="hostile").exists()
    tasks = call("admin", "get", "/tasks?limit=200")
    assert tasks.status_code == 200
    assert len(tasks.content) < 200 * 10_000
    mine = [task for task in tasks.json()["data"]["tasks"] if task["target"] == f"{tenant}/hostile/1/"]
    assert mine
    assert mine[0]["state"] == "FAILED"
    assert mine[0]["error"]["code"] == "archive_too_large"


def test_import_copies_a_path_of_a_bucket_the_user_may_read(call, clean_bucket, s3, operations_worker):
    tenant = clean_bucket
    s3.put_object(Bucket=tenant, Key="bert/1/model.bin", Body=b"weights")
    s3.put_object(Bucket=tenant, Key="bert/1/vocab/words.txt", Body=b"a b c")
    answer = call(
        "alice",
        "post",
        f"/tenants/{tenant}/models/import",
        {"modelName": "bert-copy", "modelVersion": 2, "source": f"s3://{tenant}/bert/1/"},
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["data"]["files"] == 2
    copied = {k: v for k, v in keys_of(s3, tenant).items() if k.startswith("bert-copy/")}
    assert copied == {"bert-copy/2/model.bin": 7, "bert-copy/2/vocab/words.txt": 5}


def test_import_from_a_tenant_the_user_may_not_read_is_403(call, tenant, admin_k8s):
    """The source tenant follows the tenant rule too: 403 when it is not the caller's, 404 when it
    does not exist (tenant names are not secret; docs/api-conventions.md)."""
    other = f"mb{uuid.uuid4().hex[:10]}"  # a team-b tenant (its namespace is what makes it one)
    core = client.CoreV1Api(admin_k8s)
    core.create_namespace(manifests.namespace(other, ["team-b"], {}, "test", "platform_admin"))
    try:
        answer = call(
            "alice",
            "post",
            f"/tenants/{tenant}/models/import",
            {"modelName": "stolen", "modelVersion": 1, "source": f"s3://{other}/model/1/"},
        )
    finally:
        core.delete_namespace(other)
    assert answer.status_code == 403, answer.content
    missing = call(
        "alice",
        "post",
        f"/tenants/{tenant}/models/import",
        {"modelName": "stolen", "modelVersion": 1, "source": "s3://someone-elses-tenant/model/1/"},
    )
    assert missing.status_code == 404
    assert missing.json()["description"] == "Tenant someone-elses-tenant does not exist"
    traversal = call(
        "alice",
        "post",
        f"/tenants/{tenant}/models/import",
        {"modelName": "stolen", "modelVersion": 1, "source": f"s3://{tenant}/../x"},
    )
    assert traversal.status_code == 400


@pytest.fixture
def model_server() -> Iterator[tuple[str, bytes]]:
    data = os.urandom(3 * 1024 * 1024 + 5)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/files/model.onnx")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", data
    server.shutdown()


def test_a_url_on_a_private_address_is_refused_by_default(call, tenant, model_server):
    base, _ = model_server
    answer = call(
        "alice",
        "post",
        f"/tenants/{tenant}/models/import",
        {"modelName": "onnx", "modelVersion": 1, "source": f"{base}/files/model.onnx"},
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "source_private"


@pytest.fixture
def private_imports(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """This platform's model server is on loopback: allow it here and in the workers started after."""
    monkeypatch.setenv("IMM_MODEL_IMPORT_ALLOW_PRIVATE_ADDRESSES", "true")
    settings.IMM_MODEL_IMPORT_ALLOW_PRIVATE_ADDRESSES = True


def test_a_url_is_downloaded_into_the_version(call, clean_bucket, s3, model_server, private_imports, operations_worker):
    tenant = clean_bucket
    base, data = model_server
    answer = call(
        "alice",
        "post",
        f"/tenants/{tenant}/models/import",
        {"modelName": "onnx", "modelVersion": 1, "source": f"{base}/moved"},
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["data"]["size"] == len(data)
    assert answer.json()["data"]["key"] == "onnx/1/moved"
    assert s3.get_object(Bucket=tenant, Key="onnx/1/moved")["Body"].read() == data
