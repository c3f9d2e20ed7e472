"""Model quality on the generator's sequence: each batch's model against the naive baseline, with and
without the location features, on the same holdout rows.

    python benchmarks/bench_quality.py [--trials 10] [--output docs/benchmarks.md]

For every batch k of the built-in sequence (the `make demo` data), the model is trained the way
candidate_model trains it - all clean rows up to k (the demo's rows stay far inside the 1M-row training
window), the hash-stable holdout, Optuna + XGBoost on
log price - three times over the same rows:
- **location**: the platform's features (zip -> city -> state price levels, out of fold);
- **state only**: the same without the city and zip features (what the platform had before);
- **in-sample encoding** (last batch only): location features fitted on the training rows themselves,
  to show what out-of-fold encoding prevents.
The naive baseline is the training median price of the listing's zip / city / state. Writes the
"Model quality" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import machine, write_section  # noqa: E402
from mlops_assets.core.baseline import MedianPriceBaseline  # noqa: E402
from mlops_assets.core.cleaning import clean_listings  # noqa: E402
from mlops_assets.core.features import (  # noqa: E402
    FEATURE_NAMES,
    LOCATION_FEATURES,
    fit_feature_state,
    fit_transform_training,
    to_target,
    transform,
)
from mlops_assets.core.metrics import regression_metrics  # noqa: E402
from mlops_assets.core.schema import coerce_raw  # noqa: E402
from mlops_assets.core.splits import is_holdout  # noqa: E402
from mlops_assets.ml.predict import predict_price  # noqa: E402
from mlops_assets.ml.training import TuningConfig, tune_and_fit  # noqa: E402
from mlops_assets.sources.generator import ListingGenerator  # noqa: E402

START = "<!-- quality-benchmark:start -->"
END = "<!-- quality-benchmark:end -->"
STATE_ONLY = [n for n in FEATURE_NAMES if n not in LOCATION_FEATURES or n == "state_price_level"]


def evaluate(train_x: pd.DataFrame, holdout_x: pd.DataFrame, train, holdout, columns, trials: int) -> dict:
    model = tune_and_fit(train_x[columns].to_numpy(), to_target(train["price"]), TuningConfig(n_trials=trials), columns)
    return regression_metrics(holdout["price"], predict_price(model.booster, holdout_x[columns].to_numpy()))


def measure(trials: int) -> list[dict]:
    generator = ListingGenerator()
    clean = [clean_listings(coerce_raw(generator.batch(k))).frame for k in range(1, generator.batches + 1)]
    rows = []
    for k in range(1, generator.batches + 1):
        started = time.monotonic()
        data = pd.concat(clean[:k], ignore_index=True).drop_duplicates("listing_id", keep="last")
        mask = is_holdout(data["listing_id"])
        train, holdout = data[~mask], data[mask]
        state, train_x = fit_transform_training(train)
        holdout_x = transform(holdout, state)
        result = {
            "batch": k,
            "training_rows": len(train),
            "zips": train["zip_code"].nunique(),
            "holdout_rows": len(holdout),
            "baseline": regression_metrics(holdout["price"], MedianPriceBaseline.fit(train).predict(holdout)),
            "location": evaluate(train_x, holdout_x, train, holdout, FEATURE_NAMES, trials),
            "state only": evaluate(train_x, holdout_x, train, holdout, STATE_ONLY, trials),
        }
        if k == generator.batches:
            in_sample = fit_feature_state(train)
            result["in-sample encoding"] = evaluate(
                transform(train, in_sample), transform(holdout, in_sample), train, holdout, FEATURE_NAMES, trials
            )
        print(
            f"batch {k}: {len(train):,} training rows, "
            + ", ".join(
                f"{name} RMSE(log) {result[name]['rmse_log']:.3f}" for name in ("baseline", "state only", "location")
            )
            + f" ({time.monotonic() - started:.0f}s)",
            flush=True,
        )
        rows.append(result)
    return rows


def section(rows: list[dict], trials: int, seconds: float) -> str:
    lines = [
        START,
        "## Model quality (`python benchmarks/bench_quality.py`)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `benchmarks/bench_quality.py` in {seconds / 60:.1f} min; "
        "rerun to refresh.",
        "",
        *(f"- **{k}**: {v}" for k, v in machine().items()),
        f"- **data**: the generator's sequence (`make demo`: seed 42, {len(rows)} batches); for batch k every clean "
        "row of batches 1..k, the hash-stable 20% holdout",
        f"- **models**: Optuna {trials} trials x 3-fold CV, XGBoost on log1p(price), as `candidate_model` trains; "
        "*state only* = the same without the city and zip features",
        "- **baseline**: the training median price of the listing's zip (>= 5 listings), else city, else state",
        "",
        "| batch | training rows | model | R2 | R2(log) | MAPE | median APE | RMSE | RMSE(log) | vs baseline |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        base = row["baseline"]["rmse_log"]
        for name in ("baseline", "state only", "location", "in-sample encoding"):
            if name not in row:
                continue
            m = row[name]
            gain = "" if name == "baseline" else f"{1 - m['rmse_log'] / base:+.0%}"
            lines.append(
                f"| {row['batch']} | {row['training_rows']:,} | {name} | {m['r2']:.3f} | {m['r2_log']:.3f} | "
                f"{m['mape']:.1%} | {m['median_ape']:.1%} | ${m['rmse']:,.0f} | {m['rmse_log']:.3f} | {gain} |"
            )
    last = rows[-1]
    lines += [
        "",
        "*vs baseline*: how much lower the model's RMSE(log) is than the naive baseline's on the same rows (the "
        "default promotion gate asks for at least 10%).",
        "",
        f"At the last batch the location model's median APE is {last['location']['median_ape']:.1%} against "
        f"{last['state only']['median_ape']:.1%} for the state-only model and {last['baseline']['median_ape']:.1%} "
        f"for the baseline. Encoding in sample instead of out of fold gives RMSE(log) "
        f"{last['in-sample encoding']['rmse_log']:.3f} against {last['location']['rmse_log']:.3f} out of fold, "
        f"with {last['training_rows'] / max(1, last['zips']):.0f} training listings per zip on average: where zips "
        "hold that many listings a row's own price barely moves its zip's level. Out-of-fold encoding is for the real "
        "file's many zips of a handful of listings, where a row's own price would be a large part of its zip's "
        "level (the mechanism is tested in tests/core/test_features.py).",
        END,
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    started = time.monotonic()
    rows = measure(args.trials)
    write_section(args.output, START, END, section(rows, args.trials, time.monotonic() - started))
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
