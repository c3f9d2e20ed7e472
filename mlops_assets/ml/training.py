"""XGBoost on log1p(price), tuned with Optuna by K-fold cross-validation on the training rows.

The search (`tune_and_fit`):
- **seeded per training**: `training_seed(base, batch_id)` - the same batch searches the same way (reproducible),
  another batch searches other configurations (and other folds);
- **TPE that acts**: `startup_trials(n)` random trials, then multivariate TPE models the rest;
- **warm start**: the champion's parameters, when given, are the first trial (clipped into the search space);
- **early stopping**: `n_estimators` is an upper bound; each fold stops after `early_stopping_rounds` rounds
  without a better validation RMSE and records its best round; the final model is trained on every row with the
  best trial's mean best round count - exactly that many trees, so predicting needs no `iteration_range`.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import optuna
import xgboost as xgb
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from mlops_assets.core.features import FEATURE_NAMES, from_target
from mlops_assets.core.metrics import regression_metrics

Log = Callable[[str], None]

SEARCH_SPACE: dict[str, IntDistribution | FloatDistribution] = {
    "n_estimators": IntDistribution(100, 500, step=50),  # an upper bound: early stopping picks the rounds
    "max_depth": IntDistribution(3, 9),
    "learning_rate": FloatDistribution(0.02, 0.3, log=True),
    "subsample": FloatDistribution(0.6, 1.0),
    "colsample_bytree": FloatDistribution(0.6, 1.0),
    "min_child_weight": FloatDistribution(1.0, 30.0, log=True),
    "reg_alpha": FloatDistribution(1e-3, 10.0, log=True),
    "reg_lambda": FloatDistribution(1e-3, 10.0, log=True),
}
WARM_START = "champion"
"""The `source` user attribute of the enqueued warm-start trial."""


def startup_trials(n_trials: int) -> int:
    """Random trials before TPE models the results: a third of the trials, 1 to 5."""
    return max(1, min(5, n_trials // 3))


def training_seed(base: int, key: str) -> int:
    """The seed of one training: `base` mixed with `key` (the batch id) by SHA-256 - stable across processes
    and Python versions (unlike `hash`), below 2**31 (numpy, Optuna and XGBoost all take it)."""
    return int.from_bytes(hashlib.sha256(f"{base}:{key}".encode()).digest()[:8], "big") % 2**31


@dataclass(frozen=True)
class TuningConfig:
    n_trials: int = 15
    cv_folds: int = 3
    seed: int = 42
    """The search's seed (TPE, folds, XGBoost); the pipeline derives it per batch with `training_seed`."""
    nthread: int = 0
    """XGBoost threads; 0 uses every core."""
    timeout_seconds: float | None = None
    early_stopping_rounds: int = 20
    n_startup_trials: int | None = None
    """Random trials before TPE; None: `startup_trials(n_trials)`."""

    @property
    def startup(self) -> int:
        return self.n_startup_trials if self.n_startup_trials is not None else startup_trials(self.n_trials)


@dataclass
class TrainedModel:
    booster: xgb.Booster
    params: dict
    """The best trial's parameters and `boosting_rounds`, the number of trees of `booster`."""
    cv_r2_mean: float
    cv_r2_std: float
    trials: list[dict] = field(default_factory=list)
    search: dict[str, Any] = field(default_factory=dict)
    """How it was searched: the space, the sampler, the seed, the warm start, trials complete / pruned."""

    def search_params(self) -> dict[str, str | int | float]:
        """`search` flattened for MLflow parameters (`search_*`)."""
        flat: dict[str, str | int | float] = {}
        for key, value in self.search.items():
            if isinstance(value, dict):
                flat[f"search_{key}"] = "; ".join(f"{k} {v}" for k, v in value.items())
            elif value is None or isinstance(value, (str, int, float)):
                flat[f"search_{key}"] = "" if value is None else value
        return flat


def describe(distribution: IntDistribution | FloatDistribution) -> str:
    """'100..500 step 50', '0.02..0.3 log'."""
    text = f"{distribution.low:g}..{distribution.high:g}"
    if distribution.step not in (None, 1):
        text += f" step {distribution.step:g}"
    return text + (" log" if distribution.log else "")


def search_space() -> dict[str, str]:
    """The space in words, for logs, metadata and MLflow."""
    space = {name: describe(d) for name, d in SEARCH_SPACE.items()}
    space["n_estimators"] += " (upper bound; early stopping)"
    return space


def suggest_params(trial: optuna.Trial) -> dict:
    """One point of `SEARCH_SPACE`."""
    params: dict[str, int | float] = {}
    for name, d in SEARCH_SPACE.items():
        if isinstance(d, IntDistribution):
            params[name] = trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
        else:
            params[name] = trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)
    return params


def _into_space(value: float, distribution: IntDistribution | FloatDistribution) -> int | float:
    inside = min(max(value, distribution.low), distribution.high)
    if isinstance(distribution, IntDistribution):
        step = distribution.step
        return int(distribution.low + round((inside - distribution.low) / step) * step)
    return float(inside)


