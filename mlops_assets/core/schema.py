"""The realtor listings schema: column names, types and the raw-batch validation.

Pure pandas: imported by the pipeline and by serving alike.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class SchemaProblem:
    """One reason a raw batch cannot be loaded, in words an operator can act on."""

    column: str
    reason: str

    def __str__(self) -> str:
        return f"{self.column}: {self.reason}"


def validate_raw(frame: pd.DataFrame, max_examples: int = 3) -> list[SchemaProblem]:
    """Check a raw batch against the schema; an empty list means it can be loaded.

    Missing values are allowed (the data has many); values of the wrong type are not:
    a number column must hold numbers, empty or numeric strings only.
    """
    problems: list[SchemaProblem] = []
    if frame.empty:
        problems.append(SchemaProblem("<batch>", "the batch has no rows"))
    missing = [c for c in RAW_COLUMNS if c not in frame.columns]
    for column in missing:
        problems.append(SchemaProblem(column, "column is missing"))
    for column in NUMERIC_COLUMNS:
        if column in missing:
            continue
        values = frame[column]
        if pd.api.types.is_bool_dtype(values):
            problems.append(SchemaProblem(column, "holds booleans, expected numbers"))
            continue
        coerced = pd.to_numeric(values, errors="coerce")
        bad = values.notna() & coerced.isna()
        if bad.any():
            examples = ", ".join(repr(v) for v in values[bad].unique()[:max_examples])
            problems.append(SchemaProblem(column, f"{int(bad.sum())} non-numeric value(s), e.g. {examples}"))
    return problems


def coerce_raw(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the 12 columns in file order with numeric columns as float64, text as object.

    Call only on a batch that `validate_raw` accepted.
    """
    out = pd.DataFrame(index=frame.index)
    for column, kind in RAW_COLUMNS.items():
        if kind == "number":
            out[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
        else:
            text = frame[column].astype("object")
            out[column] = text.where(text.notna(), None).map(
                lambda v: None if v is None or (isinstance(v, str) and not v.strip()) else str(v)
            )
    return out.reset_index(drop=True)
