"""The realtor listings schema: column names, types and the raw-batch validation.

Pure pandas: imported by the pipeline and by serving alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

TARGET = "price"

#: The 12 columns of the realtor file, in file order, with their kind.
RAW_COLUMNS: dict[str, str] = {
    "brokered_by": "number",
    "status": "text",
    "price": "number",
    "bed": "number",
    "bath": "number",
    "acre_lot": "number",
    "street": "number",
    "city": "text",
    "state": "text",
    "zip_code": "number",
    "house_size": "number",
    "prev_sold_date": "text",
}
NUMERIC_COLUMNS = [c for c, kind in RAW_COLUMNS.items() if kind == "number"]
TEXT_COLUMNS = [c for c, kind in RAW_COLUMNS.items() if kind == "text"]

#: Statuses seen in the realtor data; cleaning maps spellings onto these.
STATUSES = ("for_sale", "ready_to_build", "sold")

#: The most characters each text column may hold: the warehouse declares its columns with these
#: widths (storage.warehouse), and `validate_raw` refuses longer text, so a batch PostgreSQL would
#: refuse (varchar(n)) is refused by its check on SQLite too, which ignores widths.
TEXT_WIDTHS: dict[str, int] = {"status": 32, "city": 128, "state": 64, "prev_sold_date": 32}

#: Numeric columns whose every value cleaning checks against a fixed range (core.cleaning.Ranges):
#: a non-finite price, bed, bath, house size or lot is a row dropped and counted there
#: (`<column>_out_of_range`), like any other impossible value, not a malformed batch.
RANGE_CHECKED_COLUMNS = ("price", "bed", "bath", "acre_lot", "house_size")

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