def warm_start_params(params: Mapping[str, Any] | None, log: Log | None = None) -> dict[str, int | float] | None:
    """The champion's parameters as a point of `SEARCH_SPACE`: values outside it are clipped (and said so);
    None (and why) when a parameter is missing or not a number. Other keys (`boosting_rounds`) are ignored."""
    say = log or (lambda _: None)
    if not params:
        return None
    point: dict[str, int | float] = {}
    clipped = []
    for name, distribution in SEARCH_SPACE.items():
        value = params.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            say(f"warm start skipped: the champion's {name} is {value!r}, not a number in the search space")
            return None
        point[name] = _into_space(float(value), distribution)
        if point[name] != value:
            clipped.append(f"{name} {value:g} -> {point[name]:g}")
    if clipped:
        say(f"warm start: champion's parameters outside the search space clipped: {', '.join(clipped)}")
    return point


def booster_params(params: Mapping[str, Any], seed: int, nthread: int) -> tuple[dict, int]:
    """Optuna's names -> xgb.train parameters and the number of boosting rounds (`n_estimators`)."""
    return (
        {
            "objective": "reg:squarederror",
            "tree_method": "hist",
            "eta": params["learning_rate"],
            "max_depth": params["max_depth"],
            "subsample": params["subsample"],
            "colsample_bytree": params["colsample_bytree"],
            "min_child_weight": params["min_child_weight"],
            "alpha": params["reg_alpha"],
            "lambda": params["reg_lambda"],
            "seed": seed,
            "nthread": nthread,
        },
        int(params["n_estimators"]),
    )


def fit(
    x: np.ndarray,
    y_log: np.ndarray,
    params: Mapping[str, Any],
    seed: int = 42,
    nthread: int = 0,
    feature_names: list[str] = FEATURE_NAMES,
    rounds: int | None = None,
) -> xgb.Booster:
    """One booster on every row, with `rounds` trees (default: `n_estimators`)."""
    train_params, upper = booster_params(params, seed, nthread)
    data = xgb.DMatrix(x, label=y_log, feature_names=feature_names)
    return xgb.train(train_params, data, num_boost_round=rounds or upper)


