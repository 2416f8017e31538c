"""Archive extraction is bounded (issue 17, finding 4): hostile archives are refused whole, cheaply.

The object store is faked (a dict of keys) so that every bound can be driven with archives built
here; tests/models_store/test_extract_import.py runs the hostile archive through the real platform.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from inferencemgmt import objectstore
from inferencemgmt.errors import BadRequest
from models_store import importing
from models_store.importing import ArchiveLimits, archive_extract

pytestmark = pytest.mark.unit
PREFIX = "resnet/1/"
DEFAULTS = ArchiveLimits(members=10_000, name_length=1024, total_bytes=100 * 1024**3, ratio=100.0)


class Progress:
    def __init__(self) -> None:
        self.done = 0

    def set_total(self, total: int) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        self.done += amount


class FakeStore:
    """The few objectstore calls an extraction makes, on a dict; counts what the tar stream read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, objects: dict[str, bytes]) -> None:
        self.objects = objects
        for name in ("object_stream", "objects_iter", "object_put_empty", "object_upload", "objects_delete"):
            monkeypatch.setattr(objectstore, name, getattr(self, name))

    def object_stream(self, bucket: str, key: str) -> tuple[Any, int]:
        data = self.objects[key]
        return io.BytesIO(data), len(data)

    def objects_iter(self, bucket: str, prefix: str = "") -> Iterator[dict[str, Any]]:
        return iter([{"key": key, "size": len(v)} for key, v in self.objects.items() if key.startswith(prefix)])

    def object_put_empty(self, bucket: str, key: str) -> None:
        self.objects[key] = b""

    def object_upload(self, bucket: str, key: str, body: Any) -> None:
        chunks = []
        while chunk := body.read(64 * 1024):
            chunks.append(chunk)
        self.objects[key] = b"".join(chunks)

    def objects_delete(self, bucket: str, keys: list[str]) -> int:
        for key in keys:
            self.objects.pop(key, None)
        return len(keys)

    def extracted(self) -> dict[str, bytes]:
        return {key: value for key, value in self.objects.items() if key.startswith(PREFIX)}


