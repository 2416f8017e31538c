"""The OpenAPI schema describes the answers the routes really give (the envelope, not bare data).

Found by the schema fuzzing (test_fuzz_schema): `GET /tasks` was documented as a bare array of
operations while it answers `{"status": "OK", "data": {"tasks": [...]}}`.
"""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.unit


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def answer(schema: dict[str, Any], path: str) -> dict[str, Any]:
    content = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    return resolve(schema, content)


def test_task_list_is_documented_in_its_envelope(schema):
    documented = answer(schema, "/tasks")
    assert set(documented["properties"]) == {"status", "data"}
    tasks = resolve(schema, documented["properties"]["data"])["properties"]["tasks"]
    assert tasks["type"] == "array"


def test_task_is_documented_in_its_envelope(schema):
    documented = answer(schema, "/tasks/{operation_id}")
    assert set(documented["properties"]) == {"status", "data"}
    assert "state" in resolve(schema, documented["properties"]["data"])["properties"]
