"""Reading the audit trail: filters checked here (a bad value is 400 in the one error shape) and
limit/continue pages ordered newest first.

Who sees what: platform admins every record; anyone else the records of the tenants they are a
member of, decided as everywhere else in the product (``tenants.selectors.tenant_list``: a person's
groups against each tenant's scope, a robot its own tenant). Records without a tenant (serving
templates) are admins' only.

The ``continue`` token is opaque: the position (time and id of the last record shown) and the
filters it was made for, signed with the site's key. A token that was altered, or is sent with
other filters, is refused (400 ``invalid_continue``) rather than silently starting over.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from django.core import signing
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from audit.actions import ACTIONS
from audit.models import AuditRecord
from inferencemgmt.api.validation import CONTROL_CHARACTERS, DNS_1123_LABEL, matches
from inferencemgmt.auth.identity import Identity
from inferencemgmt.digits import ascii_int
from inferencemgmt.errors import BadRequest, Forbidden, ValidationFailed
from tenants.selectors import tenant_list

PAGE_DEFAULT = 50
PAGE_MAX = 500
_CURSOR_SALT = "audit.continue"
KNOWN_ACTIONS = frozenset(action.name for action in ACTIONS.values())


@dataclass(frozen=True)
class AuditFilters:
    tenant: str = ""
    user: str = ""
    action: str = ""
    start: str = ""  # ISO 8601, normalised to UTC
    end: str = ""


def _moment(name: str, raw: str) -> str:
    try:
        parsed = parse_datetime(raw)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValidationFailed(description=f"{name}: must be an ISO 8601 date and time, e.g. 2026-01-31T12:00:00Z")
    if not 1970 <= parsed.year <= 9000:
        raise ValidationFailed(description=f"{name}: must be between the years 1970 and 9000")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat()


def audit_filters(query: Mapping[str, str]) -> AuditFilters:
    """The filters of a query string, each checked (400 ``validation_failed`` naming the first bad one)."""
    tenant = query.get("tenant", "")
    if tenant and (not matches(DNS_1123_LABEL, tenant) or len(tenant) > 63):
        raise ValidationFailed(description="tenant: must be a tenant name (a DNS-1123 label)")
    user = query.get("user", "")
    if len(user) > 255 or CONTROL_CHARACTERS.search(user):
        raise ValidationFailed(description="user: at most 255 characters, no control characters")
    action = query.get("action", "")
    if action and action not in KNOWN_ACTIONS:
        raise ValidationFailed(description=f"action: must be one of {', '.join(sorted(KNOWN_ACTIONS))}")
    start = _moment("from", query["from"]) if query.get("from") else ""
    end = _moment("to", query["to"]) if query.get("to") else ""
    if start and end and start > end:
        raise ValidationFailed(description="from: must not be after to")
    return AuditFilters(tenant=tenant, user=user, action=action, start=start, end=end)


def page_limit(raw: str | None) -> int:
    limit = ascii_int(raw if raw is not None else str(PAGE_DEFAULT))
    if limit is None or not 1 <= limit <= PAGE_MAX:
        raise ValidationFailed(description=f"limit: must be an integer from 1 to {PAGE_MAX}")
    return limit


def audit_visible_to(identity: Identity, filters: AuditFilters) -> QuerySet[AuditRecord]:
    """The records ``identity`` may read, filtered; a member naming another tenant is refused (403)."""
    records = AuditRecord.objects.all()
    if not identity.is_admin:
        mine = tenant_list(identity)
        if filters.tenant and filters.tenant not in mine:
            raise Forbidden(description=f"You are not a member of tenant {filters.tenant}.")
        records = records.filter(tenant__in=mine)
    if filters.tenant:
        records = records.filter(tenant=filters.tenant)
    if filters.user:
        records = records.filter(username=filters.user)
    if filters.action:
        records = records.filter(action=filters.action)
    if filters.start:
        records = records.filter(time__gte=datetime.fromisoformat(filters.start))
    if filters.end:
        records = records.filter(time__lt=datetime.fromisoformat(filters.end))
    return records.order_by("-time", "-id")


def _invalid_continue() -> BadRequest:
    return BadRequest(
        description="continue: not a token this list gave with these filters (start again without it)",
        code="invalid_continue",
    )


def _position(token: str, filters: AuditFilters) -> tuple[datetime, int]:
    try:
        payload = signing.loads(token, salt=_CURSOR_SALT)
    except (signing.BadSignature, ValueError):
        raise _invalid_continue() from None
    if not isinstance(payload, dict) or payload.get("f") != asdict(filters):
        raise _invalid_continue()
    moment, last = payload.get("t"), payload.get("i")
    if not isinstance(moment, str) or not isinstance(last, int):
        raise _invalid_continue()
    return datetime.fromisoformat(moment), last


@dataclass(frozen=True)
class AuditPage:
    records: list[AuditRecord]
    continue_token: str | None


def audit_page(identity: Identity, filters: AuditFilters, *, limit: int, token: str | None) -> AuditPage:
    """One page, newest first; ``continue_token`` is None on the last page."""
    records = audit_visible_to(identity, filters)
    if token:
        moment, last = _position(token, filters)
        records = records.filter(Q(time__lt=moment) | Q(time=moment, id__lt=last))
    found = list(records[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    following = None
    if more and found:
        tail = found[-1]
        following = signing.dumps({"t": tail.time.isoformat(), "i": tail.id, "f": asdict(filters)}, salt=_CURSOR_SALT)
    return AuditPage(found, following)


def audit_rows(identity: Identity, filters: AuditFilters, *, limit: int) -> Iterator[AuditRecord]:
    """Every matching record (at most ``limit``), newest first, without holding them all in memory."""
    return audit_visible_to(identity, filters)[:limit].iterator(chunk_size=500)


def audit_as_dict(record: AuditRecord) -> dict[str, Any]:
    """The API's (and the CSV's) view of a record."""
    return {
        "id": record.id,
        "time": record.time.isoformat(),
        "user": record.username,
        "groups": list(record.groups),
        "robot": record.robot,
        "action": record.action,
        "tenant": record.tenant,
        "target": record.target,
        "method": record.method,
        "route": record.route,
        "statusCode": record.status_code,
        "outcome": record.outcome,
        "error": record.error,
        "operationId": str(record.operation_id) if record.operation_id else None,
        "requestId": record.request_id,
        "clientAddress": record.client_address,
    }