def archive(
    members: list[tuple[str, bytes | None]], *, compression: str = "bz2", tar_format: int = tarfile.PAX_FORMAT
) -> bytes:
    """(name, data) -> an archive; data None makes a symlink (the hostile archive's members)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}", format=tar_format) as tar:  # type: ignore[call-overload]
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, name
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def extract(
    monkeypatch: pytest.MonkeyPatch,
    data: bytes,
    limits: ArchiveLimits = DEFAULTS,
    existing: dict[str, bytes] | None = None,
) -> tuple[FakeStore, dict[str, Any] | BadRequest]:
    """Extract ``data`` into PREFIX of a fake bucket that already holds ``existing`` (paths under PREFIX)."""
    before = {PREFIX + path: value for path, value in (existing or {}).items()}
    store = FakeStore(monkeypatch, {"upload.tar": data, **before})
    try:
        return store, archive_extract("t", "upload.tar", PREFIX, Progress(), limits)
    except BadRequest as exc:
        return store, exc


@pytest.mark.parametrize("tar_format", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT], ids=["pax", "gnu-longname"])
def test_the_hostile_archive_of_megabyte_names_is_refused_at_its_first_header(monkeypatch, tar_format):
    # The reported archive: symlinks with 1,000,000-character names, a few hundred bytes in bz2.
    hostile = archive([(f"{i}" + "a" * 1_000_000, None) for i in range(20)], tar_format=tar_format)
    assert len(hostile) < 2000
    reads: list[int] = []
    original = importing._Budgeted.read

    def counted(self: Any, size: int = -1, /) -> bytes:
        chunk = original(self, size)
        reads.append(len(chunk))
        return chunk

    monkeypatch.setattr(importing._Budgeted, "read", counted)
    store, outcome = extract(monkeypatch, hostile)
    assert isinstance(outcome, BadRequest)
    assert (outcome.status, outcome.code, outcome.title) == (400, "archive_too_large", "Archive refused")
    assert "name header" in str(outcome.description)
    assert "Nothing of it was kept." in str(outcome.description)
    assert len(str(outcome.description)) < 500
    # Refused on the first header block: the 1 MB names were never decompressed, let alone parsed.
    assert sum(reads) <= 20 * 1024
    assert store.extracted() == {}


def test_a_name_longer_than_the_setting_is_refused(monkeypatch):
    data = archive([("ok.txt", b"fine"), ("n" * 1500, b"x")])
    store, outcome = extract(monkeypatch, data)
    assert isinstance(outcome, BadRequest)
    assert outcome.code == "archive_too_large"
    assert "1500 characters" in str(outcome.description)
    assert "IMM_ARCHIVE_MAX_NAME_LENGTH" in str(outcome.description)
    assert store.extracted() == {}  # ok.txt had been written: deleted again


def test_more_members_than_allowed_is_refused_and_what_was_written_is_deleted(monkeypatch):
    data = archive([(f"f{i}.bin", b"w" * 10) for i in range(6)], compression="gz")
    limits = ArchiveLimits(members=5, name_length=1024, total_bytes=10**9, ratio=100.0)
    store, outcome = extract(monkeypatch, data, limits)
    assert isinstance(outcome, BadRequest)
    assert outcome.code == "archive_too_large"
    assert "more than 5 members (IMM_ARCHIVE_MAX_MEMBERS)" in str(outcome.description)
    assert store.extracted() == {}
    assert "upload.tar" in store.objects  # the archive itself is kept


def test_an_archive_that_unpacks_to_more_than_the_ratio_allows_is_refused_without_unpacking_it(monkeypatch):
    zeros = b"\0" * (8 * 1024 * 1024)
    data = archive([("weights.bin", zeros)], compression="gz")
    assert len(data) * 100 + importing.RATIO_ALLOWANCE_BYTES < len(zeros)
    store, outcome = extract(monkeypatch, data)
    assert isinstance(outcome, BadRequest)
    assert outcome.code == "archive_too_large"
    assert "100 times its size (IMM_ARCHIVE_MAX_RATIO)" in str(outcome.description)
    assert store.extracted() == {}


def test_an_archive_larger_than_the_total_allowed_is_refused(monkeypatch):
    data = archive([("a.bin", b"a" * 4000), ("b.bin", b"b" * 4000)], compression="")
    limits = ArchiveLimits(members=10, name_length=1024, total_bytes=5000, ratio=100.0)
    store, outcome = extract(monkeypatch, data, limits)
    assert isinstance(outcome, BadRequest)
    assert outcome.code == "archive_too_large"
    assert "more than 5000 bytes (IMM_ARCHIVE_MAX_BYTES)" in str(outcome.description)
    assert store.extracted() == {}


def test_a_refusal_says_which_earlier_files_it_overwrote(monkeypatch):
    data = archive([("config.json", b"new"), ("new.bin", b"n"), ("x" * 2000, b"x")], compression="gz")
    store, outcome = extract(monkeypatch, data, existing={"config.json": b"old", "kept.bin": b"k"})
    assert isinstance(outcome, BadRequest)
    assert "1 that existed before were overwritten" in str(outcome.description)
    assert "resnet/1/config.json" in str(outcome.description)
    # What it created is gone; what was there before is still there (config.json as extracted).
    assert store.extracted() == {PREFIX + "config.json": b"new", PREFIX + "kept.bin": b"k"}


def test_a_damaged_archive_is_invalid_and_leaves_nothing(monkeypatch):
    data = archive([("a.bin", b"a" * 50_000), ("b.bin", b"b" * 50_000)], compression="")
    store, outcome = extract(monkeypatch, data[:-30_000] + b"\xff" * 512)
    assert isinstance(outcome, BadRequest)
    assert outcome.code == "archive_invalid"
    assert store.extracted() == {}


def test_a_zip_is_not_an_archive_we_extract(monkeypatch):
    # Only tar (plain, gz, bz2, xz) is supported; a zip (bomb or not) is refused before any write.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("a" * 5000, b"\0" * 1_000_000)
    store, outcome = extract(monkeypatch, buffer.getvalue())
    assert isinstance(outcome, BadRequest)
    assert outcome.code == "archive_invalid"
    assert store.extracted() == {}


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
def test_every_supported_compression_extracts(monkeypatch, compression):
    data = archive([("./saved_model.pb", b"graph"), ("variables/v.data", b"v" * 100_000)], compression=compression)
    store, outcome = extract(monkeypatch, data)
    assert outcome == {"files": 2, "directories": 0, "skipped": [], "skippedCount": 0}
    assert store.extracted() == {PREFIX + "saved_model.pb": b"graph", PREFIX + "variables/v.data": b"v" * 100_000}


def test_skipped_members_are_counted_and_only_the_first_few_named(monkeypatch):
    data = archive([(f"link-{i}-" + "l" * 900, None) for i in range(50)] + [("model.onnx", b"m")])
    store, outcome = extract(monkeypatch, data)
    assert isinstance(outcome, dict)
    assert (outcome["files"], outcome["skippedCount"], len(outcome["skipped"])) == (1, 50, 10)
    assert all(len(item["name"]) < 250 for item in outcome["skipped"])
    assert outcome["skipped"][0]["name"].startswith("link-0-")
    assert store.extracted() == {PREFIX + "model.onnx": b"m"}
