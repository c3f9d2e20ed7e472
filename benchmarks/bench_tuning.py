"""The hyperparameter search, old against new, on the same rows:

    python benchmarks/bench_tuning.py [--batches 8] [--rows 0] [--output docs/benchmarks.md]

Rows: the clean rows of the generator's first `--batches` batches (the `make demo` sequence, seed 42: about 83,000
training and 21,000 holdout rows), split by the hash-stable 20% holdout, featurized as `candidate_model` does
(out-of-fold location encoding on the training rows); `--rows N` trains on a seeded sample of N of the training rows
(a shorter run), all the holdout rows are scored. About 6 minutes on 2 idle cores.

- **old**: the search as it was before issue 11, reproduced verbatim: TPE seeded with the constant 42, 10 trials -
  all of them TPE's random start-up trials (n_startup_trials defaults to 10), so every training tried the same 10
  configurations - each trained for its full `n_estimators`, the best CV RMSE(log) picked and refitted;
- **new (N trials)**: `tune_and_fit` as `candidate_model` calls it for the last batch: seeded per batch, a few
  random trials then multivariate TPE, early stopping on each fold, the final fit with the best trial's mean best
  round count; at the platform's default trial count (`TuningConfig.n_trials`) and at the old 10;
- **new, warm start**: the same with the old search's best parameters as its first trial, as the next training
  gets its champion's.

Every variant is timed end to end (folds, search, final fit), with one XGBoost thread (see `NTHREAD`). Writes the
"Hyperparameter search" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import xgboost as xgb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import machine, write_section  # noqa: E402
from mlops_assets.core.cleaning import clean_listings  # noqa: E402
from mlops_assets.core.features import (  # noqa: E402
    FEATURE_NAMES,
    fit_transform_training,
    to_target,
    transform,
)
from mlops_assets.core.metrics import regression_metrics  # noqa: E402
from mlops_assets.core.schema import coerce_raw  # noqa: E402
from mlops_assets.core.splits import is_holdout  # noqa: E402
from mlops_assets.ml.predict import predict_price  # noqa: E402
from mlops_assets.ml.training import (  # noqa: E402
    SEARCH_SPACE,
    TuningConfig,
    _folds,
    booster_params,
    fit,
    suggest_params,
    training_seed,
    tune_and_fit,
)
from mlops_assets.sources.generator import ListingGenerator  # noqa: E402

START = "<!-- tuning-benchmark:start -->"
END = "<!-- tuning-benchmark:end -->"
OLD_SEED, OLD_TRIALS = 42, 10
NTHREAD = 1
"""One XGBoost thread for every variant: on a shared machine, threads contending with other processes made the
same trial's time vary 5x between runs; one thread keeps the comparison about the search."""


@dataclass
class Outcome:
    name: str
    seconds: float
    trials: int
    pruned: int
    params: dict[str, Any]
    cv_rmse_log: float
    rounds_trained: int
    """Boosting rounds trained in all (every fold of every trial, and the final fit): the work, whatever the load."""
    metrics: dict[str, float] = field(default_factory=dict)
    cpu_seconds: float = 0.0


