"""Server-side model work run as Operations: extract a tarball in the bucket, import from a URL.

Both stream: an archive is read from the store member by member (``tarfile`` stream mode) and each
member is written back in bounded chunks; a download is written as it arrives. Nothing is held
whole, on disk or in memory, and an extraction is bounded (members, names, decompressed bytes and
ratio: the ``IMM_ARCHIVE_*`` settings); an archive over a bound is refused and what it wrote deleted.

Archive members are names from an untrusted file: every one goes through ``keys.relative_path``
(``./`` prefixes are dropped); links, devices and names that would escape the version directory are
skipped and reported, never followed. URLs are fetched only from public addresses unless
``IMM_MODEL_IMPORT_ALLOW_PRIVATE_ADDRESSES`` is set: otherwise any tenant could make the worker
read cluster-internal services (the API server, cloud metadata) into their bucket. Redirects are
followed by hand so every hop is checked, and each hop connects to the address that was checked.
"""

from __future__ import annotations

import bz2
import gzip
import ipaddress
import lzma
import socket
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

import certifi
import urllib3
from django.conf import settings

from inferencemgmt import objectstore
from inferencemgmt.api.validation import CONTROL_CHARACTERS
from inferencemgmt.digits import ascii_int
from inferencemgmt.errors import BadRequest, UpstreamError
from inferencemgmt.objectstore import ReadableBody
from models_store import keys

MAX_REDIRECTS = 5
DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = (301, 302, 303, 307, 308)


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


# --- bounded extraction -------------------------------------------------------------------------------
# An archive is a file from a tenant. A 318-byte .tar.bz2 of symlinks with 1,000,000-character PAX
# names once unpacked to megabytes of names (and a 20 MB operation result). Everything an extraction
# reads is therefore bounded before it is read: the decompressed bytes (a total and a ratio to the
# archive's size), each metadata header (PAX, GNU long name) before tarfile loads it into memory, the
# member count and each name. An archive over a bound is refused whole: what this extraction wrote
# is deleted again.

#: The ratio bound allows this much on top, so a small archive of small files is never refused
#: (a tar pads every member to 512 bytes and itself to 10 KiB: a tiny .tar.gz can have ratio 70).
RATIO_ALLOWANCE_BYTES = 1024 * 1024
#: A metadata header may hold a path and a link path (4 bytes per character at most in UTF-8) and
#: other records (extended attributes): this much on top of them.
HEADER_ALLOWANCE_BYTES = 64 * 1024
#: How many skipped members the result names (it also counts them all) and how much of each name.
SKIPPED_SHOWN = 10
NAME_SHOWN = 200
#: The largest read tarfile is given at once (it asks for 10 KiB records).
TAR_READ_BYTES = 1024 * 1024
_COMPRESSIONS: tuple[tuple[bytes, Callable[[Any], ReadableBody]], ...] = (
    (b"\x1f\x8b", lambda raw: gzip.GzipFile(fileobj=raw, mode="rb")),
    (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile),
)
_MAGIC_BYTES = 6
_METADATA_TYPES = frozenset(
    {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK}
)
# What a damaged archive raises while being decompressed or parsed.
_UNREADABLE = (tarfile.TarError, EOFError, OSError, lzma.LZMAError, zlib.error)


@dataclass(frozen=True)
class ArchiveLimits:
    """The bounds of one extraction (the ``IMM_ARCHIVE_*`` settings)."""

    members: int
    name_length: int
    total_bytes: int
    ratio: float

    @classmethod
    def from_settings(cls) -> ArchiveLimits:
        return cls(
            members=settings.IMM_ARCHIVE_MAX_MEMBERS,
            name_length=settings.IMM_ARCHIVE_MAX_NAME_LENGTH,
            total_bytes=settings.IMM_ARCHIVE_MAX_BYTES,
            ratio=settings.IMM_ARCHIVE_MAX_RATIO,
        )

    def unpacked_budget(self, archive_size: int) -> tuple[int, str]:
        """How many decompressed bytes an archive of ``archive_size`` bytes may have, and why not more."""
        by_ratio = int(self.ratio * archive_size) + RATIO_ALLOWANCE_BYTES
        if by_ratio < self.total_bytes:
            return by_ratio, f"it unpacks to more than {self.ratio:g} times its size (IMM_ARCHIVE_MAX_RATIO)"
        return self.total_bytes, f"it unpacks to more than {self.total_bytes} bytes (IMM_ARCHIVE_MAX_BYTES)"

    @property
    def header_bytes(self) -> int:
        return 2 * 4 * self.name_length + HEADER_ALLOWANCE_BYTES


