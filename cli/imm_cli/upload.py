"""``imm upload``: a file, a directory tree (empty directories kept) or a tarball, resumable.

What goes where (docs/compatibility.md): a single file becomes ``<model>/<version>/<name>``; a
tarball is unpacked (safely: no links out, no absolute paths) and uploaded as a directory; a
directory is walked down through wrapper levels (no files, exactly one subdirectory), as the
original client did, and every file lands at ``<model>/<version>/<relative path>``; empty leaf
directories become zero-byte ``<key>/`` markers (``POST upload/dir``).

Two protocols:

* direct (default): ``POST /tenants/<t>/uploads`` plans the parts and hands out presigned part URLs;
  the bytes go straight to the object store, in parallel; ``.../complete`` checks every part's size
  and MD5 on the server. A server without these routes makes the CLI fall back to the other one.
* ``--via-api``: the original multipart routes (``upload/start``, ``PUT upload``, ``upload/done``), the
  part bytes through the API. Each part's ETag (the store's MD5 of it) is compared with our own.

Resume: every finished part is written to a state file (``$IMM_UPLOAD_STATE_DIR``, default
``~/.local/state/imm/uploads``) before the next is counted, and the multipart upload is left open on
an interruption (Ctrl-C, a lost connection). Running the same command again skips the parts already
stored. A changed source file (size or mtime) starts over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from imm_cli import tasks
from imm_cli.http import Api, ApiError, CliError, ssl_context

MIB = 1024 * 1024
DEFAULT_PART_MB = 30
MIN_PART_MB, MAX_PART_MB = 5, 5000
PART_ATTEMPTS = 3
STATE_ENV = "IMM_UPLOAD_STATE_DIR"


@dataclass(frozen=True)
class FileItem:
    """One local file and where it goes inside ``<model>/<version>/``."""

    source: Path
    key: str | None  # the directory part, as the original protocol's ``key`` (None at the top)
    name: str
    size: int

    @property
    def path(self) -> str:
        return f"{self.key}/{self.name}" if self.key else self.name


@dataclass
class Plan:
    files: list[FileItem]
    empty_dirs: list[str]
    cleanup: Callable[[], None] = field(default=lambda: None)

    @property
    def total(self) -> int:
        return sum(item.size for item in self.files)


def _safe_members(archive: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    for member in archive.getmembers():
        if member.isdir() or member.isfile():
            yield member


def unpack(tarball: Path, into: Path) -> None:
    """Extract regular files and directories only, refusing paths that leave ``into``."""
    with tarfile.open(tarball) as archive:
        archive.extractall(into, members=_safe_members(archive), filter="data")


def descend(root: Path) -> Path:
    """Skip wrapper directories (no files, exactly one subdirectory), as the original client did."""
    while True:
        entries = list(root.iterdir())
        dirs = [entry for entry in entries if entry.is_dir()]
        if len(entries) == 1 and len(dirs) == 1:
            root = dirs[0]
            continue
        return root


def walk(root: Path) -> tuple[list[FileItem], list[str]]:
    """Files (sorted) and empty leaf directories of a tree, relative to ``root`` (POSIX separators)."""
    files: list[FileItem] = []
    empty: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        relative = Path(dirpath).relative_to(root).as_posix()
        key = None if relative == "." else relative
        regular = [name for name in sorted(filenames) if (Path(dirpath) / name).is_file()]
        for name in regular:
            source = Path(dirpath) / name
            files.append(FileItem(source=source, key=key, name=name, size=source.stat().st_size))
        if not dirnames and not regular and key is not None:
            empty.append(key)
    return files, empty


def plan(path: Path) -> Plan:
    """What to upload for PATH: a file, a tarball (unpacked to a temporary directory) or a tree."""
    if not path.exists():
        raise CliError(f"{path} does not exist")
    if path.is_file() and tarfile.is_tarfile(path):
        tmp = Path(tempfile.mkdtemp(prefix="imm-upload-"))
        try:
            unpack(path, tmp)
        except (tarfile.TarError, OSError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise CliError(f"cannot unpack {path}: {exc}") from None
        files, empty = walk(descend(tmp))
        return Plan(files, empty, cleanup=lambda: shutil.rmtree(tmp, ignore_errors=True))
    if path.is_file():
        return Plan([FileItem(source=path, key=None, name=path.name, size=path.stat().st_size)], [])
    if path.is_dir():
        files, empty = walk(descend(path))
        if not files and not empty:
            raise CliError(f"{path} holds nothing to upload")
        return Plan(files, empty)
    raise CliError(f"{path} is neither a file nor a directory")


def part_ranges(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """``(number, offset, length)`` of every part; an empty file is one empty part."""
    if size == 0:
        return [(1, 0, 0)]
    return [
        (index + 1, offset, min(part_size, size - offset)) for index, offset in enumerate(range(0, size, part_size))
    ]


def read_part(source: Path, offset: int, length: int) -> bytes:
    with source.open("rb") as handle:
        handle.seek(offset)
        data = handle.read(length)
    if len(data) != length:
        raise CliError(f"{source} changed while uploading (short read)")
    return data


# --- resume state -------------------------------------------------------------------------------------


class State:
    """The resume record of one ``imm upload`` invocation (same source, target and API)."""

    def __init__(self, path: Path, signature: dict[str, Any], protocol: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        data: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text())
        if data.get("signature") != signature or data.get("protocol") != protocol:
            self.stale = data if data.get("files") else None
            data = {"signature": signature, "protocol": protocol, "files": {}, "dirs": []}
        else:
            self.stale = None
        self.data = data

    @staticmethod
    def location(base_url: str, tenant: str, model: str, version: int, source: Path) -> Path:
        root = os.environ.get(STATE_ENV) or os.path.join(
            os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "imm", "uploads"
        )
        ident = json.dumps([base_url, tenant, model, version, str(source.resolve())])
        return Path(root) / (hashlib.sha256(ident.encode()).hexdigest()[:32] + ".json")

    def file(self, path: str) -> dict[str, Any]:
        files: dict[str, dict[str, Any]] = self.data["files"]
        return files.setdefault(path, {"parts": {}})

    def save(self) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(self.data, handle)
            os.replace(tmp, self.path)

    def record_part(self, path: str, number: int, etag: str, md5: str) -> None:
        with self._lock:
            self.file(path)["parts"][str(number)] = {"etag": etag, "md5": md5}
        self.save()

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def signature_of(source: Path, plan_: Plan) -> dict[str, Any]:
    stat = source.stat()
    return {
        "size": stat.st_size if source.is_file() else plan_.total,
        "mtime_ns": stat.st_mtime_ns,
        "files": len(plan_.files),
    }


# --- the uploader -------------------------------------------------------------------------------------


@dataclass
class Options:
    tenant: str
    model: str
    version: int
    part_size: int = DEFAULT_PART_MB * MIB
    parallel: int = 4
    via_api: bool = False
    restart: bool = False
    progress: bool | None = None


@dataclass
class Summary:
    files: list[str] = field(default_factory=list)
    directories: list[str] = field(default_factory=list)
    bytes: int = 0
    resumed_parts: int = 0
    sent_parts: int = 0
    protocol: str = "direct"


class _Retry(Exception):
    """A part's transfer failed in a way another attempt may fix; ``error`` is what to raise at the last."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class Uploader:
    def __init__(self, api: Api, options: Options, announce: Callable[[str], None]) -> None:
        self.api = api
        self.options = options
        self.announce = announce
        self.summary = Summary()
        self._store_client: httpx.Client | None = None

    @property
    def base(self) -> str:
        return f"/tenants/{self.options.tenant}"

    def run(self, source: Path) -> Summary:
        work = plan(source)
        try:
            protocol = "api" if self.options.via_api else "direct"
            state = State(
                State.location(self.api.connection.base_url, self.options.tenant, self.options.model,
                               self.options.version, source),
                signature_of(source, work),
                protocol,
            )  # fmt: skip
            if self.options.restart or state.stale:
                self._abort_recorded(state.stale or state.data, protocol)
                if self.options.restart:
                    state.data["files"], state.data["dirs"] = {}, []
            self.summary.protocol = protocol
            console = Console(stderr=True)
            show = console.is_terminal if self.options.progress is None else self.options.progress
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=console,
                disable=not show,
            ) as progress:
                bar = progress.add_task(f"{self.options.model}/{self.options.version}", total=work.total)

                def advance(count: int) -> None:
                    progress.advance(bar, count)

                for item in work.files:
                    self._upload_file(item, state, advance)
                    self.summary.files.append(item.path)
                    self.summary.bytes += item.size
                for key in work.empty_dirs:
                    if key not in state.data["dirs"]:
                        self.api.send("POST", f"{self.base}/upload/dir", json_body=self._ids() | {"key": key})
                        state.data["dirs"].append(key)
                        state.save()
                    self.summary.directories.append(key + "/")
            state.remove()
            return self.summary
        finally:
            work.cleanup()
            if self._store_client is not None:
                self._store_client.close()

    def _ids(self) -> dict[str, Any]:
        return {"modelName": self.options.model, "modelVersion": self.options.version}

    def _abort_recorded(self, data: dict[str, Any], protocol: str) -> None:
        """Best effort: free the parts of an upload we will not resume."""
        for path, record in (data.get("files") or {}).items():
            if record.get("done") or not record.get("uploadId"):
                continue
            with contextlib.suppress(ApiError, CliError):
                if protocol == "direct":
                    self.api.send("DELETE", f"{self.base}/uploads/{record['uploadId']}")
                else:
                    key, _, name = path.rpartition("/")
                    body = self._ids() | {"fileName": name, "uploadId": record["uploadId"], "key": key or None}
                    self.api.send("POST", f"{self.base}/upload/abort", json_body=body)

    def _upload_file(self, item: FileItem, state: State, advance: Callable[[int], None]) -> None:
        record = state.file(item.path)
        if record.get("done"):
            advance(item.size)
            self.summary.resumed_parts += len(record.get("parts", {}))
            return
        if self.summary.protocol == "direct":
            try:
                self._direct(item, record, state, advance)
            except _NoDirectRoutes:
                self.announce("imm: the server has no direct upload; using the compatibility routes")
                self.summary.protocol = state.data["protocol"] = "api"
                state.data["files"] = {}
                record = state.file(item.path)
                self._via_api(item, record, state, advance)
        else:
            self._via_api(item, record, state, advance)
        record["done"] = True
        state.save()

    # --- the compatibility routes ------------------------------------------------------------------
    def _via_api(self, item: FileItem, record: dict[str, Any], state: State, advance: Callable[[int], None]) -> None:
        ids = self._ids() | {"fileName": item.name}
        if item.key:
            ids["key"] = item.key
        if record.get("uploadId") and record.get("partSize"):
            part_size = int(record["partSize"])
        else:
            answer = self.api.json("POST", f"{self.base}/upload/start", json_body=ids | {"key": item.key})
            record.clear()
            record.update({"uploadId": answer["data"]["uploadId"], "partSize": self.options.part_size, "parts": {}})
            state.save()
            part_size = self.options.part_size
        upload_id = str(record["uploadId"])
        done: dict[str, Any] = record["parts"]

        def put(number: int, data: bytes) -> str:
            params = {**ids, "partNumber": number, "uploadId": upload_id}
            try:
                answer = self.api.json(
                    "PUT",
                    f"{self.base}/upload",
                    params=params,
                    content=data,
                    headers={"Content-Type": "application/octet-stream"},
                )
            except ApiError as exc:
                if exc.status < 500:
                    raise
                raise _Retry(exc) from None
            except CliError as exc:
                raise _Retry(exc) from None
            return str(answer["data"]["ETag"])

        def send(number: int, offset: int, length: int) -> None:
            self._send_part(item, number, offset, length, state, advance, put)

        self._count_resumed(item, part_size, done, advance)
        todo = [part for part in part_ranges(item.size, part_size) if str(part[0]) not in done]
        self._parallel(todo, send)
        parts = [
            {"ETag": done[str(number)]["etag"], "PartNumber": number}
            for number, _, _ in part_ranges(item.size, part_size)
        ]
        self.api.send("POST", f"{self.base}/upload/done", json_body=ids | {"uploadId": upload_id, "parts": parts})

    # --- direct to the object store ----------------------------------------------------------------
    def _store(self) -> httpx.Client:
        if self._store_client is None:
            self._store_client = httpx.Client(
                verify=ssl_context(self.api.connection.verify), timeout=httpx.Timeout(300.0, connect=10.0)
            )
        return self._store_client

    def _direct(self, item: FileItem, record: dict[str, Any], state: State, advance: Callable[[int], None]) -> None:
        answer: dict[str, Any] | None = None
        if record.get("uploadId"):
            try:
                answer = self.api.json("GET", f"{self.base}/uploads/{record['uploadId']}")["data"]
            except ApiError as exc:
                if exc.status != 404:
                    raise
            if answer is not None and answer.get("state") not in (None, "OPEN"):
                answer = None  # aborted meanwhile (or completed by a crashed run's task: send it again)
        if answer is None:
            body = self._ids() | {"path": item.path, "size": item.size, "partSize": self.options.part_size}
            try:
                answer = self.api.json("POST", f"{self.base}/uploads", json_body=body)["data"]
            except ApiError as exc:
                if exc.status in (404, 405) and exc.code in (
                    None,
                    "not_found",
                    "route_not_found",
                    "method_not_allowed",
                ):
                    raise _NoDirectRoutes from None
                raise
            record.clear()
            record.update({"uploadId": answer["uploadId"], "partSize": answer["partSize"], "parts": {}})
            state.save()
        upload_id = str(record["uploadId"])
        part_size = int(answer["partSize"])
        done: dict[str, Any] = record["parts"]
        # Parts the store already holds but we never recorded (killed between PUT and record): trust
        # them only if their MD5 is ours, which the completion checks again anyway.
        for stored in answer.get("uploaded") or []:
            number = int(stored["partNumber"])
            if str(number) not in done and stored.get("etag"):
                _, offset, length = part_ranges(item.size, part_size)[number - 1]
                md5 = hashlib.md5(read_part(item.source, offset, length)).hexdigest()  # noqa: S324
                if str(stored["etag"]).strip('"').lower() == md5:
                    state.record_part(item.path, number, str(stored["etag"]), md5)
        self._count_resumed(item, part_size, done, advance)
        while True:
            urls = {int(part["partNumber"]): str(part["url"]) for part in answer.get("missing") or []}
            urls = {number: url for number, url in urls.items() if str(number) not in done}
            if not urls:
                break

            def put(number: int, data: bytes, urls: dict[int, str] = urls) -> str:
                try:
                    response = self._store().put(urls[number], content=data)
                except httpx.HTTPError as exc:
                    raise _Retry(CliError(f"{item.path}: part {number}: {exc}")) from None
                if response.status_code >= 400:
                    error = CliError(f"{item.path}: part {number}: the store answered {response.status_code}")
                    if response.status_code < 500:
                        raise error
                    raise _Retry(error)
                return str(response.headers.get("ETag", ""))

            def send(number: int, offset: int, length: int, put: Callable[[int, bytes], str] = put) -> None:
                self._send_part(item, number, offset, length, state, advance, put)

            self._parallel([part for part in part_ranges(item.size, part_size) if part[0] in urls], send)
            if int(answer.get("missingCount") or 0) <= len(urls):
                break
            answer = self.api.json("GET", f"{self.base}/uploads/{upload_id}")["data"]
        parts = [
            {"partNumber": number, "md5": done[str(number)]["md5"]}
            for number, _, _ in part_ranges(item.size, part_size)
        ]
        missing = [part["partNumber"] for part in parts if str(part["partNumber"]) not in done]
        if missing:
            raise CliError(f"{item.path}: parts {missing} were not uploaded; run the command again to resume")
        response = self.api.send(
            "POST", f"{self.base}/uploads/{upload_id}/complete", json_body={"parts": parts}, headers=_ASYNC
        )
        task = tasks.task_of_answer(response.json())
        if task is not None:
            final = tasks.follow(self.api, str(task.get("url") or task["id"]), progress=False)
            if final.get("state") != "SUCCEEDED":
                raise CliError(f"{item.path}: {tasks.failure_message(final)}")

    # --- shared ------------------------------------------------------------------------------------
    def _send_part(
        self,
        item: FileItem,
        number: int,
        offset: int,
        length: int,
        state: State,
        advance: Callable[[int], None],
        put: Callable[[int, bytes], str],
    ) -> None:
        """Send one part (either protocol's ``put``, which returns the stored ETag) and record it.

        A part is retried up to PART_ATTEMPTS times when the transfer failed in a way another attempt
        may fix (``_Retry``: a dropped connection, a 5xx) or when the stored ETag is not the part's MD5
        (it arrived corrupted); anything else fails at once.
        """
        data = read_part(item.source, offset, length)
        md5 = hashlib.md5(data).hexdigest()  # noqa: S324 -- S3's part checksum is MD5
        for attempt in range(1, PART_ATTEMPTS + 1):
            try:
                etag = put(number, data)
            except _Retry as exc:
                if attempt == PART_ATTEMPTS:
                    raise exc.error from None
                continue
            if etag.strip('"').lower() == md5:
                state.record_part(item.path, number, etag, md5)
                self.summary.sent_parts += 1
                advance(length)
                return
        raise CliError(f"{item.path}: part {number} arrived corrupted {PART_ATTEMPTS} times (MD5 mismatch)")

    def _count_resumed(
        self, item: FileItem, part_size: int, done: dict[str, Any], advance: Callable[[int], None]
    ) -> None:
        for number, _, length in part_ranges(item.size, part_size):
            if str(number) in done:
                advance(length)
                self.summary.resumed_parts += 1

    def _parallel(self, todo: list[tuple[int, int, int]], send: Callable[[int, int, int], None]) -> None:
        """Send parts on ``parallel`` threads; the first failure stops the rest (they stay resumable)."""
        if not todo:
            return
        pool = ThreadPoolExecutor(max_workers=max(1, self.options.parallel))
        futures = [pool.submit(send, *part) for part in todo]
        try:
            finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in finished:
                future.result()
        finally:
            for future in futures:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


_ASYNC = {"Prefer": "respond-async"}


class _NoDirectRoutes(Exception):
    """The server predates direct uploads."""