def old_search(x: np.ndarray, y_log: np.ndarray) -> tuple[xgb.Booster, dict, float, int, int]:
    """The pre-issue-11 `tune_and_fit`: same space, same folds rule, same sampler and pruner, no early stopping."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folds = [
        (
            xgb.DMatrix(x[t], label=y_log[t], feature_names=FEATURE_NAMES),
            xgb.DMatrix(x[v], feature_names=FEATURE_NAMES),
            y_log[v],
        )
        for t, v in _folds(len(x), 3, OLD_SEED)
    ]

    trained = [0]

    def objective(trial: optuna.Trial) -> float:
        train_params, rounds = booster_params(suggest_params(trial), OLD_SEED, NTHREAD)
        rmses = []
        for step, (train, valid, y_valid) in enumerate(folds):
            predicted = xgb.train(train_params, train, num_boost_round=rounds).predict(valid)
            trained[0] += rounds
            rmses.append(float(np.sqrt(np.mean((predicted - y_valid) ** 2))))
            trial.report(float(np.mean(rmses)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(rmses))

    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=OLD_SEED),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3),
    )
    study.optimize(objective, n_trials=OLD_TRIALS)
    pruned = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,)))
    best = study.best_trial
    booster = fit(x, y_log, best.params, OLD_SEED, NTHREAD)
    return booster, dict(best.params), float(best.value or 0.0), pruned, trained[0] + int(best.params["n_estimators"])


def rows(batches: int, training_rows: int) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The training rows (at most `training_rows`, a seeded sample of all of them), the holdout rows (all), and
    how many training rows there were before sampling."""
    generator = ListingGenerator()
    frames = [clean_listings(coerce_raw(generator.batch(k))).frame for k in range(1, batches + 1)]
    data = pd.concat(frames, ignore_index=True).drop_duplicates("listing_id", keep="last")
    mask = is_holdout(data["listing_id"])
    train, holdout = data[~mask], data[mask]
    sampled = train.sample(n=training_rows, random_state=0) if 0 < training_rows < len(train) else train
    return sampled.reset_index(drop=True), holdout, len(train)


def timed(name: str, run: Callable[[], Outcome]) -> Outcome:
    print(f"{name}: ...", flush=True)
    started, cpu = time.monotonic(), time.process_time()
    outcome = run()
    outcome.seconds, outcome.cpu_seconds = time.monotonic() - started, time.process_time() - cpu
    print(f"{name}: {outcome.seconds:.0f} s, holdout RMSE(log) {outcome.metrics['rmse_log']:.4f}", flush=True)
    return outcome


def measure(batches: int, training_rows: int) -> tuple[dict, list[Outcome]]:
    train, holdout, available = rows(batches, training_rows)
    state, train_x_frame = fit_transform_training(train)
    train_x, y_log = train_x_frame.to_numpy(), to_target(train["price"])
    holdout_x = transform(holdout, state).to_numpy()
    seed = training_seed(TuningConfig.seed, f"{batches:05d}")
    data = {"batches": batches, "training_rows": len(train), "available": available, "holdout_rows": len(holdout),
            "seed": seed}  # fmt: skip

    def score(booster: xgb.Booster) -> dict[str, float]:
        return regression_metrics(holdout["price"], predict_price(booster, holdout_x))

    def old() -> Outcome:
        booster, params, cv, pruned, trained = old_search(train_x, y_log)
        rounds = {"boosting_rounds": params["n_estimators"]}
        return Outcome("old", 0.0, OLD_TRIALS, pruned, params | rounds, cv, trained, score(booster))

    def new(n_trials: int, warm_start: dict | None = None) -> Callable[[], Outcome]:
        def run() -> Outcome:
            model = tune_and_fit(
                train_x,
                y_log,
                TuningConfig(n_trials=n_trials, seed=seed, nthread=NTHREAD),
                warm_start=warm_start,
                log=print,
            )
            best = model.trials[model.search["best_trial_number"]]
            return Outcome(
                "",
                0.0,
                model.search["trials"],
                model.search["pruned"],
                model.params,
                best["cv_rmse_log"],
                model.search["rounds_trained"],
                score(model.booster),
            )

        return run

    outcomes = [timed("old", old)]
    default = TuningConfig.n_trials
    for name, run in (
        (f"new ({default} trials)", new(default)),
        (f"new ({OLD_TRIALS} trials)", new(OLD_TRIALS)),
        (f"new ({default} trials), warm start from old's best", new(default, outcomes[0].params)),
    ):
        outcome = timed(name, run)
        outcome.name = name
        outcomes.append(outcome)
    return data, outcomes


