"""Request validation and response documentation for the prediction endpoints.

Bodies arrive as raw bytes and are parsed and validated in one pydantic pass (Rust), so a bad body
- malformed JSON, a string where a number belongs, NaN, an out-of-range value - becomes a 422 that
names the field and the reason, never a 5xx and never a silent default. The field names are the
original API's, so its clients keep working.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, NotRequired

import pydantic_core
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    with_config,
)
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from mlops_assets.core.cleaning import normalize_status
from mlops_assets.core.schema import STATUSES
from serving.config import MAX_BATCH_ITEMS

#: Raw bodies larger than this are refused before parsing (a full batch is ~1.5 MB).
MAX_BODY_BYTES = 16 * 1024 * 1024
#: The `error` of a 422 and of a 413.
INVALID_INPUT = "invalid input"
TOO_LARGE = "request body too large"


#: A finite JSON number: strict ("3" and true are not numbers), allow_inf_nan=False (NaN/Infinity are refused).
_FINITE: dict[str, Any] = {"strict": True, "allow_inf_nan": False}


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _printable(value: str | None) -> str | None:
    """NUL and other control characters: never a place name, and PostgreSQL cannot store NUL."""
    if value is not None and _CONTROL.search(value):
        raise ValueError("control characters (such as NUL) are not allowed")
    return value


Bedrooms = Annotated[float, Field(description="bedrooms, 0-50", ge=0, le=50, **_FINITE)]
Bathrooms = Annotated[float, Field(description="bathrooms, 0-50", ge=0, le=50, **_FINITE)]
Acres = Annotated[float, Field(description="lot size in acres, 0-100,000", ge=0, le=100_000, **_FINITE)]
SquareFeet = Annotated[
    float, Field(description="living space in square feet, > 0 and <= 1,000,000", gt=0, le=1_000_000, **_FINITE)
]
BrokerId = Annotated[
    float, Field(description="the listing broker's id in the realtor data (optional; not used for the price)", ge=0,
                 **_FINITE)
]  # fmt: skip
StreetId = Annotated[
    float, Field(description="the street id in the realtor data (optional; not used for the price)", ge=0, **_FINITE)
]
Status = Annotated[str, Field(max_length=32), AfterValidator(_printable)]
City = Annotated[str, Field(max_length=128), AfterValidator(_printable)]
ZipText = Annotated[str, Field(max_length=10), AfterValidator(_printable)]


def _known_status(value: str | None) -> str | None:
    if value is None:
        return None
    canonical = normalize_status(value)
    if canonical is None:
        raise ValueError(f"unknown status; expected one of {', '.join(STATUSES)}")
    return canonical


_ZIP = re.compile(r"^\d{5}(-\d{4})?$")


def _zip_text(value: object) -> object:
    """2108 or 2108.0 (the realtor file's float) -> '02108'; anything not a string or a 0-99999 integer is refused."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value == int(value) and 0 <= value <= 99_999:
        return f"{int(value):05d}"
    raise ValueError("a ZIP code is 5 digits: a string ('02108') or an integer 0-99999")


def _zip_five(value: str | None) -> str | None:
    if value is not None and not _ZIP.match(value):
        raise ValueError("a ZIP code is 5 digits, optionally followed by -dddd")
    return None if value is None else value[:5]


#: A typical listing, inside every range the models are trained on: what Swagger's "Try it out" sends.
PROPERTY_EXAMPLE: dict[str, Any] = {
    "bed": 3,
    "bath": 2,
    "acre_lot": 0.25,
    "house_size": 1800,
    "state": "California",
    "status": "for_sale",
    "city": "Los Angeles",
    "zip_code": "90001",
}
BATCH_EXAMPLE: list[dict[str, Any]] = [
    PROPERTY_EXAMPLE,
    {"bed": 2, "bath": 1, "acre_lot": 0.1, "house_size": 950, "state": "Massachusetts", "status": "for_sale",
     "city": "Boston", "zip_code": "02108"},
    {"bed": 4, "bath": 3, "acre_lot": 1.5, "house_size": 2600, "state": "TX"},
]  # fmt: skip


@with_config(ConfigDict(str_strip_whitespace=True, json_schema_extra={"examples": [PROPERTY_EXAMPLE]}))
class Property(TypedDict):
    """One listing to price, as the original API took it (a TypedDict: validating 10,000 is 4x faster than models)."""

    bed: Bedrooms
    bath: Bathrooms
    acre_lot: Acres
    house_size: SquareFeet
    state: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            description="US state name or postal code ('California', 'CA'); an unknown one uses the global mean",
        ),
        AfterValidator(_printable),
    ]
    status: NotRequired[
        Annotated[
            Status | None,
            AfterValidator(_known_status),
            Field(description=f"one of {', '.join(STATUSES)} ('For Sale' is accepted); optional"),
        ]
    ]
    city: NotRequired[
        Annotated[City | None, Field(description="city; its price level is used when the zip code is unknown")]
    ]
    zip_code: NotRequired[
        Annotated[
            ZipText | None,
            BeforeValidator(_zip_text),
            AfterValidator(_zip_five),
            Field(description="ZIP code, '02108' or 2108; the most precise location the model uses (optional)"),
        ]
    ]
    brokered_by: NotRequired[
        Annotated[
            BrokerId | None,
            Field(description="with street: names the property, so its later sale is matched to this prediction"),
        ]
    ]
    street: NotRequired[
        Annotated[
            StreetId | None,
            Field(description="with brokered_by: names the property, so its later sale is matched to this prediction"),
        ]
    ]


