"""Paging of every list route: the ``limit`` query parameter and the opaque ``continue`` token.

One module so every list (and any list added later, such as the audit log) pages the same way
(docs/api-conventions.md, "Lists and paging"):

* ``?limit=`` is ASCII digits from 1 to the route's maximum (``MAX_LIMIT`` unless the route says
  otherwise); absent means the route's default (``DEFAULT_LIMIT``). Anything else is a 400
  ``validation_failed`` before any upstream call.
* A page that is not the last answers ``"continue": "<token>"`` at the top level of the envelope,
  beside ``status`` and ``data`` (some lists' ``data`` is a bare array, so the token cannot live in
  it); the last page has no ``continue``. Sending ``?continue=<token>`` (with the same ``limit`` or
  another) gives the next page.
* The token is what the list needs to resume: the Kubernetes ``continue`` of a cluster-backed list
  or the keyset position of a database-backed one. It is signed (``django.core.signing``, HMAC with
  the deployment's secret key) with a salt naming the list, its filters and the caller, so a token
  altered, forged, or taken from another list, other filters or another user is a 400
  ``invalid_continue`` and changes nothing. Signing, not encryption: the position is not secret
  (it is a name or a time the caller has already seen), but the server must be able to trust it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core import signing
from rest_framework.response import Response

from inferencemgmt.api.responses import EnvelopeStatus
from inferencemgmt.digits import ascii_int
from inferencemgmt.errors import BadRequest, ValidationFailed

#: Items per page when the request names no ``limit``.
DEFAULT_LIMIT = 100
#: The largest ``limit`` a list accepts (a route may document a smaller one).
MAX_LIMIT = 500
#: The query parameters.
LIMIT_PARAMETER = "limit"
CONTINUE_PARAMETER = "continue"
#: A token longer than this is refused before it is checked (Kubernetes' own tokens are short).
TOKEN_MAX_LENGTH = 4096
_SALT = "imm.paging"
T = TypeVar("T")


def invalid_continue(reason: str) -> BadRequest:
    return BadRequest("Invalid continue token", reason, code="invalid_continue")


@dataclass(frozen=True)
class PageRequest:
    """What one list request asked for: at most ``limit`` items, after ``position`` (None: from the start)."""

    limit: int
    position: Mapping[str, Any] | None
    scope: str

    @property
    def kube_continue(self) -> str | None:
        """The Kubernetes ``continue`` this token carries (cluster-backed lists)."""
        value = (self.position or {}).get("k")
        return value if isinstance(value, str) and value else None

    def kube_arguments(self) -> dict[str, Any]:
        """``limit`` and ``_continue`` for a generated Kubernetes list call."""
        arguments: dict[str, Any] = {"limit": self.limit}
        if self.kube_continue:
            arguments["_continue"] = self.kube_continue
        return arguments

    def token(self, position: Mapping[str, Any]) -> str:
        """The token of the page after this one, bound to the same scope."""
        return continuation(self.scope, position)

    def kube_token(self, list_metadata: Mapping[str, Any] | None) -> str | None:
        """The next page's token from a Kubernetes list's ``metadata`` (None when that was the last page)."""
        following = (list_metadata or {}).get("continue")
        return self.token({"k": following}) if isinstance(following, str) and following else None


def scope_of(route: str, identity_name: str, **filters: Any) -> str:
    """The salt a token is bound to: the list, the caller and the filters that shape the list.

    The caller's name is hashed so that it never appears in what is signed (a token is not a
    credential, but it should not carry names either).
    """
    caller = hashlib.sha256(identity_name.encode("utf-8")).hexdigest()[:16]
    parts = [route, caller, *(f"{key}={filters[key]}" for key in sorted(filters) if filters[key] not in (None, ""))]
    return "|".join(parts)


def continuation(scope: str, position: Mapping[str, Any]) -> str:
    """A signed, compact, URL-safe token for ``position`` in the list named by ``scope``."""
    return signing.dumps(dict(position), salt=f"{_SALT}:{scope}", compress=True)


def parse_limit(raw: str | None, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    if raw is None:
        return default
    limit = ascii_int(raw, max_digits=6)
    if limit is None or not 1 <= limit <= maximum:
        raise ValidationFailed(description=f"limit: must be an integer from 1 to {maximum}")
    return limit


def parse_continue(raw: str | None, scope: str) -> Mapping[str, Any] | None:
    """The position a token names, or None for the first page; a 400 for anything not ours."""
    if raw is None or raw == "":
        return None
    if len(raw) > TOKEN_MAX_LENGTH:
        raise invalid_continue("The continue token is too long.")
    try:
        position = signing.loads(raw, salt=f"{_SALT}:{scope}")
    except signing.BadSignature:
        raise invalid_continue(
            "The continue token was altered, or belongs to another list, other filters or another user."
        ) from None
    if not isinstance(position, dict):
        raise invalid_continue("The continue token names no position.")
    return position


def page_request(
    params: Mapping[str, Any],
    scope: str,
    *,
    default: int = DEFAULT_LIMIT,
    maximum: int = MAX_LIMIT,
) -> PageRequest:
    """Both parameters checked (limit first), before the list is read."""
    limit = parse_limit(params.get(LIMIT_PARAMETER), default=default, maximum=maximum)
    return PageRequest(limit=limit, position=parse_continue(params.get(CONTINUE_PARAMETER), scope), scope=scope)


def page_answer(status: EnvelopeStatus, data: Any, following: str | None) -> Response:
    """The envelope with ``continue`` beside ``data`` when there is a next page."""
    body: dict[str, Any] = {"status": status, "data": data}
    if following:
        body[CONTINUE_PARAMETER] = following
    return Response(body, status=200)


def kube_page(
    list_call: Any,
    page: PageRequest,
    *,
    keep: Any = None,
    name: Any = None,
    chunk: int | None = None,
    growing: bool = False,
) -> tuple[list[Any], str | None]:
    """One page of a Kubernetes list, filtered by ``keep``: ``(items, next token)``.

    ``list_call(limit=, _continue=)`` returns ``(items, continue)`` of one Kubernetes page, in the
    API server's order (by name). Without a filter this is one call of ``page.limit`` items. With
    one, the list is read in chunks of ``chunk`` (default ``MAX_LIMIT``) until the page is full or
    the list ends; when the page fills in the middle of a chunk, the token keeps the chunk's own
    ``continue`` and the last name returned, so the next page re-reads that chunk and skips what
    was already given (Kubernetes cannot resume in the middle of its own page). ``growing``: each
    chunk after the first is five times the one before (up to ``MAX_LIMIT``), for lists the API server
    has already filtered, where the first chunk of one page usually fills it and only items ``keep``
    refuses (terminating ones, after a mass deletion) make it read on.
    """
    if keep is None:
        items, following = list_call(**page.kube_arguments())
        return list(items), page.kube_token({"continue": following})
    size = chunk or MAX_LIMIT
    position = page.position or {}
    start = position.get("k") if isinstance(position.get("k"), str) else None
    after = position.get("a") if isinstance(position.get("a"), str) else None
    found: list[Any] = []
    while True:
        arguments: dict[str, Any] = {"limit": size}
        if start:
            arguments["_continue"] = start
        items, following = list_call(**arguments)
        items = list(items)
        for index, item in enumerate(items):
            item_name = name(item)
            if after is not None and item_name <= after:
                continue
            if not keep(item):
                continue
            found.append(item)
            if len(found) == page.limit:
                rest = index + 1 < len(items)
                if rest:
                    resume: dict[str, Any] = {"a": item_name}
                    if start:
                        resume["k"] = start
                    return found, page.token(resume)
                return found, page.token({"k": following}) if following else None
        if not following:
            return found, None
        start, after = following, None
        if growing:
            size = min(MAX_LIMIT, size * 5)


def all_pages(fetch: Callable[[PageRequest], tuple[list[T], str | None]], scope: str) -> list[T]:
    """Every item of a list, page after page of ``MAX_LIMIT`` (for internal callers that need them all,
    such as a form's choices; routes answer one page)."""
    items: list[T] = []
    page = PageRequest(limit=MAX_LIMIT, position=None, scope=scope)
    while True:
        found, following = fetch(page)
        items.extend(found)
        if following is None:
            return items
        page = PageRequest(limit=MAX_LIMIT, position=parse_continue(following, scope), scope=scope)
