"""The realtor listings schema: one declaration of the listing columns, and the raw-batch validation.

`LISTING_COLUMNS` says, once, what each column is and which parts use it; everything else is derived
from it: the raw file's columns and kinds, the warehouse's listing columns and text widths
(storage.warehouse), the columns cleaning requires and range-checks (core.cleaning), the model's
inputs (core.features, serving's request model and inference log), the columns drift watches
(ml.drift). A test checks serving's request model against it.

Pure pandas: imported by the pipeline and by serving alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

TARGET = "price"

Role = Literal["required", "range_checked", "measure", "input", "location", "identity", "monitored"]


@dataclass(frozen=True)
class ListingColumn:
    """One column of the realtor file and what the platform does with it.

    Roles: `required` - a clean row must have it; `range_checked` - cleaning drops rows outside its
    range (core.cleaning.Ranges); `measure` - a size a person gives (serving checks it against the
    training range); `input` - the model prices from it (serving's request takes it, the inference log
    keeps it); `location` - an optional, finer place than the state; `identity` - optional, only to
    recognise the same house later (core.properties); `monitored` - drift watches it.
    """

    name: str
    kind: Literal["number", "text"]
    roles: frozenset[Role] = frozenset()
    width: int | None = None
    """Text only: the most characters the warehouse column (and so `validate_raw`) takes."""


def _column(name: str, kind: Literal["number", "text"], *roles: Role, width: int | None = None) -> ListingColumn:
    return ListingColumn(name, kind, frozenset(roles), width)


#: The 12 columns of the realtor file, in file order.
LISTING_COLUMNS: tuple[ListingColumn, ...] = (
    _column("brokered_by", "number", "identity"),
    _column("status", "text", "input", "monitored", width=32),
    _column("price", "number", "required", "range_checked", "monitored"),
    _column("bed", "number", "required", "range_checked", "measure", "input", "monitored"),
    _column("bath", "number", "required", "range_checked", "measure", "input", "monitored"),
    _column("acre_lot", "number", "range_checked", "measure", "input", "monitored"),
    _column("street", "number", "identity"),
    _column("city", "text", "location", width=128),
    _column("state", "text", "input", "monitored", width=64),
    _column("zip_code", "number", "location"),
    _column("house_size", "number", "required", "range_checked", "measure", "input", "monitored"),
    _column("prev_sold_date", "text", width=32),
)


def columns_with(role: Role, kind: str | None = None) -> tuple[str, ...]:
    """The names of the listing columns with `role` (and of `kind`), in file order."""
    return tuple(c.name for c in LISTING_COLUMNS if role in c.roles and kind in (None, c.kind))


#: The columns of the realtor file, in file order, with their kind.
RAW_COLUMNS: dict[str, str] = {c.name: c.kind for c in LISTING_COLUMNS}
NUMERIC_COLUMNS = [c for c, kind in RAW_COLUMNS.items() if kind == "number"]
TEXT_COLUMNS = [c for c, kind in RAW_COLUMNS.items() if kind == "text"]
#: A clean row has every one of these.
REQUIRED_COLUMNS = columns_with("required")
#: Sizes a person gives: bed, bath, acre_lot, house_size.
MEASURE_COLUMNS = columns_with("measure")
#: What the model prices from, besides the optional location: the six fields of a request.
INPUT_COLUMNS = columns_with("input")
LOCATION_COLUMNS = columns_with("location")
IDENTITY_COLUMNS = columns_with("identity")
#: Drift watches these: numbers by a distance, categories by their shares.
MONITORED_NUMERIC = columns_with("monitored", "number")
MONITORED_CATEGORICAL = columns_with("monitored", "text")

#: Statuses seen in the realtor data; cleaning maps spellings onto these.
STATUSES = ("for_sale", "ready_to_build", "sold")

#: The most characters each text column may hold: the warehouse declares its columns with these
#: widths (storage.warehouse), and `validate_raw` refuses longer text, so a batch PostgreSQL would
#: refuse (varchar(n)) is refused by its check on SQLite too, which ignores widths.
TEXT_WIDTHS: dict[str, int] = {c.name: c.width for c in LISTING_COLUMNS if c.width is not None}

#: Numeric columns whose every value cleaning checks against a fixed range (core.cleaning.Ranges):
#: a non-finite price, bed, bath, house size or lot is a row dropped and counted there
#: (`<column>_out_of_range`), like any other impossible value, not a malformed batch.
RANGE_CHECKED_COLUMNS = columns_with("range_checked")

#: The other numeric columns are identifiers no rule checks: an infinite broker, street or zip code
#: would pass into clean data as is (or, for zip_code, silently become missing), so
#: `validate_raw` refuses non-finite values there.
FINITE_REQUIRED_COLUMNS = tuple(c for c in NUMERIC_COLUMNS if c not in RANGE_CHECKED_COLUMNS)

# C0 and C1 control characters (NUL included: PostgreSQL text cannot hold it) and lone surrogates
# (not encodable as UTF-8).
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(frozen=True)
class SchemaProblem:
    """One reason a raw batch cannot be loaded, in words an operator can act on."""

    column: str
    reason: str

    def __str__(self) -> str:
        return f"{self.column}: {self.reason}"


def validate_raw(frame: pd.DataFrame, max_examples: int = 3) -> list[SchemaProblem]:
    """Check a raw batch against the schema; an empty list means it can be loaded.

    Missing values are allowed (the data has many); values of the wrong type are not: a number
    column must hold numbers, empty or numeric strings only (finite ones in
    FINITE_REQUIRED_COLUMNS), and text must fit the warehouse (TEXT_WIDTHS, no control characters).
    """
    problems: list[SchemaProblem] = []
    if frame.empty:
        problems.append(SchemaProblem("<batch>", "the batch has no rows"))
    missing = [c for c in RAW_COLUMNS if c not in frame.columns]
    for column in missing:
        problems.append(SchemaProblem(column, "column is missing"))
    for column in NUMERIC_COLUMNS:
        if column not in missing:
            problems.extend(_number_problems(column, frame[column], max_examples))
    for column in TEXT_COLUMNS:
        if column not in missing:
            problems.extend(_text_problems(column, frame[column], max_examples))
    return problems


def _examples(values: pd.Series, max_examples: int, shorten: int = 40) -> str:
    """A few distinct offending values, as repr (control characters show as escapes), shortened."""
    shown = []
    for value in values.unique()[:max_examples]:
        value = value.item() if isinstance(value, np.generic) else value
        text = repr(value)
        if isinstance(value, str) and len(value) > shorten:
            text = f"{value[:shorten]!r}... ({len(value)} characters)"
        shown.append(text)
    return ", ".join(shown)


def _number_problems(column: str, values: pd.Series, max_examples: int) -> list[SchemaProblem]:
    if pd.api.types.is_bool_dtype(values):
        return [SchemaProblem(column, "holds booleans, expected numbers")]
    problems = []
    coerced = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & coerced.isna()
    if bad.any():
        examples = _examples(values[bad], max_examples)
        problems.append(SchemaProblem(column, f"{int(bad.sum())} non-numeric value(s), e.g. {examples}"))
    if column in FINITE_REQUIRED_COLUMNS:
        infinite = coerced.notna() & ~np.isfinite(coerced.astype("float64"))
        if infinite.any():
            examples = _examples(values[infinite], max_examples)
            problems.append(SchemaProblem(column, f"{int(infinite.sum())} infinite value(s), e.g. {examples}"))
    return problems


def _text_problems(column: str, values: pd.Series, max_examples: int) -> list[SchemaProblem]:
    """Text the warehouse cannot hold: longer than its column, or with characters PostgreSQL
    refuses (NUL) or that no text column should carry (other control characters)."""
    text = stored_text(values).dropna()
    problems = []
    width = TEXT_WIDTHS[column]
    too_long = text.str.len() > width
    if too_long.any():
        examples = _examples(text[too_long], max_examples)
        problems.append(
            SchemaProblem(column, f"{int(too_long.sum())} value(s) longer than {width} characters, e.g. {examples}")
        )
    unstorable = text.map(lambda v: _UNSTORABLE.search(v) is not None).astype(bool)
    if unstorable.any():
        examples = _examples(text[unstorable], max_examples)
        problems.append(
            SchemaProblem(
                column,
                f"{int(unstorable.sum())} value(s) with control characters (NUL, line breaks...) "
                f"or invalid Unicode, e.g. {examples}",
            )
        )
    return problems


def stored_text(values: pd.Series) -> pd.Series:
    """A text column as the warehouse gets it: str values, None for missing or blank ones."""
    text = values.astype("object")
    return text.where(text.notna(), None).map(
        lambda v: None if v is None or (isinstance(v, str) and not v.strip()) else str(v)
    )


def coerce_raw(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the 12 columns in file order with numeric columns as float64, text as object.

    Call only on a batch that `validate_raw` accepted.
    """
    out = pd.DataFrame(index=frame.index)
    for column, kind in RAW_COLUMNS.items():
        if kind == "number":
            out[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
        else:
            out[column] = stored_text(frame[column])
    return out.reset_index(drop=True)
