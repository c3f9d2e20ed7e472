"""BentoML input descriptors that hand the endpoint the raw request body.

BentoML's own parsing answers a validation error with 400 and malformed JSON on a root input with
500; the issue asks for 422 naming the field. So the body arrives as bytes and `serving.schemas`
parses and validates it in one pydantic pass, while the OpenAPI schema (what clients and
schemathesis read) still describes the real JSON body.
"""

from __future__ import annotations

from typing import Any, ClassVar

import bentoml
from pydantic import TypeAdapter

from serving.config import MAX_BATCH_ITEMS
from serving.schemas import BATCH_EXAMPLE, Property


class _RawBody(bentoml.IODescriptor):
    data: bytes = b""
    __root_input__: ClassVar[bool] = True
    body_schema: ClassVar[TypeAdapter]

    @classmethod
    async def from_http_request(cls, request, serde) -> _RawBody:
        return cls.model_construct(data=await request.body())

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return cls._finish(cls.body_schema.json_schema(*args, **kwargs), **kwargs)

    @classmethod
    def _finish(cls, schema: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if "ref_template" in kwargs:  # BentoML's OpenAPI 3.0 document (/docs.json)
            as_openapi_30(schema)
        else:  # BentoML's /schema.json, which its Python client reads
            schema["root_input"] = True
        return schema


def as_openapi_30(node: Any) -> None:
    """Pydantic writes JSON Schema 2020-12 (`exclusiveMinimum: 0`, `examples: [...]`), but BentoML's document says
    OpenAPI 3.0, where it is `minimum: 0, exclusiveMinimum: true` (tools such as schemathesis reject the other form)
    and one `example` (what Swagger UI's "Try it out" sends; BentoML's document keeps no `examples`)."""
    if isinstance(node, dict):
        bound = node.get("exclusiveMinimum")
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            node["minimum"], node["exclusiveMinimum"] = bound, True
        examples = node.get("examples")
        if isinstance(examples, list) and examples:
            node["example"] = node.pop("examples")[0]
        for value in node.values():
            as_openapi_30(value)
    elif isinstance(node, list):
        for value in node:
            as_openapi_30(value)


class PropertyBody(_RawBody):
    """A JSON object: one property."""

    body_schema: ClassVar[TypeAdapter] = TypeAdapter(Property)


class BatchBody(_RawBody):
    """A JSON list of properties."""

    body_schema: ClassVar[TypeAdapter] = TypeAdapter(list[Property])

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        schema = cls.body_schema.json_schema(*args, **kwargs)
        schema.update(minItems=1, maxItems=MAX_BATCH_ITEMS, examples=[BATCH_EXAMPLE])
        return cls._finish(schema, **kwargs)
