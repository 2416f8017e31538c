"""Part-size planning of direct uploads and the completion checks of the original protocol."""

from __future__ import annotations

import pytest
from django.test import override_settings

from inferencemgmt.errors import BadRequest
from models_store import services
from models_store.models import DirectUpload

pytestmark = pytest.mark.unit
MIB = 1024 * 1024


@override_settings(IMM_UPLOAD_PART_BYTES=64 * MIB)
def test_default_part_size_grows_so_ten_thousand_parts_suffice():
    assert services.part_size_for(10 * MIB, None) == 64 * MIB
    one_tib = 1024 * 1024 * MIB
    size = services.part_size_for(one_tib, None)
    assert size % MIB == 0
    assert -(-one_tib // size) <= 10_000


@pytest.mark.parametrize(
    ("size", "part_size", "code"),
    [
        (10 * MIB, 4 * MIB, "part_size_invalid"),
        (10 * MIB, 6 * 1024 * MIB, "part_size_invalid"),
        (10_001 * 5 * MIB, 5 * MIB, "part_size_invalid"),
        (6 * 1024 * 1024 * 1024 * MIB, None, "size_invalid"),
    ],
)
def test_impossible_plans_are_refused(size, part_size, code):
    with pytest.raises(BadRequest) as caught:
        services.part_size_for(size, part_size)
    assert caught.value.code == code


def test_plan_parts():
    upload = DirectUpload(size=12 * MIB + 3, part_size=5 * MIB)
    assert upload.part_count == 3
    assert [upload.expected_part_size(n) for n in (1, 2, 3)] == [5 * MIB, 5 * MIB, 2 * MIB + 3]
    assert DirectUpload(size=0, part_size=5 * MIB).part_count == 1
    assert DirectUpload(size=10 * MIB, part_size=5 * MIB).expected_part_size(2) == 5 * MIB


def stored(*sizes: int) -> list[dict[str, object]]:
    return [{"partNumber": n, "size": s, "etag": f'"e{n}"'} for n, s in enumerate(sizes, start=1)]


def test_completion_keeps_parts_and_drops_an_empty_last_one():
    parts = stored(5 * MIB, 5 * MIB, 0)
    chosen = services._parts_checked([(1, '"e1"'), (2, "e2"), (3, '"e3"')], parts)
    assert chosen == [(1, '"e1"'), (2, "e2")]
    assert services._parts_checked([(1, '"e1"')], stored(0)) == [(1, '"e1"')]


@pytest.mark.parametrize(
    ("requested", "sizes", "message"),
    [
        ([], (5 * MIB,), "At least one part"),
        ([(2, "e2"), (1, "e1")], (5 * MIB, 1), "ascending"),
        ([(1, "e1"), (1, "e1")], (5 * MIB, 1), "unique"),
        ([(1, "e1"), (3, "e3")], (5 * MIB, 1), "Part 3 was not uploaded"),
        ([(1, "wrong")], (5 * MIB,), "ETag of part 1"),
        ([(1, "e1"), (2, "e2")], (MIB, 1), "Part 1 is smaller than 5 MiB"),
    ],
)
def test_completion_rules_are_checked_before_the_store(requested, sizes, message):
    with pytest.raises(BadRequest) as caught:
        services._parts_checked(requested, stored(*sizes))
    assert message in str(caught.value.description)
