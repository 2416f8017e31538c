"""Uploads: what a path becomes, both protocols against fakes, checksums, and resuming."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_fakes import Recorder, make_api

from imm_cli import upload
from imm_cli.http import CliError

pytestmark = pytest.mark.unit


def tree(root: Path) -> Path:
    (root / "wrapper" / "1" / "variables").mkdir(parents=True)
    (root / "wrapper" / "1" / "saved_model.pb").write_bytes(b"pb" * 10)
    (root / "wrapper" / "1" / "variables" / "data").write_bytes(b"x" * 7)
    (root / "wrapper" / "1" / "assets").mkdir()
    return root / "wrapper"


def test_a_directory_skips_wrappers_and_keeps_empty_directories(tmp_path: Path) -> None:
    work = upload.plan(tree(tmp_path))
    assert [(f.key, f.name, f.size) for f in work.files] == [(None, "saved_model.pb", 20), ("variables", "data", 7)]
    assert work.empty_dirs == ["assets"]
    assert work.total == 27


def test_a_single_file(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"abc")
    work = upload.plan(tmp_path / "m.onnx")
    assert [(f.key, f.name, f.path) for f in work.files] == [(None, "m.onnx", "m.onnx")]


def test_a_tarball_is_unpacked_safely(tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (("resnet/1/saved_model.pb", b"pb"), ("../escape", b"no")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(CliError, match="cannot unpack"):
        upload.plan(archive)
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("resnet/1/saved_model.pb")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"pb"))
        empty = tarfile.TarInfo("resnet/1/assets")
        empty.type = tarfile.DIRTYPE
        tar.addfile(empty)
    work = upload.plan(archive)
    try:
        assert [f.path for f in work.files] == ["saved_model.pb"]
        assert work.empty_dirs == ["assets"]
    finally:
        work.cleanup()
    assert not work.files[0].source.exists()


def test_part_ranges() -> None:
    assert upload.part_ranges(0, 5) == [(1, 0, 0)]
    assert upload.part_ranges(10, 5) == [(1, 0, 5), (2, 5, 5)]
    assert upload.part_ranges(11, 5) == [(1, 0, 5), (2, 5, 5), (3, 10, 1)]


class CompatServer:
    """The compatibility multipart routes, in memory; ``fail_parts`` answer 500 (every attempt)."""

    def __init__(self) -> None:
        self.parts: dict[int, bytes] = {}
        self.objects: dict[str, bytes] = {}
        self.dirs: list[str] = []
        self.fail_parts: set[int] = set()
        self.corrupt_once: set[int] = set()
        self.puts = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/upload/start"):
            self.parts = {}
            return httpx.Response(200, json={"status": "OK", "data": {"uploadId": "u1", "op": "upload_init"}})
        if path.endswith("/upload") and request.method == "PUT":
            number = int(request.url.params["partNumber"])
            self.puts += 1
            if number in self.fail_parts:
                return httpx.Response(500, json={"title": "boom"})
            self.parts[number] = request.content
            md5 = hashlib.md5(request.content).hexdigest()  # noqa: S324
            if number in self.corrupt_once:
                self.corrupt_once.discard(number)
                md5 = "0" * 32
            return httpx.Response(200, json={"status": "OK", "data": {"ETag": f'"{md5}"', "op": "upload_part"}})
        if path.endswith("/upload/done"):
            body = json.loads(request.content)
            key = f"{body['modelName']}/{body['modelVersion']}/" + (f"{body['key']}/" if body.get("key") else "")
            self.objects[key + body["fileName"]] = b"".join(self.parts[p["PartNumber"]] for p in body["parts"])
            return httpx.Response(200, json={"status": "OK", "data": {"uploadId": "u1", "op": "upload_complete"}})
        if path.endswith("/upload/dir"):
            self.dirs.append(json.loads(request.content)["key"])
            return httpx.Response(200, json={"status": "OK", "data": {"dir": {}, "op": "create_dir"}})
        return httpx.Response(404, json={"title": "404 Not Found"})


def options(**kwargs: Any) -> upload.Options:
    values: dict[str, Any] = {"part_size": 4, "parallel": 1, "via_api": True} | kwargs
    return upload.Options(tenant="t1", model="resnet", version=1, **values)


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(upload.STATE_ENV, str(tmp_path / "state"))
    return tmp_path / "state"


def test_compat_upload_of_a_tree(tmp_path: Path) -> None:
    server = CompatServer()
    api = make_api(Recorder(handler=server), tmp_path)
    summary = upload.Uploader(api, options(), announce=print).run(tree(tmp_path))
    assert server.objects == {"resnet/1/saved_model.pb": b"pb" * 10, "resnet/1/variables/data": b"x" * 7}
    assert server.dirs == ["assets"]
    assert summary.files == ["saved_model.pb", "variables/data"]
    assert summary.directories == ["assets/"]
    assert summary.sent_parts == 5 + 2


def test_a_corrupted_part_is_sent_again(tmp_path: Path) -> None:
    server = CompatServer()
    server.corrupt_once = {2}
    (tmp_path / "f").write_bytes(b"0123456789")
    upload.Uploader(make_api(Recorder(handler=server), tmp_path), options(), announce=print).run(tmp_path / "f")
    assert server.objects["resnet/1/f"] == b"0123456789"
    assert server.puts == 4


def test_an_interrupted_upload_resumes_where_it_stopped(tmp_path: Path, state_dir: Path) -> None:
    server = CompatServer()
    server.fail_parts = {3}
    source = tmp_path / "big"
    source.write_bytes(bytes(range(18)))
    api = make_api(Recorder(handler=server), tmp_path)
    with pytest.raises(Exception, match="500"):
        upload.Uploader(api, options(), announce=print).run(source)
    recorded = set(json.loads(next(state_dir.iterdir()).read_text())["files"]["big"]["parts"])
    assert {"1", "2"} <= recorded  # a part already in flight when 3 failed may be there too
    assert "3" not in recorded
    server.fail_parts = set()
    server.puts = 0
    summary = upload.Uploader(api, options(), announce=print).run(source)
    assert server.objects["resnet/1/big"] == bytes(range(18))
    assert server.puts == 5 - len(recorded)  # only the parts not recorded
    assert summary.resumed_parts == len(recorded)
    assert list(state_dir.iterdir()) == []  # finished: nothing left to resume


def test_a_changed_source_starts_over(tmp_path: Path) -> None:
    server = CompatServer()
    server.fail_parts = {2}
    source = tmp_path / "f"
    source.write_bytes(b"abcdefgh")
    api = make_api(Recorder(handler=server), tmp_path)
    with pytest.raises(Exception, match="500"):
        upload.Uploader(api, options(), announce=print).run(source)
    source.write_bytes(b"ABCDEFGHIJ")
    server.fail_parts = set()
    summary = upload.Uploader(api, options(), announce=print).run(source)
    assert server.objects["resnet/1/f"] == b"ABCDEFGHIJ"
    assert summary.resumed_parts == 0


class DirectServer:
    """The direct-upload routes plus a fake object store behind presigned URLs."""

    def __init__(self) -> None:
        self.store: dict[int, bytes] = {}
        self.size = 0
        self.part_size = 0
        self.completed: dict[str, Any] | None = None

    def state(self) -> dict[str, Any]:
        count = max(1, -(-self.size // self.part_size))
        missing = [n for n in range(1, count + 1) if n not in self.store]
        return {
            "uploadId": "d1",
            "state": "OPEN",
            "partSize": self.part_size,
            "partCount": count,
            "uploaded": [
                {"partNumber": n, "etag": f'"{hashlib.md5(d).hexdigest()}"', "size": len(d)}  # noqa: S324
                for n, d in sorted(self.store.items())
            ],
            "missingCount": len(missing),
            "missing": [{"partNumber": n, "url": f"https://store.test/p/{n}"} for n in missing[:2]],
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.url.host == "store.test":
            number = int(path.rsplit("/", 1)[1])
            self.store[number] = request.content
            return httpx.Response(200, headers={"ETag": f'"{hashlib.md5(request.content).hexdigest()}"'})  # noqa: S324
        if path == "/tenants/t1/uploads" and request.method == "POST":
            body = json.loads(request.content)
            self.size, self.part_size = body["size"], body["partSize"]
            return httpx.Response(201, json={"status": "CREATED", "data": self.state()})
        if path == "/tenants/t1/uploads/d1" and request.method == "GET":
            return httpx.Response(200, json={"status": "OK", "data": self.state()})
        if path == "/tenants/t1/uploads/d1/complete":
            self.completed = json.loads(request.content)
            return httpx.Response(201, json={"status": "CREATED", "data": {"uploadId": "d1"}})
        return httpx.Response(404, json={"title": "404 Not Found", "code": "route_not_found"})


def test_direct_upload_sends_parts_to_the_store_and_checksums_to_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = DirectServer()
    recorder = Recorder(handler=server)
    api = make_api(recorder, tmp_path)
    real_client = httpx.Client
    monkeypatch.setattr(httpx, "Client", lambda **kw: real_client(transport=httpx.MockTransport(recorder), **kw))
    source = tmp_path / "f"
    source.write_bytes(b"0123456789")
    summary = upload.Uploader(api, options(via_api=False), announce=print).run(source)
    assert summary.protocol == "direct"
    assert b"".join(server.store[n] for n in sorted(server.store)) == b"0123456789"
    assert server.completed == {
        "parts": [
            {"partNumber": n, "md5": hashlib.md5(d).hexdigest()}  # noqa: S324
            for n, d in ((1, b"0123"), (2, b"4567"), (3, b"89"))
        ]
    }
    store_puts = [r for r in recorder.requests if r.url.host == "store.test"]
    assert all("Authorization" not in r.headers for r in store_puts)  # the token never goes to the store


def test_without_direct_routes_the_compat_routes_are_used(tmp_path: Path) -> None:
    server = CompatServer()
    (tmp_path / "f").write_bytes(b"abc")
    announced: list[str] = []
    summary = upload.Uploader(
        make_api(Recorder(handler=server), tmp_path), options(via_api=False), announce=announced.append
    ).run(tmp_path / "f")
    assert summary.protocol == "api"
    assert server.objects == {"resnet/1/f": b"abc"}
    assert "compatibility routes" in announced[0]
