"""XGBoost on log1p(price), tuned with Optuna by K-fold cross-validation on the training rows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import optuna
import xgboost as xgb

from mlops_assets.core.features import FEATURE_NAMES, from_target
from mlops_assets.core.metrics import regression_metrics


@dataclass(frozen=True)
class TuningConfig:
    n_trials: int = 10
    cv_folds: int = 3
    seed: int = 42
    nthread: int = 0
    """XGBoost threads; 0 uses every core."""
    timeout_seconds: float | None = None


@dataclass
class TrainedModel:
    booster: xgb.Booster
    params: dict
    cv_r2_mean: float
    cv_r2_std: float
    trials: list[dict] = field(default_factory=list)


def suggest_params(trial: optuna.Trial) -> dict:
    """The search space."""
    return {
        "n_estimators": trial.suggest_int("n_estimators", 100, 500, step=50),
        "max_depth": trial.suggest_int("max_depth", 3, 9),
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.6, 1.0),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 30.0, log=True),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


def booster_params(params: dict, seed: int, nthread: int) -> tuple[dict, int]:
    """Optuna's names -> xgb.train parameters and the number of boosting rounds."""
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
    params: dict,
    seed: int = 42,
    nthread: int = 0,
    feature_names: list[str] = FEATURE_NAMES,
) -> xgb.Booster:
    train_params, rounds = booster_params(params, seed, nthread)
    data = xgb.DMatrix(x, label=y_log, feature_names=feature_names)
    return xgb.train(train_params, data, num_boost_round=rounds)


def _folds(n: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    order = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(order, k)
    return [(np.concatenate(parts[:i] + parts[i + 1 :]), parts[i]) for i in range(k)]


def tune_and_fit(
    x: np.ndarray,
    y_log: np.ndarray,
    config: TuningConfig = TuningConfig(),
    feature_names: list[str] = FEATURE_NAMES,
) -> TrainedModel:
    """Optuna study minimising the CV RMSE of log1p(price); median pruning after each fold.

    The CV R2 reported is in dollars, from the best trial's folds. `feature_names` names the
    columns of `x` (the benchmark trains on subsets of the features).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folds = [
        (
            xgb.DMatrix(x[train], label=y_log[train], feature_names=feature_names),
            xgb.DMatrix(x[valid], feature_names=feature_names),
            y_log[valid],
        )
        for train, valid in _folds(len(x), config.cv_folds, config.seed)
    ]

    def objective(trial: optuna.Trial) -> float:
        train_params, rounds = booster_params(suggest_params(trial), config.seed, config.nthread)
        rmses, r2s = [], []
        for step, (train, valid, y_valid) in enumerate(folds):
            booster = xgb.train(train_params, train, num_boost_round=rounds)
            predicted = booster.predict(valid)
            rmses.append(float(np.sqrt(np.mean((predicted - y_valid) ** 2))))
            r2s.append(regression_metrics(from_target(y_valid), from_target(predicted))["r2"])
            trial.report(float(np.mean(rmses)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        trial.set_user_attr("cv_r2", r2s)
        return float(np.mean(rmses))

    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=config.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3),
    )
    study.optimize(objective, n_trials=config.n_trials, timeout=config.timeout_seconds)
    best = study.best_trial
    cv_r2 = np.array(best.user_attrs["cv_r2"])
    trials = [{"number": t.number, "state": t.state.name, "cv_rmse_log": t.value, **t.params} for t in study.trials]
    return TrainedModel(
        booster=fit(x, y_log, best.params, config.seed, config.nthread, feature_names),
        params=dict(best.params),
        cv_r2_mean=float(cv_r2.mean()),
        cv_r2_std=float(cv_r2.std()),
        trials=trials,
    )


def predict_price(booster: xgb.Booster, x: np.ndarray, feature_names: list[str] = FEATURE_NAMES) -> np.ndarray:
    """Dollars."""
    return from_target(booster.predict(xgb.DMatrix(x, feature_names=feature_names)))
