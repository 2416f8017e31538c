"""Server-side model work run as Operations: extract a tarball in the bucket, import from a URL.

Both stream: an archive is read from the store member by member (``tarfile`` stream mode) and each
member is written back in bounded chunks; a download is written as it arrives. Nothing is held
whole, on disk or in memory.

Archive members are names from an untrusted file: every one goes through ``keys.relative_path``
(``./`` prefixes are dropped); links, devices and names that would escape the version directory are
skipped and reported, never followed. URLs are fetched only from public addresses unless
``IMM_MODEL_IMPORT_ALLOW_PRIVATE_ADDRESSES`` is set: otherwise any tenant could make the worker
read cluster-internal services (the API server, cloud metadata) into their bucket. Redirects are
followed by hand so every hop is checked, and each hop connects to the address that was checked.
"""

from __future__ import annotations

import ipaddress
import socket
import tarfile
from typing import Any
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

import certifi
import urllib3
from django.conf import settings

from inferencemgmt import objectstore
from inferencemgmt.api.validation import CONTROL_CHARACTERS
from inferencemgmt.digits import ascii_int
from inferencemgmt.errors import BadRequest, UpstreamError
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
