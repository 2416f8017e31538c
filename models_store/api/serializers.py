"""Request bodies of the model and upload routes, in the original's jsonschema words.

The shapes are the original's (docs/compatibility.md) with its gaps closed: ``upload/dir`` requires
``modelName`` and ``modelVersion`` (a KeyError 500 before), and the items of ``parts`` must be
exactly ``{"ETag": str, "PartNumber": int}`` (extra keys reached boto3 and gave a 500).
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from inferencemgmt.api.validation import StrictBoolean, StrictInteger, StrictString, required_messages
from inferencemgmt.objectstore import PART_NUMBER_MAX, PART_NUMBER_MIN
from models_store import keys

MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")


@extend_schema_field(
    {
        "type": "string",
        "minLength": keys.MODEL_NAME_MIN,
        "maxLength": keys.MODEL_NAME_MAX,
        "pattern": keys.MODEL_NAME_PATTERN,
    }
)
class ModelNameString(StrictString):
    """A model name; the view then applies ``keys.model_name`` (its own words), which the schema states too."""


@extend_schema_field({"type": "string", "pattern": keys.RELATIVE_PATH_PATTERN})
class RelativePathString(StrictString):
    """A path under the version directory; checked by ``keys.relative_path`` in the view, stated in the schema."""


def _name() -> StrictString:
    return ModelNameString(min_length=3, error_messages=required_messages("modelName"))


def _version() -> StrictInteger:
    """The bounds of ``keys.version`` (an int64 directory name, a BigIntegerField row): a larger number
    was accepted here and then overflowed the database (a 500 on ``POST .../uploads``)."""
    return StrictInteger(minimum=1, maximum=keys.VERSION_MAX, error_messages=required_messages("modelVersion"))


def _string(field: str, **kwargs: Any) -> StrictString:
    return StrictString(error_messages=required_messages(field), **kwargs)


def _path(field: str) -> StrictString:
    return RelativePathString(error_messages=required_messages(field))


def _part_number(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise serializers.ValidationError(f"{where}: {value!r} is not of type 'integer'")
    if not PART_NUMBER_MIN <= value <= PART_NUMBER_MAX:
        raise serializers.ValidationError(f"{where}: {value} is not from {PART_NUMBER_MIN} to {PART_NUMBER_MAX}")
    return int(value)


def _items(data: Any, fields: tuple[str, str]) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        raise serializers.ValidationError(f"{data!r} is not of type 'array'")
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise serializers.ValidationError(f"item {index}: {item!r} is not of type 'object'")
        for field in fields:
            if field not in item:
                raise serializers.ValidationError(f"item {index}: '{field}' is a required property")
        unknown = sorted(set(item) - set(fields))
        if unknown:
            raise serializers.ValidationError(f"item {index}: unknown property '{unknown[0]}'")
    return data


def _parts_schema(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        },
    }


_PART_NUMBER = {"type": "integer", "minimum": PART_NUMBER_MIN, "maximum": PART_NUMBER_MAX}


@extend_schema_field(_parts_schema({"ETag": {"type": "string", "minLength": 1}, "PartNumber": _PART_NUMBER}))
class CompletedPartsField(serializers.Field[list[tuple[int, str]], Any, Any, Any]):
    """The original's ``parts``: ``[{"ETag": "\\"...\\"", "PartNumber": n}, ...]``."""

    def to_internal_value(self, data: Any) -> list[tuple[int, str]]:
        parts = []
        for index, item in enumerate(_items(data, ("ETag", "PartNumber"))):
            if not isinstance(item["ETag"], str) or not item["ETag"]:
                raise serializers.ValidationError(f"item {index}: 'ETag' must be a non-empty string")
            parts.append((_part_number(item["PartNumber"], f"item {index}"), item["ETag"]))
        return parts

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(
    _parts_schema({"partNumber": _PART_NUMBER, "md5": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"}})
)
class ChecksummedPartsField(serializers.Field[dict[int, str], Any, Any, Any]):
    """A direct upload's ``parts``: ``[{"partNumber": n, "md5": "<32 hex digits>"}, ...]``."""

    def to_internal_value(self, data: Any) -> dict[int, str]:
        checksums: dict[int, str] = {}
        for index, item in enumerate(_items(data, ("partNumber", "md5"))):
            number = _part_number(item["partNumber"], f"item {index}")
            if not isinstance(item["md5"], str) or not MD5_HEX.fullmatch(item["md5"]):
                raise serializers.ValidationError(f"item {index}: 'md5' must be 32 hexadecimal digits")
            if number in checksums:
                raise serializers.ValidationError(f"item {index}: part {number} is given twice")
            checksums[number] = item["md5"].lower()
        return checksums

    def to_representation(self, value: Any) -> Any:
        return value


class ModelDeleteSerializer(serializers.Serializer[dict[str, Any]]):
    modelName = _name()  # noqa: N815 -- the documented JSON key
    modelVersion = _version()  # noqa: N815
    force = StrictBoolean(required=False, default=False)


class UploadStartSerializer(serializers.Serializer[dict[str, Any]]):
    modelName = _name()  # noqa: N815
    modelVersion = _version()  # noqa: N815
    fileName = _path("fileName")  # noqa: N815
    key = RelativePathString(required=False, allow_null=True)


class UploadAbortSerializer(UploadStartSerializer):
    uploadId = _string("uploadId")  # noqa: N815


class UploadDoneSerializer(UploadAbortSerializer):
    parts = CompletedPartsField(error_messages=required_messages("parts"))


class UploadDirSerializer(serializers.Serializer[dict[str, Any]]):
    modelName = _name()  # noqa: N815
    modelVersion = _version()  # noqa: N815
    key = _path("key")


class DirectStartSerializer(serializers.Serializer[dict[str, Any]]):
    modelName = _name()  # noqa: N815
    modelVersion = _version()  # noqa: N815
    path = _path("path")
    size = StrictInteger(minimum=0, error_messages=required_messages("size"))
    partSize = StrictInteger(minimum=1, required=False)  # noqa: N815


class DirectCompleteSerializer(serializers.Serializer[dict[str, Any]]):
    parts = ChecksummedPartsField(error_messages=required_messages("parts"))


class ModelExtractSerializer(serializers.Serializer[dict[str, Any]]):
    modelName = _name()  # noqa: N815
    modelVersion = _version()  # noqa: N815
    archive = _path("archive")
    keepArchive = StrictBoolean(required=False, default=False)  # noqa: N815


class ModelImportSerializer(serializers.Serializer[dict[str, Any]]):
    modelName = _name()  # noqa: N815
    modelVersion = _version()  # noqa: N815
    # DRF's metaclass moves declared fields out of the class, so this does not shadow Field.source.
    source = _string("source", max_length=4096)  # type: ignore[assignment]
    path = RelativePathString(required=False, allow_null=True)
