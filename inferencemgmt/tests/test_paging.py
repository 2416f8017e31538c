"""The paging helper every list route uses: limit parsing, signed continue tokens bound to their
list, and the chunked filtered walk of a Kubernetes list (inferencemgmt/paging.py)."""

from __future__ import annotations

from typing import Any

import pytest

from inferencemgmt import paging
from inferencemgmt.errors import BadRequest, ValidationFailed

pytestmark = pytest.mark.unit

SCOPE = paging.scope_of("things", "alice", tenant="t1")


@pytest.mark.parametrize("raw", ["0", "501", "-1", "1.5", "", " 5", "²", "9" * 30, "ten"])
def test_a_limit_outside_1_to_the_maximum_or_not_ascii_digits_is_a_validation_error(raw):
    with pytest.raises(ValidationFailed) as caught:
        paging.parse_limit(raw)
    assert caught.value.description == f"limit: must be an integer from 1 to {paging.MAX_LIMIT}"


def test_limit_default_and_bounds():
    assert paging.parse_limit(None) == paging.DEFAULT_LIMIT
    assert paging.parse_limit("1") == 1
    assert paging.parse_limit(str(paging.MAX_LIMIT)) == paging.MAX_LIMIT
    assert paging.parse_limit(None, default=7, maximum=9) == 7
    with pytest.raises(ValidationFailed):
        paging.parse_limit("10", default=7, maximum=9)


def test_a_token_round_trips_in_its_own_scope_only():
    token = paging.continuation(SCOPE, {"k": "abc"})
    assert paging.parse_continue(token, SCOPE) == {"k": "abc"}
    for other in (
        paging.scope_of("things", "bob", tenant="t1"),  # another user
        paging.scope_of("things", "alice", tenant="t2"),  # another tenant
        paging.scope_of("others", "alice", tenant="t1"),  # another list
    ):
        with pytest.raises(BadRequest) as caught:
            paging.parse_continue(token, other)
        assert caught.value.code == "invalid_continue"
        assert caught.value.status == 400


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # the signature
        lambda token: ("x" if token[0] != "x" else "y") + token[1:],  # the payload
        lambda token: token + "=",
        lambda token: "not-a-token",
        lambda token: "A" * (paging.TOKEN_MAX_LENGTH + 1),
    ],
)
def test_an_altered_token_is_a_400_invalid_continue(tamper):
    token = paging.continuation(SCOPE, {"k": "abc"})
    with pytest.raises(BadRequest) as caught:
        paging.parse_continue(tamper(token), SCOPE)
    assert caught.value.code == "invalid_continue"


def test_the_caller_name_is_not_in_the_scope_in_clear():
    assert "alice" not in paging.scope_of("things", "alice")
    assert paging.scope_of("things", "alice", state=None) == paging.scope_of("things", "alice")


def test_page_answer_puts_continue_beside_data_only_when_there_is_more():
    assert paging.page_answer("OK", ["a"], None).data == {"status": "OK", "data": ["a"]}
    assert paging.page_answer("OK", ["a"], "tok").data == {"status": "OK", "data": ["a"], "continue": "tok"}


class Lister:
    """A Kubernetes list by name with limit/continue; counts calls."""

    def __init__(self, names: list[str]) -> None:
        self.names = sorted(names)
        self.calls: list[int] = []

    def __call__(self, limit: int, _continue: str | None = None) -> tuple[list[str], str | None]:
        self.calls.append(limit)
        start = int(_continue) if _continue else 0
        chunk = self.names[start : start + limit]
        following = str(start + limit) if start + limit < len(self.names) else None
        return chunk, following


def walk(lister: Lister, limit: int, keep: Any = None, chunk: int | None = None) -> list[list[str]]:
    pages: list[list[str]] = []
    page = paging.PageRequest(limit=limit, position=None, scope=SCOPE)
    while True:
        found, following = paging.kube_page(lister, page, keep=keep, name=lambda item: item, chunk=chunk)
        pages.append(found)
        if following is None:
            return pages
        page = paging.PageRequest(limit=limit, position=paging.parse_continue(following, SCOPE), scope=SCOPE)


def test_an_unfiltered_kube_page_is_one_call_of_the_limit():
    lister = Lister([f"n{i:02}" for i in range(7)])
    assert walk(lister, 3) == [["n00", "n01", "n02"], ["n03", "n04", "n05"], ["n06"]]
    assert lister.calls == [3, 3, 3]


def test_a_filtered_kube_page_fills_from_chunks_and_resumes_in_the_middle_of_one():
    names = [f"n{i:02}" for i in range(20)]
    lister = Lister(names)
    even = [name for name in names if int(name[1:]) % 2 == 0]
    pages = walk(lister, 3, keep=lambda name: int(name[1:]) % 2 == 0, chunk=4)
    assert [name for page in pages for name in page] == even  # nothing repeated, nothing skipped
    assert all(len(page) == 3 for page in pages[:-1])
    assert max(lister.calls) == 4


def test_all_pages_collects_every_page():
    lister = Lister([f"n{i:04}" for i in range(1203)])

    def fetch(page: paging.PageRequest) -> tuple[list[str], str | None]:
        return paging.kube_page(lister, page)

    assert paging.all_pages(fetch, SCOPE) == lister.names
    assert lister.calls == [paging.MAX_LIMIT] * 3
