"""User and group names the platform may send to Kubernetes as ``Impersonate-User`` / ``Impersonate-Group``.

Kubernetes trusts these headers completely: whatever name arrives is who the caller is. So a name
is passed on only if Kubernetes will read exactly the name the identity provider asserted, and that
name is not one only the cluster may hand out:

- no leading or trailing white space: the API server trims header values, so ``" system:masters"``
  would arrive as ``system:masters``;
- no control, format (zero-width), private-use, unassigned or line-separator characters: invisible
  in logs and RBAC listings, and some never survive an HTTP header;
- already in Unicode NFKC form: a compatibility look-alike (``system:masters`` spelt in
  full-width letters, a ligature, a non-breaking space) would be a second spelling of another name;
- not ``system:`` in any case or spelling once normalised (NFKC, case-folded): the prefix of the
  groups and users Kubernetes assigns itself (``system:masters``, ``system:serviceaccount:...``).

A name that fails is never "repaired" (stripped or normalised) and sent: that would hand the user
the rights of a *different* name than the one the identity provider vouched for. A bad group is
dropped (Kubernetes RBAC only grants, so one group less can only take rights away); a bad user name
refuses the whole identity.

User names are stricter still: the username claim (``OIDC_USERNAME_CLAIM``) is an e-mail address,
a ``preferred_username`` or a ``sub``, none of which holds white space at all, and the console keeps
a Django user per identity whose name holds 150 characters. Group names come from the directory
(LDAP group names such as ``Domain Users``), so an inner space is allowed there.
"""

from __future__ import annotations

import unicodedata

#: The prefix of the names Kubernetes assigns itself; never asserted on a user's behalf.
RESERVED_PREFIX = "system:"
USERNAME_MAX = 150
GROUP_MAX = 255
# Unicode categories no name may contain: controls (Cc), format characters such as zero-width
# joiners and bidi overrides (Cf), surrogates (Cs), private use (Co), unassigned (Cn), and the line
# and paragraph separators (Zl, Zp).
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def reserved(name: str) -> bool:
    """True when ``name`` reads as a ``system:`` name once normalised (NFKC, case-folded, trimmed)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold()).strip()
    return folded.startswith(RESERVED_PREFIX)


def _problem(name: object, maximum: int, *, inner_space: bool) -> str | None:
    if not isinstance(name, str) or not name:
        return "it is empty"
    if len(name) > maximum:
        return f"it is longer than {maximum} characters"
    if name != name.strip():
        return "it starts or ends with white space"
    for character in name:
        category = unicodedata.category(character)
        if category in _FORBIDDEN_CATEGORIES:
            return f"it contains the invisible or control character U+{ord(character):04X}"
        is_space = category.startswith("Z") or character.isspace()
        if is_space and not (inner_space and character == " "):
            return f"it contains the white space character U+{ord(character):04X}"
    if unicodedata.normalize("NFKC", name) != name:
        return "it is not in Unicode normal form (NFKC)"
    if reserved(name):
        return f"names starting with {RESERVED_PREFIX!r} are reserved for Kubernetes"
    return None


def username_problem(name: object) -> str | None:
    """Why ``name`` is not a plain identity to impersonate, or None when it is one."""
    return _problem(name, USERNAME_MAX, inner_space=False)


def group_problem(name: object) -> str | None:
    """Why ``name`` cannot be sent (or bound) as a group, or None when it can."""
    return _problem(name, GROUP_MAX, inner_space=True)


def passable_groups(groups: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The groups that may be asserted for a user, in order, each once; the others are dropped."""
    return tuple(dict.fromkeys(group for group in groups if group_problem(group) is None))


# --- the one exception: a tenant's robot, proven by a TokenReview -------------------------------------
# A robot account (README "Robots") is a Kubernetes ServiceAccount in a tenant namespace. Its token is
# proven by Kubernetes itself (a TokenReview made with the management API's own identity), and it acts
# AS that service account, so RBAC authorises it like any other subject. Its names start with
# ``system:``, which the rules above refuse; they pass only as this narrow, explicit exception:
#
# - only an Identity built by ``identity.identity_from_service_account`` (the TokenReview path, or the
#   Operation record such an Identity wrote) may use it: no OIDC claim or session can reach it;
# - only the exact form ``system:serviceaccount:<namespace>:<name>``, both parts DNS-1123 labels;
# - only with exactly the two groups Kubernetes itself gives every service account of that namespace,
#   derived from the user name (never taken from the token or a request).
SERVICE_ACCOUNT_USER_PREFIX = "system:serviceaccount:"
SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
_DNS_LABEL_MAX = 63


def _dns_label(value: str) -> bool:
    if not 1 <= len(value) <= _DNS_LABEL_MAX or not value.isascii():
        return False
    if not (value[0].isalnum() and value[-1].isalnum()):
        return False
    return all(c.isdigit() or ("a" <= c <= "z") or c == "-" for c in value)


def service_account_of(username: object) -> tuple[str, str] | None:
    """``(namespace, name)`` when ``username`` is exactly ``system:serviceaccount:<ns>:<name>``, else None."""
    if not isinstance(username, str) or not username.startswith(SERVICE_ACCOUNT_USER_PREFIX):
        return None
    namespace, separator, name = username[len(SERVICE_ACCOUNT_USER_PREFIX) :].partition(":")
    if not separator or not _dns_label(namespace) or not _dns_label(name):
        return None
    return namespace, name


def service_account_groups(namespace: str) -> tuple[str, str]:
    """The two groups Kubernetes gives every service account of ``namespace`` (and no others)."""
    return (SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{namespace}")