def params_text(params: dict[str, Any]) -> str:
    shown = [*SEARCH_SPACE, "boosting_rounds"]
    return ", ".join(f"{k} {params[k]:.3g}" if isinstance(params[k], float) else f"{k} {params[k]}" for k in shown)


def section(data: dict, outcomes: list[Outcome], seconds: float) -> str:
    old, batch = outcomes[0], f"{data['batches']:05d}"
    sampled = f" (a seeded sample of the {data['available']:,})" if data["training_rows"] < data["available"] else ""
    lines = [
        START,
        "## Hyperparameter search (`python benchmarks/bench_tuning.py`)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `benchmarks/bench_tuning.py` in {seconds / 60:.1f} min; "
        "rerun to refresh.",
        "",
        *(f"- **{k}**: {v}" for k, v in machine().items()),
        f"- **data**: the generator's first {data['batches']} batches (`make demo`: seed 42): "
        f"{data['training_rows']:,} training rows{sampled}, {data['holdout_rows']:,} holdout rows (the hash-stable "
        "20%), featurized as `candidate_model` does",
        f"- **old**: the search before issue 11, reproduced: TPE seeded 42, {OLD_TRIALS} trials that are all TPE's "
        "random start-up trials (the same 10 configurations in every training), each trained for its full "
        "`n_estimators`",
        f"- **new**: `tune_and_fit` as for batch {batch} (seed `training_seed(42, '{batch}')` = {data['seed']}): "
        f"{TuningConfig().startup} random trials then multivariate TPE, early stopping after "
        f"{TuningConfig.early_stopping_rounds} rounds without gain on each fold (`n_estimators` an upper bound), "
        "the final fit with the best trial's mean best round count; *warm start*: the old search's best parameters "
        "as trial 1 (what the next training gets from its champion)",
        "- 3-fold CV, one XGBoost thread for every variant (threads contending with the shared machine's other "
        "processes made the same trial's time vary 5x), times end to end (folds, search, final fit); *rounds "
        "trained*: boosting rounds trained in all (every fold of every trial, and the final fit) - the work, "
        "whatever the load",
        "",
        "| search | trials (pruned) | wall time | CPU time | rounds trained | CV RMSE(log) | holdout RMSE(log) "
        "| R2(log) | RMSE | MAE | R2 | median APE |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        m = o.metrics
        lines.append(
            f"| {o.name} | {o.trials} ({o.pruned}) | {o.seconds:.0f} s | {o.cpu_seconds:.0f} s | "
            f"{o.rounds_trained:,} | {o.cv_rmse_log:.4f} | {m['rmse_log']:.4f} | "
            f"{m['r2_log']:.4f} | ${m['rmse']:,.0f} | ${m['mae']:,.0f} | {m['r2']:.4f} | {m['median_ape']:.2%} |"
        )
    lines += ["", "Best parameters:", ""]
    lines += [f"- **{o.name}**: {params_text(o.params)}" for o in outcomes]
    new = outcomes[1]
    lines += [
        "",
        f"The new search at its default {new.trials} trials took {new.seconds / old.seconds:.2f}x the old search's "
        f"wall time ({new.rounds_trained / old.rounds_trained:.2f}x its boosting rounds) and reached holdout "
        f"RMSE(log) {new.metrics['rmse_log']:.4f} against {old.metrics['rmse_log']:.4f} "
        f"({new.metrics['rmse_log'] / old.metrics['rmse_log'] - 1:+.1%}), median APE "
        f"{new.metrics['median_ape']:.2%} against {old.metrics['median_ape']:.2%}.",
        END,
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=8, help="the generator's first N batches (default: all 8)")
    parser.add_argument("--rows", type=int, default=0, help="training rows, a seeded sample (default 0: all)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    started = time.monotonic()
    data, outcomes = measure(args.batches, args.rows)
    write_section(args.output, START, END, section(data, outcomes, time.monotonic() - started))
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