class ArchiveOverLimit(Exception):
    """An extraction bound was exceeded; the message says which (internal: tarfile must not catch it)."""


class _Prefixed:
    """Bytes already read (the magic number), then the rest of the stream."""

    def __init__(self, head: bytes, rest: ReadableBody) -> None:
        self._head, self._rest = head, rest

    def read(self, size: int = -1, /) -> bytes:
        if not self._head:
            return self._rest.read(size)
        if size < 0:
            head, self._head = self._head, b""
            return head + self._rest.read()
        chunk, self._head = self._head[:size], self._head[size:]
        return chunk


class _Budgeted:
    """Counts decompressed bytes and stops at the budget, before the bytes reach tarfile.

    ``read()`` without a size reads a bounded chunk, not "everything": an unbounded read of a
    decompressing stream is exactly the amplification this class exists to stop.
    """

    def __init__(self, source: ReadableBody, budget: int, reason: str) -> None:
        self._source, self._budget, self._reason = source, budget, reason
        self.total = 0

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._source.read(size if 0 <= size <= TAR_READ_BYTES else TAR_READ_BYTES)
        self.total += len(chunk)
        if self.total > self._budget:
            raise ArchiveOverLimit(self._reason)
        return chunk


def decompressed(raw: ReadableBody) -> ReadableBody:
    """The archive's tar stream: gzip, bzip2 and xz are recognised by their magic number and
    decompressed here, so that the decompressed bytes can be counted (tarfile's own "r|*" would
    decompress out of our sight)."""
    head = b""
    while len(head) < _MAGIC_BYTES:
        chunk = raw.read(_MAGIC_BYTES - len(head))
        if not chunk:
            break
        head += chunk
    stream = _Prefixed(head, raw)
    for magic, opener in _COMPRESSIONS:
        if head.startswith(magic):
            return opener(stream)
    return stream


def _tarinfo_bounded(limit: int) -> type[tarfile.TarInfo]:
    """A TarInfo whose metadata headers (PAX, GNU long names) larger than ``limit`` are refused
    when their 512-byte header block is parsed, before tarfile reads their body into memory."""

    class BoundedTarInfo(tarfile.TarInfo):
        @classmethod
        def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> BoundedTarInfo:
            info = super().frombuf(buf, encoding, errors)
            if info.type in _METADATA_TYPES and info.size > limit:
                raise ArchiveOverLimit(
                    f"a member has a {info.size}-byte name header (names are at most "
                    "IMM_ARCHIVE_MAX_NAME_LENGTH characters)"
                )
            return info

    return BoundedTarInfo


def _shown(name: str) -> str:
    return name if len(name) <= NAME_SHOWN else f"{name[:NAME_SHOWN]}... ({len(name)} characters)"


class _Extraction:
    """One extraction's state: what it wrote (to undo a refused archive) and what it skipped."""

    def __init__(self, bucket: str, prefix: str, limits: ArchiveLimits) -> None:
        self.bucket, self.prefix, self.limits = bucket, prefix, limits
        self.members = self.files = self.directories = self.skipped = 0
        self.skipped_shown: list[dict[str, str]] = []
        self.written: list[str] = []

    def skip(self, name: str, reason: str) -> None:
        self.skipped += 1
        if len(self.skipped_shown) < SKIPPED_SHOWN:
            self.skipped_shown.append({"name": _shown(name), "reason": reason})

    def member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        self.members += 1
        if self.members > self.limits.members:
            raise ArchiveOverLimit(f"it has more than {self.limits.members} members (IMM_ARCHIVE_MAX_MEMBERS)")
        longest = max(len(member.name), len(member.linkname))
        if longest > self.limits.name_length:
            raise ArchiveOverLimit(
                f"a member name is {longest} characters long (more than {self.limits.name_length}, "
                "IMM_ARCHIVE_MAX_NAME_LENGTH)"
            )
        path = member_path(member.name)
        if path is None:
            self.skip(member.name, "unsafe path")
        elif len(f"{self.prefix}{path}/".encode()) > keys.KEY_MAX_BYTES:
            self.skip(member.name, f"the object key would be longer than {keys.KEY_MAX_BYTES} bytes")
        elif member.isdir():
            self.written.append(f"{self.prefix}{path}/")
            objectstore.object_put_empty(self.bucket, f"{self.prefix}{path}/")
            self.directories += 1
        elif member.isfile():
            extracted = tar.extractfile(member)
            if extracted is None:  # pragma: no cover - isfile() members always have data
                return
            # Recorded before the upload: a refusal in the middle of it must undo it too.
            self.written.append(f"{self.prefix}{path}")
            objectstore.object_upload(self.bucket, f"{self.prefix}{path}", extracted)
            self.files += 1
        else:
            self.skip(member.name, "links and special files are not extracted")

    def undo(self, existing: set[str]) -> str:
        """Delete what this extraction created; say what is left (files it overwrote are not restored)."""
        created = sorted({key for key in self.written if key not in existing})
        objectstore.objects_delete(self.bucket, created)
        overwritten = sorted({key for key in self.written if key in existing})
        if not overwritten:
            return "Nothing of it was kept."
        return (
            f"The {len(created)} objects it had created were deleted; {len(overwritten)} that existed "
            f"before were overwritten by its members and are left as extracted (first: {_shown(overwritten[0])})."
        )