_PROPERTY = TypeAdapter(Property)
_PROPERTIES = TypeAdapter(list[Property])


class InputError(Exception):
    """A request that cannot be served as sent; `errors` are the 422 body's `detail`."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['msg']}" for e in errors))
        self.errors = errors


def field_error(
    loc: tuple | list, msg: str, kind: str, index: int | None = None, where: str = "body"
) -> dict[str, Any]:
    """One problem (a `FieldError`): `field` names it ("body" for the whole body); `loc` is FastAPI's path to it,
    starting with where it was sent (body, query, path), then the batch item's index if any."""
    field = ".".join(str(part) for part in loc) or where
    prefix: list[str | int] = [where] if index is None else [where, index]
    return {"loc": [*prefix, *loc], "field": field, "msg": msg, "type": kind}


def _errors(error: ValidationError, index: int | None = None) -> list[dict[str, Any]]:
    return [
        field_error(e["loc"], e["msg"], e["type"], index) for e in error.errors(include_url=False, include_input=False)
    ]


def error_body(errors: list[dict[str, Any]], message: str = INVALID_INPUT) -> dict[str, Any]:
    """The 422 (and 413) body, an `InvalidInput`: FastAPI's `detail` list (clients of the original API parse it),
    plus `field`, under the `error` sentence every error answer of the service carries."""
    return {"error": message, "detail": errors}


def _check_size(body: bytes) -> None:
    if len(body) > MAX_BODY_BYTES:
        raise InputError([field_error((), f"the body is {len(body):,} bytes; at most {MAX_BODY_BYTES:,}", "too_large")])


def parse_property(body: bytes) -> Property:
    """One property from a JSON object body."""
    _check_size(body)
    try:
        return _PROPERTY.validate_json(body)
    except ValidationError as error:
        raise InputError(_errors(error)) from None


