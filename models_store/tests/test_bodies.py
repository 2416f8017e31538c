"""Request bodies of the model routes: ``modelVersion`` has the bounds ``keys.version`` gives the part upload.

Found by checking the schema's bounds against the routes: ``POST /tenants/<t>/uploads`` with
``modelVersion`` 2**63 answered 500 (the number overflowed the BigIntegerField of the upload row),
and ``upload/start`` accepted a version the part upload then refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from models_store import keys
from models_store.api import serializers as bodies

pytestmark = pytest.mark.unit

FILE = {"modelName": "resnet", "fileName": "saved_model.pb"}
BODIES: list[tuple[type[Any], dict[str, Any]]] = [
    (bodies.ModelDeleteSerializer, {"modelName": "resnet"}),
    (bodies.UploadStartSerializer, FILE),
    (bodies.UploadAbortSerializer, {**FILE, "uploadId": "u"}),
    (bodies.UploadDoneSerializer, {**FILE, "uploadId": "u", "parts": []}),
    (bodies.UploadDirSerializer, {"modelName": "resnet", "key": "assets"}),
    (bodies.DirectStartSerializer, {"modelName": "resnet", "path": "m.bin", "size": 1}),
    (bodies.ModelExtractSerializer, {"modelName": "resnet", "archive": "m.tar"}),
    (bodies.ModelImportSerializer, {"modelName": "resnet", "source": "s3://t/m"}),
]


@pytest.mark.parametrize(("serializer", "body"), BODIES)
def test_the_largest_int64_version_is_accepted(serializer, body):
    checked = serializer(data={**body, "modelVersion": keys.VERSION_MAX})
    assert checked.is_valid(), checked.errors
    assert checked.validated_data["modelVersion"] == keys.VERSION_MAX


@pytest.mark.parametrize(("serializer", "body"), BODIES)
@pytest.mark.parametrize("version", [2**63, 10**30])
def test_a_version_beyond_int64_is_a_validation_error(serializer, body, version):
    checked = serializer(data={**body, "modelVersion": version})
    assert not checked.is_valid()
    assert checked.errors["modelVersion"] == [f"{version} is greater than the maximum of {keys.VERSION_MAX}"]
