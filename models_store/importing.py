"""Server-side model work run as Operations: extract a tarball in the bucket, import from a URL.

Both stream: an archive is read from the store member by member (``tarfile`` stream mode) and each
member is written back in bounded chunks; a download is written as it arrives. Nothing is held
whole, on disk or in memory.

Archive members are names from an untrusted file: every one goes through ``keys.relative_path``
(``./`` prefixes are dropped); links, devices and names that would escape the version directory are
skipped and reported, never followed. URLs are fetched only from public addresses unless
``IMM_MODEL_IMPORT_ALLOW_PRIVATE_ADDRESSES`` is set: otherwise any tenant could make the worker
read cluster-internal services (the API server, cloud metadata) into their bucket. Redirects are
followed by hand so every hop is checked.
"""

from __future__ import annotations

import ipaddress
import socket
import tarfile
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings

from inferencemgmt import objectstore
from inferencemgmt.errors import BadRequest, UpstreamError
from models_store import keys

MAX_REDIRECTS = 5


class CountingReader:
    """Reports the bytes read to a progress step (an archive's size is its progress total)."""

    def __init__(self, source: objectstore.ReadableBody, progress: Any) -> None:
        self._source, self._progress = source, progress

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._source.read(size)
        if chunk:
            self._progress.advance(len(chunk))
        return chunk


def member_path(name: str) -> str | None:
    """An archive member's path under the version directory, or None when it is unsafe."""
    trimmed = name
    while trimmed.startswith("./"):
        trimmed = trimmed[2:]
    trimmed = trimmed.rstrip("/")
    if trimmed in ("", "."):
        return None
    try:
        return keys.relative_path(trimmed, "archive member")
    except BadRequest:
        return None


def archive_extract(bucket: str, archive: str, prefix: str, progress: Any) -> dict[str, Any]:
    """Unpack ``archive`` (tar, tar.gz, tar.bz2, tar.xz) into ``prefix`` (``<model>/<version>/``)."""
    stream, size = objectstore.object_stream(bucket, archive)
    progress.set_total(size)
    files = directories = 0
    skipped: list[dict[str, str]] = []
    try:
        with tarfile.open(fileobj=CountingReader(stream, progress), mode="r|*") as tar:  # type: ignore[call-overload]
            for member in tar:
                path = member_path(member.name)
                if path is None:
                    skipped.append({"name": member.name, "reason": "unsafe path"})
                elif member.isdir():
                    objectstore.object_put_empty(bucket, f"{prefix}{path}/")
                    directories += 1
                elif member.isfile():
                    extracted = tar.extractfile(member)
                    if extracted is None:  # pragma: no cover - isfile() members always have data
                        continue
                    objectstore.object_upload(bucket, f"{prefix}{path}", extracted)
                    files += 1
                else:
                    skipped.append({"name": member.name, "reason": "links and special files are not extracted"})
    except tarfile.TarError as exc:
        raise BadRequest(
            "Invalid archive", f"{archive} is not a readable tar archive: {exc}", code="archive_invalid"
        ) from None
    finally:
        stream.close()  # type: ignore[attr-defined]
    return {"files": files, "directories": directories, "skipped": skipped}


def url_checked(url: str) -> str:
    """An http(s) URL whose host resolves only to public addresses (unless private ones are allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise keys.invalid("source", "Give an http(s):// URL or an s3://<tenant>/<path> URI.", code="source_invalid")
    if settings.IMM_MODEL_IMPORT_ALLOW_PRIVATE_ADDRESSES:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError):
        raise keys.invalid("source", f"The host {parts.hostname} cannot be resolved.", code="source_invalid") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise keys.invalid("source", "The URL points to a private or local address.", code="source_private")
    return url


def url_import(url: str, bucket: str, key: str, progress: Any) -> dict[str, Any]:
    """Download ``url`` into ``bucket``/``key`` as it arrives."""
    session = requests.Session()
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        url_checked(current)
        try:
            response = session.get(
                current, stream=True, allow_redirects=False, timeout=settings.IMM_MODEL_IMPORT_TIMEOUT_SECONDS
            )
        except requests.RequestException as exc:
            raise UpstreamError(
                "model source", f"{type(exc).__name__} fetching the URL", code="source_unreachable"
            ) from None
        if response.is_redirect:
            current = urljoin(current, response.headers.get("Location", ""))
            response.close()
            continue
        break
    else:
        raise BadRequest("Invalid parameter", "Too many redirects.", code="source_invalid")
    with response:
        if response.status_code != 200:
            raise UpstreamError("model source", f"the URL answered HTTP {response.status_code}", code="source_error")
        length = response.headers.get("Content-Length", "")
        if length.isdigit():
            progress.set_total(int(length))
        response.raw.decode_content = True
        try:
            objectstore.object_upload(bucket, key, CountingReader(response.raw, progress))
        except (requests.RequestException, OSError) as exc:
            raise UpstreamError(
                "model source", f"{type(exc).__name__} while downloading", code="source_error"
            ) from None
    head = objectstore.object_head(bucket, key)
    return {"key": key, "size": head["size"] if head else 0}
