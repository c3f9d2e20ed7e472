"""Read-only access to the warehouse's history tables: model_history and drift_reports.

The dashboard only reads what the pipeline recorded. The engine is opened read-only (SQLite in
`mode=ro`, PostgreSQL with read-only transactions), so a viewer can never create or change a table,
and every query is a SQLAlchemy expression (bound parameters only).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pandas as pd
import sqlalchemy as sa

from mlops_assets.storage.object_store import ObjectStore
from mlops_assets.storage.warehouse import (
    drift_reports,
    live_performance,
    model_diffs,
    model_history,
    rollbacks,
    sale_outcomes,
)


class HistoryError(Exception):
    """The history cannot be read; `str()` is the message for the page."""


class NoHistoryError(HistoryError):
    """The warehouse answers but the pipeline has not written this history yet."""


def safe_url(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def read_only_engine(url: str) -> sa.Engine:
    parsed = sa.engine.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise HistoryError(f"{url} is not a warehouse file")
        path = Path(parsed.database).expanduser().resolve()
        if not path.is_file():
            raise NoHistoryError(f"No warehouse yet at {path}: run the pipeline (`make demo`) first.")
        return sa.create_engine(f"sqlite:///file:{quote(str(path))}?mode=ro&uri=true", connect_args={"timeout": 10})
    if backend == "postgresql":
        options = {"options": "-c default_transaction_read_only=on", "connect_timeout": 5}
        return sa.create_engine(url, pool_pre_ping=True, connect_args=options)
    return sa.create_engine(url, pool_pre_ping=True)


class History:
    """The two history tables as DataFrames, oldest first."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = read_only_engine(url)

    def _read(self, query: sa.Select, table: sa.Table, empty: str) -> pd.DataFrame:
        try:
            with self.engine.connect() as connection:
                frame = pd.read_sql(query, connection)
        except sa.exc.SQLAlchemyError as error:
            if _missing_table(error, table.name):
                raise NoHistoryError(empty) from None
            reason = str(getattr(error, "orig", error)).splitlines()[0][:200]
            raise HistoryError(f"The warehouse at {safe_url(self.url)} cannot be read: {reason}") from None
        if frame.empty:
            raise NoHistoryError(empty)
        return frame

    def models(self, model_name: str) -> pd.DataFrame:
        """Every model trained under `model_name`, by version: metrics, verdict, reason, why, SHAP importance."""
        query = (
            sa.select(model_history)
            .where(model_history.c.model_name == model_name)
            .order_by(model_history.c.model_version)
        )
        return self._read(query, model_history, f"No model named {model_name!r} has been trained yet.")

    def drift_reports(self) -> pd.DataFrame:
        """Every drift report, by batch: the decision (trained or skipped), why, per-column scores."""
        query = sa.select(drift_reports).order_by(drift_reports.c.batch_id, drift_reports.c.created_at)
        return self._read(query, drift_reports, "No drift report yet: no batch has been judged.")

    def model_diffs(self, model_name: str) -> pd.DataFrame:
        """Every stored model diff (a candidate against the champion it was judged against), by version."""
        query = (
            sa.select(model_diffs)
            .where(model_diffs.c.model_name == model_name)
            .order_by(model_diffs.c.new_version, model_diffs.c.old_version)
        )
        return self._read(query, model_diffs, "No model diff stored yet.")

    def live_performance(self, model_name: str) -> pd.DataFrame:
        """Live quality per sale batch and model version (scope 'all' and per state)."""
        query = (
            sa.select(live_performance)
            .where(live_performance.c.model_name == model_name)
            .order_by(live_performance.c.batch_id, live_performance.c.model_version)
        )
        return self._read(query, live_performance, "No sale has been matched to an earlier prediction yet.")

    def sale_outcomes(self, model_name: str) -> pd.DataFrame:
        """Every matched sale: the sold price and the model version's latest earlier prediction."""
        query = sa.select(
            sale_outcomes.c.batch_id,
            sale_outcomes.c.state,
            sale_outcomes.c.sold_price,
            sale_outcomes.c.model_version,
            sale_outcomes.c.predicted_price,
            sale_outcomes.c.score_source,
        ).where(sale_outcomes.c.model_name == model_name)
        return self._read(query, sale_outcomes, "No sale has been matched to an earlier prediction yet.")

    def rollbacks(self, model_name: str) -> pd.DataFrame:
        """Every rollback, newest first; empty when none happened."""
        query = sa.select(rollbacks).where(rollbacks.c.model_name == model_name).order_by(rollbacks.c.decided_at.desc())
        try:
            return self._read(query, rollbacks, "no rollback")
        except NoHistoryError:
            return pd.DataFrame(columns=[c.name for c in rollbacks.columns])

    def read(self, statement: sa.Select) -> pd.DataFrame:
        """Any read-only select (what `storage.queries` asks a warehouse for, e.g. `clean_through`)."""
        try:
            with self.engine.connect() as connection:
                return pd.read_sql(statement, connection)
        except sa.exc.SQLAlchemyError as error:
            reason = str(getattr(error, "orig", error)).splitlines()[0][:200]
            raise HistoryError(f"The warehouse at {safe_url(self.url)} cannot be read: {reason}") from None

    def dispose(self) -> None:
        self.engine.dispose()


def gain_over_champion(models: pd.DataFrame, metric: str) -> pd.Series:
    """Per model (a model_history frame), its `metric` relative to the champion it was judged against, both on
    the same holdout rows as the pipeline recorded them: -0.03 is 3% lower (better, for an error); NaN for a
    model judged with no champion in place."""
    champion = pd.to_numeric(models[f"champion_{metric}"], errors="coerce")
    return pd.to_numeric(models[metric], errors="coerce") / champion.where(champion > 0) - 1


def _missing_table(error: sa.exc.SQLAlchemyError, name: str) -> bool:
    text = str(getattr(error, "orig", error)).lower()
    return name in text and ("no such table" in text or "does not exist" in text)


def read_report(uri: str) -> str:
    """The Evidently HTML at `uri` (file:// or s3://, as the drift asset wrote it)."""
    parent, _, key = uri.rpartition("/")
    try:
        return ObjectStore(parent).read_text(key)
    except Exception as error:  # fsspec/s3fs/botocore raise many kinds; the page gets one message
        raise HistoryError(f"The report at {uri} cannot be read: {type(error).__name__}: {error}") from None
