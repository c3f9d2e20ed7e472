"""What the loop's parts tell each other: the drift decision, who triggered a run, and the names of the
metadata keys and run tags they exchange.

The drift report, the sensors, the training asset, the demo and the viewer agree through these names
only: a decision is a `DriftDecision`, never a string parsed by prefix. Pure Python, no framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class DriftDecision(StrEnum):
    """What a batch's drift report decides. The value is the stored and displayed wording."""

    BASELINE = "train: baseline (no champion yet)"
    DRIFT = "train: drift detected"
    NO_DRIFT = "skip: no drift"

    @property
    def trains(self) -> bool:
        """Whether the decision asks for a training."""
        return self is not DriftDecision.NO_DRIFT

    @property
    def reason(self) -> str:
        """The words after the verdict: `drift detected`, `no drift`, `baseline (no champion yet)`."""
        return self.value.split(": ", 1)[1]

    @property
    def outcome(self) -> str:
        """`trained` or `skipped`: the batch's training outcome, for charts and tables."""
        return "trained" if self.trains else "skipped"

    @classmethod
    def of(cls, detected: bool) -> DriftDecision:
        """The decision for a batch judged against a champion."""
        return cls.DRIFT if detected else cls.NO_DRIFT

    @classmethod
    def parse(cls, value: object) -> DriftDecision:
        """A stored decision back as the enum; an unknown wording is an error, not a guess."""
        try:
            return cls(str(value))
        except ValueError:
            known = ", ".join(repr(d.value) for d in cls)
            raise ValueError(f"unknown drift decision {value!r}; expected one of {known}") from None


class Trigger(StrEnum):
    """Who asked for a run; carried in the run tag `Tag.TRIGGER` and recorded with each model."""

    INGESTION_SENSOR = "ingestion_sensor"
    DRIFT_SENSOR = "drift_sensor"
    #: the whole loop in one run (job `mlops_pipeline`): its drift report decides in the same run
    PIPELINE = "mlops_pipeline"
    #: a materialization by hand (Dagster UI, `dagster asset materialize`): a forced retrain
    MANUAL = "manual"

    @property
    def trains_in_same_run(self) -> bool:
        """Whether a drift report made in such a run is answered by that run (no sensor request)."""
        return self is Trigger.PIPELINE

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> Trigger:
        """The trigger a run's tags name; a run without one was launched by hand."""
        value = tags.get(Tag.TRIGGER, "")
        return cls(value) if value in cls._value2member_map_ else cls.MANUAL


class Tag:
    """Run tags the platform sets and reads."""

    TRIGGER = "mlops/trigger"
    #: the drift report a training run answers (one run per report)
    DRIFT_REPORT_ID = "mlops/drift_report_id"
    #: the decision that report made, for people reading the run list
    DECISION = "mlops/decision"
    #: which try of a batch's ingestion a run is (1 = the first request)
    ATTEMPT = "mlops/attempt"
    #: Dagster's own tag for a run's partition
    PARTITION = "dagster/partition"


class Meta:
    """Metadata keys that other parts read back from Dagster's event log (the rest is for people)."""

    #: drift_report: a `DriftDecision` value
    DECISION = "decision"
    WHY = "why"
    REPORT_ID = "report_id"
    DRIFT_DETECTED = "drift_detected"
    #: drift_report: true when the run that made the report decides training itself (`Trigger.PIPELINE`)
    TRAINS_IN_SAME_RUN = "trains_in_same_run"
    #: raw_listings observation: the source has no such batch (the sequence ended)
    SOURCE_EXHAUSTED = "source_exhausted"
