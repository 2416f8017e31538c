"""What any operation stores is bounded (issue 17, finding 4): results, errors and operator detail.

A hostile archive once made one operation's result 20 MB, and every admin ``GET /tasks`` 50 MB. Each
kind summarises its own result; these bounds, applied where every outcome is recorded, hold for all.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from inferencemgmt.auth.identity import Identity
from inferencemgmt.errors import BadRequest
from inferencemgmt.operations.execution import execute_operation
from inferencemgmt.operations.models import Operation
from inferencemgmt.operations.services import ERROR_DESCRIPTION_MAX, ERROR_DETAIL_MAX, result_bounded

pytestmark = [pytest.mark.unit, pytest.mark.django_db]
State = Operation.State
ALICE = Identity("alice@example.com", ("team-a",))
HUGE = "n" * 1_000_000


class FakeTask:
    name = "tests.fake"

    def retry(self, countdown: float, max_retries: int | None) -> Exception:  # pragma: no cover - no retries here
        raise AssertionError("no retry expected")


def _run(body: Any) -> Operation:
    operation = Operation.objects.create(
        kind="tests.fake", target="t1", requested_by=ALICE.username, requested_identity=ALICE.as_record()
    )
    execute_operation(FakeTask(), str(operation.pk), body)
    operation.refresh_from_db()
    return operation


def _size(value: Any) -> int:
    return len(json.dumps(value).encode())


def test_a_small_result_is_stored_as_it_is():
    result = {"files": 2, "skipped": [{"name": "link", "reason": "links are not extracted"}]}
    assert result_bounded(result) == result


def test_a_huge_result_is_shortened_to_its_first_items_and_marked():
    operation = _run(lambda run: {"files": 3, "skipped": [{"name": f"{i}{HUGE}", "reason": "r"} for i in range(20)]})
    assert operation.state == State.SUCCEEDED
    result = operation.result
    assert isinstance(result, dict)
    assert _size(result) <= 8192
    assert result["truncated"] is True
    assert result["files"] == 3
    assert len(result["skipped"]) == 10
    assert result["skipped"][0]["name"].startswith("0nnn")
    assert "more characters" in result["skipped"][0]["name"]


@override_settings(IMM_OPERATION_RESULT_MAX_BYTES=1024)
def test_a_result_too_large_even_shortened_is_replaced_by_a_marker():
    result = result_bounded({f"key{i}": "v" * 300 for i in range(50)})
    assert result == {"truncated": True, "maxBytes": 1024}


def test_a_huge_error_description_and_detail_are_cut():
    def body(run: Any) -> None:
        raise BadRequest("Invalid archive", f"{HUGE} is not a readable tar archive", code="archive_invalid")

    operation = _run(body)
    assert operation.state == State.FAILED
    assert operation.error is not None
    assert operation.error["code"] == "archive_invalid"
    assert operation.error["status"] == 400
    assert len(operation.error["description"]) <= ERROR_DESCRIPTION_MAX + 40
    assert len(operation.error_detail) <= ERROR_DETAIL_MAX + 40


def _raise_huge(run: Any) -> None:
    raise RuntimeError(HUGE)


def test_the_task_list_of_hostile_operations_stays_small():
    for _ in range(5):
        _run(lambda run: {"skipped": [{"name": HUGE, "reason": "r"}] * 1000})
        _run(_raise_huge)
    client = APIClient()
    client.force_authenticate(user=ALICE)  # type: ignore[arg-type]  # our Identity is the request user
    answer = client.get("/tasks?limit=200")
    assert answer.status_code == 200
    assert len(json.loads(answer.content)["data"]["tasks"]) == 10
    assert len(answer.content) < 10 * 10_000