def archive_extract(
    bucket: str, archive: str, prefix: str, progress: Any, limits: ArchiveLimits | None = None
) -> dict[str, Any]:
    """Unpack ``archive`` (tar, tar.gz, tar.bz2, tar.xz) into ``prefix`` (``<model>/<version>/``),
    within ``limits`` (the settings by default); an archive over a bound is refused (400) whole."""
    limits = limits or ArchiveLimits.from_settings()
    stream, size = objectstore.object_stream(bucket, archive)
    progress.set_total(size)
    existing = {item["key"] for item in objectstore.objects_iter(bucket, prefix)}
    extraction = _Extraction(bucket, prefix, limits)
    budget, reason = limits.unpacked_budget(size)
    try:
        tar_stream = _Budgeted(decompressed(CountingReader(stream, progress)), budget, reason)
        with tarfile.open(  # type: ignore[call-overload]
            fileobj=tar_stream, mode="r|", tarinfo=_tarinfo_bounded(limits.header_bytes)
        ) as tar:
            for member in tar:
                extraction.member(tar, member)
    except ArchiveOverLimit as exc:
        left = extraction.undo(existing)
        raise BadRequest(
            "Archive refused", f"{archive} was not extracted: {exc}. {left}", code="archive_too_large"
        ) from None
    except _UNREADABLE as exc:
        left = extraction.undo(existing)
        raise BadRequest(
            "Invalid archive",
            f"{archive} is not a readable tar archive: {_shown(str(exc))}. {left}",
            code="archive_invalid",
        ) from None
    finally:
        stream.close()  # type: ignore[attr-defined]
    return {
        "files": extraction.files,
        "directories": extraction.directories,
        "skipped": extraction.skipped_shown,
        "skippedCount": extraction.skipped,
    }


# IPv6 ranges whose addresses carry an IPv4 address that packets to them really reach: a loopback
# or private IPv4 inside one of them is that loopback or private address, whatever ``is_global``
# says of the IPv6 form (Python calls ``::127.0.0.1`` and ``64:ff9b::7f00:1`` global).
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # ::a.b.c.d (deprecated, still routed by some stacks)
_SIIT = ipaddress.IPv6Network("::ffff:0:0:0/96")  # ::ffff:0:a.b.c.d (RFC 2765 translated)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the well-known NAT64 prefix (RFC 6052)
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # local-use NAT64 (RFC 8215): never public
_ISATAP_INTERFACE = 0x00005EFE  # ...:0:5efe:a.b.c.d / ...:200:5efe:a.b.c.d (RFC 5214)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address embeds: mapped, compatible, SIIT, NAT64, 6to4, Teredo, ISATAP."""
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address in _IPV4_COMPATIBLE or address in _SIIT or address in _NAT64:
        found.append(low32)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)  # the server and the client (its IPv4 obfuscated in the address)
    if (int(address) >> 32) & 0xFDFFFFFF == _ISATAP_INTERFACE:
        found.append(low32)
    return found


