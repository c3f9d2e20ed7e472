"""The service's OpenAPI document (Swagger UI at /, the document at /docs.json), as a user should find it.

BentoML 1.4 titles the document with the class name, versions it with the Bento's tag ("None" under
`bentoml serve`), describes it with a generated "HousePriceService:dev" readme and documents BentoML's
own error bodies. `@bentoml.service(service_class=DocumentedService)` (a parameter of the decorator) keeps
BentoML's document and corrects it:

- the title, version and summary are the project's (`pyproject.toml`, read through its installed metadata);
- every operation that validates its input documents its 422 and every one with a body its 413, both an
  `InvalidInput` (`{"error": ..., "detail": [{"loc", "field", "msg", "type"}]}`), the one shape every
  endpoint answers them with (BentoML APIs, the FastAPI routes and the body-size limit alike);
- the prediction APIs document their 500 and 503 (`Problem`: `error`, and `detail` when there is more).

The request bodies' examples (what "Try it out" sends) come from `serving.schemas`.
"""

from __future__ import annotations

import importlib.metadata
import json
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import bentoml
from bentoml._internal.service.openapi.specification import OpenAPISpecification
from bentoml._internal.utils.cattr import bentoml_cattr
from pydantic import BaseModel

from serving.bodies import as_openapi_30
from serving.schemas import MAX_BODY_BYTES, InvalidInput, Problem

#: The distribution this service is part of (pyproject.toml's `[project] name`).
PROJECT = "mlops-assets"
REF = "#/components/schemas/{model}"
METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
#: FastAPI's own 422 body, which the service does not answer with (serving.app turns it into an InvalidInput).
FASTAPI_ERRORS = ("HTTPValidationError", "ValidationError")


@dataclass(frozen=True)
class Project:
    name: str
    version: str
    summary: str


@lru_cache(maxsize=1)
def project() -> Project:
    """The project's name, version and summary: its installed metadata (`make setup` installs it), else its
    pyproject.toml (the serving image copies it, not the package), else the name and version "unknown"."""
    try:
        meta = importlib.metadata.metadata(PROJECT)
        return Project(meta["Name"], meta["Version"], meta["Summary"] or "")
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        data = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
        return Project(str(data["name"]), str(data["version"]), str(data.get("description", "")))
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return Project(PROJECT, "unknown", "")


def title() -> str:
    return f"{project().name}: house price API"


def description() -> str:
    """The document's description (Markdown), shown at the top of Swagger UI."""
    return f"""{project().summary}

Prices one property (`POST /predict`) or up to 10,000 (`POST /batch_predict`), and explains a price
(`POST /explain`, TreeSHAP), with the model version that holds the `champion` alias in the MLflow registry;
`GET /model` says which one. The service's version here is the project's; `model_version` in each answer is the
model's.

- **Units**: prices in US dollars, to the cent (the same price for the same property from every endpoint);
  `house_size` in square feet, `acre_lot` in acres.
- **Warnings**: every price comes with `warnings`: what the model could not use (an unknown state or zip code)
  and any input outside the range the model was trained on (that price is an extrapolation).
- **Errors**: every error answer is a JSON object with `error`, a sentence, and `detail` when there is more.
  A 422 (invalid input) and a 413 (a body over {MAX_BODY_BYTES // 2**20} MiB) list every field at fault in
  `detail`: `{{"loc": ["body", "bed"], "field": "bed", "msg": "...", "type": "..."}}` (`InvalidInput`).
"""


def _response(text: str, model: str) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}}}


INVALID = _response(
    "Invalid input: every field at fault, with where it is (`loc`, `field`), why (`msg`) and the kind (`type`)",
    "InvalidInput",
)
TOO_LARGE = _response(
    f"The body is over {MAX_BODY_BYTES:,} bytes: refused before it is read, in the same shape as a 422",
    "InvalidInput",
)
UNAVAILABLE = _response(
    "No model is loaded yet (`detail` says why, e.g. no champion), or (/batch_predict) the inference log has no room "
    "for the rows now: retry after `Retry-After`",
    "Problem",
)
FAILED = _response("The prediction failed: `request_id` finds it in the server log", "Problem")


def _component_schemas(*models: type[BaseModel]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    as_openapi_30(schemas)
    return schemas


def document(spec: dict[str, Any]) -> dict[str, Any]:
    """BentoML's document (a JSON dict) with the project's title, version and description, and the service's
    error answers; returns a new dict."""
    doc = json.loads(json.dumps(spec))  # a deep copy, with string status codes
    doc["info"] = {"title": title(), "version": project().version, "description": description()}
    for item in doc.get("paths", {}).values():
        for method in METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            is_api = "x-bentoml-name" in operation  # a BentoML API: POST /predict, /batch_predict, /explain
            if is_api or "422" in responses:  # FastAPI documents a 422 for every route with parameters
                responses["422"] = INVALID
            if "requestBody" in operation:
                responses["413"] = TOO_LARGE
            if is_api:
                responses["500"] = FAILED
                responses["503"] = UNAVAILABLE
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(_component_schemas(InvalidInput, Problem))
    for name in FASTAPI_ERRORS:  # HTTPValidationError first: it is what refers to ValidationError
        if name in schemas and f'"{REF.format(model=name)}"' not in json.dumps(doc):
            del schemas[name]
    return doc


class DocumentedService(bentoml.Service[Any]):
    """BentoML's Service with the document above (`openapi_spec` is what /docs.json and `bentoml build` read)."""

    @property
    def doc(self) -> str:
        return description()

    @property
    def openapi_spec(self) -> OpenAPISpecification:
        corrected = document(super().openapi_spec.asdict())
        return bentoml_cattr.structure(corrected, OpenAPISpecification)