def parse_batch(body: bytes) -> list[Property | list[dict[str, Any]]]:
    """A JSON list body -> per item, the Property or that item's errors (so valid items still get a price)."""
    _check_size(body)
    try:
        items = pydantic_core.from_json(body)
    except ValueError as error:
        raise InputError([field_error((), f"Invalid JSON: {error}", "json_invalid")]) from None
    if not isinstance(items, list):
        raise InputError([field_error((), "the body must be a JSON list of properties", "list_type")])
    if not items:
        raise InputError([field_error((), "the list is empty; send at least 1 property", "too_short")])
    if len(items) > MAX_BATCH_ITEMS:
        raise InputError(
            [field_error((), f"{len(items):,} properties; at most {MAX_BATCH_ITEMS:,} per request", "too_long")]
        )
    try:  # the common case, all valid: one pass in pydantic-core
        return list(_PROPERTIES.validate_python(items))
    except ValidationError:
        pass
    results: list[Property | list[dict[str, Any]]] = []
    for index, item in enumerate(items):
        try:
            results.append(_PROPERTY.validate_python(item))
        except ValidationError as error:
            results.append(_errors(error, index))
    return results


# --- response documentation (the OpenAPI schema); the endpoints build plain dicts ---


class FieldError(BaseModel):
    """One reason a request was refused."""

    model_config = ConfigDict(extra="forbid")

    loc: list[str | int] = Field(
        description="where: 'body', 'query' or 'path', then the batch item's index if any, then the field",
        examples=[["body", "house_size"]],
    )
    field: str = Field(description="the field ('body' for the whole body)", examples=["house_size"])
    msg: str = Field(examples=["Input should be greater than 0"])
    type: str = Field(description="the kind of problem, e.g. greater_than, json_invalid, too_large")


INVALID_EXAMPLE = error_body(
    [field_error(("house_size",), "Input should be greater than 0", "greater_than")], INVALID_INPUT
)


class InvalidInput(BaseModel):
    """A 422 (the request cannot be served as sent) or a 413 (the body is over the limit): every field at fault."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [INVALID_EXAMPLE]})

    error: str = Field(description=f"'{INVALID_INPUT}' (422) or '{TOO_LARGE}' (413)")
    detail: list[FieldError]


class Problem(BaseModel):
    """Any other error answer (401, 403, 404, 500, 503): what went wrong, and the details when there are some."""

    error: str = Field(description="what went wrong, in a sentence")
    detail: Any = Field(default=None, description="more about it: a sentence or an object, when there is more")
    request_id: str | None = Field(default=None, description="a 500's request, to find it in the server log")


class PredictionOut(BaseModel):
    price: float = Field(description="predicted price, US dollars to the cent")
    model_name: str
    model_version: str
    model_alias: str
    request_id: str = Field(description="also the key of this prediction in inference_log")
    features_used: dict[str, float] = Field(description="the model's input features, by name")
    warnings: list[str] = Field(
        description="what to know about this price, e.g. an unknown state that fell back to the global mean, or an "
        "input outside the range the model was trained on"
    )


class BatchItemOut(BaseModel):
    index: int
    price: float | None = Field(default=None, description="US dollars to the cent; absent when the item is invalid")
    request_id: str | None = None
    warnings: list[str] | None = None
    error: str | None = Field(default=None, description="why this item got no price")
    detail: list[FieldError] | None = Field(default=None, description="why, per field, as in a 422")


class BatchOut(BaseModel):
    predictions: list[BatchItemOut] = Field(description="one entry per input item, in order")
    model_version: str
    model_name: str
    count: int
    failed: int


class ExplanationOut(BaseModel):
    price: float = Field(
        description="predicted price, US dollars to the cent: the price /predict answers for the same property "
        "(= expm1(base_value + sum(shap_values)) to the model's float32 precision)"
    )
    base_value: float = Field(description="the model's expected output, in log1p(US dollars)")
    base_price: float = Field(description="expm1(base_value), US dollars to the cent")
    shap_values: list[float] = Field(description="TreeSHAP value per feature, in log1p(US dollars); NOT dollars")
    feature_names: list[str]
    feature_values: list[float]
    contributions_usd: list[float] = Field(
        description="US dollars to the cent per feature: price - base_price allocated in proportion to shap_values; "
        "sums to it"
    )
    model_name: str
    model_version: str
    request_id: str
    warnings: list[str]
    units: dict[str, str]