def public_address(text: str) -> bool:
    """True only for a unicast address on the public internet, and every IPv4 it embeds public too.

    ``is_global`` alone is not enough: it calls multicast global, and IPv6 forms that embed
    ``127.0.0.1`` or ``10.x`` (``::127.0.0.1``, ``::ffff:0:7f00:1``, ``64:ff9b::7f00:1``,
    ``2002:7f00:1::``) global as well, while the packets go to the embedded address.
    """
    address = ipaddress.ip_address(text.split("%", 1)[0])  # a link-local zone (fe80::1%eth0) is local anyway
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:
            return False
        return all(public_address(str(inner)) for inner in embedded_ipv4(address))
    return True


def _resolved(url: str) -> tuple[SplitResult, str]:
    """The URL's parts and the one address to connect to, checked as ``url_checked`` describes."""
    if CONTROL_CHARACTERS.search(url) or " " in url:
        # urlsplit drops some of them silently, urllib3 refuses them late, and a NUL in the stored
        # operation parameters is a database error: refused here, first.
        raise keys.invalid("source", "A URL cannot contain spaces or control characters.", code="source_invalid")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise keys.invalid("source", "Give an http(s):// URL or an s3://<tenant>/<path> URI.", code="source_invalid")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme], type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        raise keys.invalid("source", f"The host {parts.hostname} cannot be resolved.", code="source_invalid") from None
    addresses = [str(info[4][0]) for info in infos]
    if not settings.IMM_MODEL_IMPORT_ALLOW_PRIVATE_ADDRESSES:
        for address in addresses:
            if not public_address(address):
                raise keys.invalid("source", "The URL points to a private or local address.", code="source_private")
    if not addresses:
        raise keys.invalid("source", f"The host {parts.hostname} cannot be resolved.", code="source_invalid")
    return parts, addresses[0]


def url_checked(url: str) -> str:
    """An http(s) URL whose host resolves only to public addresses (unless private ones are allowed)."""
    _resolved(url)
    return url


def _open_pinned(parts: SplitResult, address: str) -> urllib3.BaseHTTPResponse:
    """GET the URL from ``address`` itself: the name is not resolved again between check and use.

    Resolving twice would let a hostile DNS server answer a public address to the check and a
    private one to the connection (DNS rebinding). The request still names the host (``Host``,
    TLS server name and certificate check), so virtual hosting and HTTPS work as usual.
    """
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    host = parts.hostname or ""
    timeout = urllib3.Timeout(
        connect=settings.IMM_MODEL_IMPORT_TIMEOUT_SECONDS, read=settings.IMM_MODEL_IMPORT_TIMEOUT_SECONDS
    )
    pool: urllib3.HTTPConnectionPool
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            port,
            timeout=timeout,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            server_hostname=host,
            assert_hostname=host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    headers = {"Host": parts.netloc.rpartition("@")[2], "User-Agent": "inference-model-manager"}
    if parts.username is not None:
        headers.update(
            urllib3.util.make_headers(basic_auth=f"{unquote(parts.username)}:{unquote(parts.password or '')}")
        )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return pool.urlopen("GET", target, headers=headers, redirect=False, preload_content=False)


def url_open(url: str) -> urllib3.BaseHTTPResponse:
    """The response of the last hop, every hop checked and connected to its checked address."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        parts, address = _resolved(current)
        try:
            response = _open_pinned(parts, address)
        except urllib3.exceptions.HTTPError as exc:
            raise UpstreamError(
                "model source", f"{type(exc).__name__} fetching the URL", code="source_unreachable"
            ) from None
        location = response.headers.get("Location") if response.status in REDIRECT_STATUSES else None
        if location is None:
            return response
        response.release_conn()
        current = urljoin(current, location)
    raise BadRequest("Invalid parameter", "Too many redirects.", code="source_invalid")


def url_import(url: str, bucket: str, key: str, progress: Any) -> dict[str, Any]:
    """Download ``url`` into ``bucket``/``key`` as it arrives."""
    response = url_open(url)
    try:
        if response.status != 200:
            raise UpstreamError("model source", f"the URL answered HTTP {response.status}", code="source_error")
        length = ascii_int(response.headers.get("Content-Length", ""))
        if length is not None:
            progress.set_total(length)
        try:
            objectstore.object_upload(bucket, key, CountingReader(response, progress))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise UpstreamError(
                "model source", f"{type(exc).__name__} while downloading", code="source_error"
            ) from None
    finally:
        response.release_conn()
    head = objectstore.object_head(bucket, key)
    return {"key": key, "size": head["size"] if head else 0}