def _folds(n: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    order = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(order, k)
    return [(np.concatenate(parts[:i] + parts[i + 1 :]), parts[i]) for i in range(k)]


class _Fold(NamedTuple):
    train: xgb.DMatrix
    valid: xgb.DMatrix
    y_valid: np.ndarray


def _progress(n_trials: int, log: Log) -> Callable[[Study, FrozenTrial], None]:
    """An Optuna callback: one line per finished trial."""

    def callback(study: Study, trial: FrozenTrial) -> None:
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        source = " (champion's parameters)" if trial.user_attrs.get("source") == WARM_START else ""
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            what = f"cv rmse(log) {trial.value:.4f}, {trial.user_attrs.get('boosting_rounds', 0):.0f} rounds"
        elif trial.state == TrialState.PRUNED:
            folds = len(trial.intermediate_values)
            last = trial.intermediate_values.get(folds - 1)
            what = f"pruned after {folds} fold(s)" + (f" (cv rmse(log) {last:.4f})" if last is not None else "")
        else:
            what = trial.state.name.lower()
        try:
            best_text = f"best {study.best_value:.4f} (trial {study.best_trial.number + 1})"
        except ValueError:  # no complete trial yet
            best_text = "no best yet"
        log(f"trial {trial.number + 1}/{n_trials}{source}: {what}, {best_text}, {seconds:.1f} s")

    return callback


def tune_and_fit(
    x: np.ndarray,
    y_log: np.ndarray,
    config: TuningConfig = TuningConfig(),
    feature_names: list[str] = FEATURE_NAMES,
    *,
    warm_start: Mapping[str, Any] | None = None,
    log: Log | None = None,
) -> TrainedModel:
    """Optuna study minimising the CV RMSE of log1p(price); median pruning after each fold.

    `warm_start`: the champion's parameters, tried first (see `warm_start_params`). `log`: one line for the
    search's set-up, one per trial, one per phase (e.g. Dagster's `context.log.info`). The CV R2 reported is in
    dollars, from the best trial's folds. `feature_names` names the columns of `x` (the benchmark trains on
    subsets of the features).
    """
    say: Log = log or (lambda _: None)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.monotonic()
    space = search_space()
    startup = config.startup
    enqueued = warm_start_params(warm_start, say)
    say(
        f"tuning: {config.n_trials} trials ({startup} random, then multivariate TPE), {config.cv_folds}-fold CV on "
        f"{len(x):,} rows, seed {config.seed}, early stopping after {config.early_stopping_rounds} rounds; "
        f"warm start: {'the champion parameters as trial 1' if enqueued else 'none'}; "
        f"space: {', '.join(f'{k} {v}' for k, v in space.items())}"
    )
    folds = [
        _Fold(
            xgb.DMatrix(x[train], label=y_log[train], feature_names=feature_names),
            xgb.DMatrix(x[valid], label=y_log[valid], feature_names=feature_names),
            y_log[valid],
        )
        for train, valid in _folds(len(x), config.cv_folds, config.seed)
    ]
    built = time.monotonic() - started
    say(f"folds built: {len(folds)} folds of ~{len(folds[0].y_valid):,} validation rows ({built:.1f} s)")

    def objective(trial: optuna.Trial) -> float:
        params = suggest_params(trial)
        train_params, upper = booster_params(params, config.seed, config.nthread)
        rmses: list[float] = []
        r2s: list[float] = []
        rounds: list[int] = []
        trained = 0
        for step, fold in enumerate(folds):
            booster = xgb.train(
                train_params,
                fold.train,
                num_boost_round=upper,
                evals=[(fold.valid, "valid")],
                early_stopping_rounds=config.early_stopping_rounds,
                verbose_eval=False,
            )
            best_rounds = booster.best_iteration + 1
            predicted = booster.predict(fold.valid, iteration_range=(0, best_rounds))
            rounds.append(best_rounds)
            trained += booster.num_boosted_rounds()  # the best rounds and the patience after them
            trial.set_user_attr("rounds_trained", trained)
            rmses.append(float(np.sqrt(np.mean((predicted - fold.y_valid) ** 2))))
            r2s.append(regression_metrics(from_target(fold.y_valid), from_target(predicted))["r2"])
            trial.set_user_attr("fold_rounds", rounds)
            trial.set_user_attr("boosting_rounds", float(np.mean(rounds)))
            trial.report(float(np.mean(rmses)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        trial.set_user_attr("cv_r2", r2s)
        return float(np.mean(rmses))

    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=startup, multivariate=True),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3),
    )
    if enqueued:
        study.enqueue_trial(enqueued, user_attrs={"source": WARM_START})
    search_started = time.monotonic()
    study.optimize(
        objective,
        n_trials=config.n_trials,
        timeout=config.timeout_seconds,
        callbacks=[_progress(config.n_trials, say)] if log else None,
    )
    search_seconds = time.monotonic() - search_started
    best = study.best_trial
    counts = {state: len(study.get_trials(deepcopy=False, states=(state,))) for state in TrialState}
    cv_r2 = np.array(best.user_attrs["cv_r2"])
    fold_rounds: list[int] = best.user_attrs["fold_rounds"]
    final_rounds = max(1, round(float(np.mean(fold_rounds))))
    say(
        f"search done: {len(study.trials)} trials ({counts[TrialState.COMPLETE]} complete, "
        f"{counts[TrialState.PRUNED]} pruned) in {search_seconds:.1f} s; best trial {best.number + 1}: "
        f"cv rmse(log) {best.value:.4f}, cv R2 {cv_r2.mean():.3f} +- {cv_r2.std():.3f}"
    )
    fit_started = time.monotonic()
    booster = fit(x, y_log, best.params, config.seed, config.nthread, feature_names, rounds=final_rounds)
    say(
        f"final fit: {final_rounds} boosting rounds (the best trial's folds stopped at "
        f"{', '.join(map(str, fold_rounds))} of at most {best.params['n_estimators']}) on {len(x):,} rows "
        f"in {time.monotonic() - fit_started:.1f} s"
    )
    trials = [
        {
            "number": t.number,
            "state": t.state.name,
            "cv_rmse_log": t.value,
            "boosting_rounds": t.user_attrs.get("boosting_rounds"),
            "seconds": round(t.duration.total_seconds(), 2) if t.duration else None,
            **({"source": t.user_attrs["source"]} if "source" in t.user_attrs else {}),
            **t.params,
        }
        for t in study.trials
    ]
    search = {
        "space": space,
        "sampler": f"TPE multivariate after {startup} random start-up trial{'s' if startup != 1 else ''}",
        "seed": config.seed,
        "cv_folds": config.cv_folds,
        "early_stopping_rounds": config.early_stopping_rounds,
        "n_trials": config.n_trials,
        "trials": len(study.trials),
        "complete": counts[TrialState.COMPLETE],
        "pruned": counts[TrialState.PRUNED],
        "failed": counts[TrialState.FAIL],
        "warm_start": enqueued,
        "best_trial_number": best.number,  # as in `trials` (0-based; the log counts from 1)
        "boosting_rounds": final_rounds,
        "rounds_trained": sum(t.user_attrs.get("rounds_trained", 0) for t in study.trials) + final_rounds,
        "seconds": round(time.monotonic() - started, 1),
    }
    return TrainedModel(
        booster=booster,
        params={**best.params, "boosting_rounds": final_rounds},
        cv_r2_mean=float(cv_r2.mean()),
        cv_r2_std=float(cv_r2.std()),
        trials=trials,
        search=search,
    )
