"""Optuna + XGBoost: the search's behaviour on small synthetic data (fast), and a search on real rows (slow)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from mlops_assets.core.baseline import MedianPriceBaseline
from mlops_assets.core.features import fit_feature_state, fit_transform_training, to_target, transform
from mlops_assets.core.metrics import regression_metrics
from mlops_assets.core.splits import is_holdout
from mlops_assets.ml.explain import mean_abs_shap
from mlops_assets.ml.predict import predict_price
from mlops_assets.ml.predict import shap_contributions as shap_values
from mlops_assets.ml.training import (
    SEARCH_SPACE,
    TrainedModel,
    TuningConfig,
    startup_trials,
    training_seed,
    tune_and_fit,
    warm_start_params,
)
from mlops_assets.resources import TrainingResource
from tests.model_factory import clean_rows

NAMES = ["a", "b", "c", "d"]
CHAMPION = {"n_estimators": 500, "max_depth": 4, "learning_rate": 0.3, "subsample": 0.9, "colsample_bytree": 1.0,
            "min_child_weight": 2.0, "reg_alpha": 0.01, "reg_lambda": 1.0, "boosting_rounds": 37}  # fmt: skip


def easy(rows: int = 900, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth target a few dozen trees learn: early stopping has something to stop."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(NAMES)))
    return x, 12 + 0.5 * x[:, 0] - 0.3 * x[:, 1] + rng.normal(scale=0.05, size=rows)


def search(seed: int = 7, n_trials: int = 4, **kwargs) -> TrainedModel:
    x, y = easy()
    return tune_and_fit(x, y, TuningConfig(n_trials=n_trials, seed=seed, nthread=1), NAMES, **kwargs)


def tried(model: TrainedModel) -> list[tuple]:
    return [tuple(t[name] for name in SEARCH_SPACE) for t in model.trials]


def test_seeds_per_training_are_stable_and_differ_by_batch():
    assert training_seed(42, "00003") == training_seed(42, "00003")
    seeds = {training_seed(42, f"{k:05d}") for k in range(1, 9)} | {training_seed(7, "00003")}
    assert len(seeds) == 9 and all(0 <= s < 2**31 for s in seeds)
    resource = TrainingResource()
    assert resource.tuning(batch_id="00003").seed == training_seed(resource.seed, "00003")
    assert resource.tuning(batch_id="00003").seed != resource.tuning(batch_id="00004").seed
    assert resource.tuning(5).seed == resource.seed and resource.tuning(5).n_trials == 5


def test_tpe_models_after_a_few_random_trials():
    assert [startup_trials(n) for n in (1, 3, 10, 20, 60)] == [1, 1, 3, 5, 5]
    assert TuningConfig(n_trials=20).startup == 5 and TuningConfig(n_startup_trials=2).startup == 2


def test_different_seeds_try_different_configurations():
    first, second = search(seed=1, n_trials=3), search(seed=2, n_trials=3)
    assert not set(tried(first)) & set(tried(second))


def test_the_same_seed_gives_the_same_search_and_model():
    first, second = search(seed=3), search(seed=3)
    assert tried(first) == tried(second) and first.params == second.params
    x, _ = easy(50, seed=1)
    np.testing.assert_array_equal(predict_price(first.booster, x), predict_price(second.booster, x))


def test_the_champions_parameters_are_the_first_trial():
    model = search(warm_start=CHAMPION)
    first = model.trials[0]
    assert first["number"] == 0 and first["source"] == "champion"
    assert {name: first[name] for name in SEARCH_SPACE} == {k: v for k, v in CHAMPION.items() if k in SEARCH_SPACE}
    assert model.search["warm_start"] == {k: v for k, v in CHAMPION.items() if k in SEARCH_SPACE}
    assert all("source" not in t for t in model.trials[1:])


def test_a_warm_start_outside_the_space_is_clipped_or_skipped():
    lines: list[str] = []
    clipped = warm_start_params(CHAMPION | {"n_estimators": 730, "max_depth": 12, "learning_rate": 0.001}, lines.append)
    assert clipped is not None
    assert (clipped["n_estimators"], clipped["max_depth"], clipped["learning_rate"]) == (500, 9, 0.02)
    assert "n_estimators 730 -> 500" in lines[0] and "max_depth 12 -> 9" in lines[0]
    assert (warm_start_params({**CHAMPION, "n_estimators": 333}) or {}).get("n_estimators") == 350  # step grid
    assert warm_start_params({"max_depth": 4}, lines.append) is None and "skipped" in lines[-1]
    assert warm_start_params({**CHAMPION, "subsample": None}, lines.append) is None and "subsample" in lines[-1]
    assert warm_start_params(None) is None and warm_start_params({}) is None
    model = search(n_trials=2, warm_start={"max_depth": 4})  # a champion of another search space: no warm start
    assert model.search["warm_start"] is None and "source" not in model.trials[0]


def test_early_stopping_trains_fewer_rounds_than_the_upper_bound():
    model = search(n_trials=3, warm_start=CHAMPION)  # learning rate 0.3 on an easy problem: far fewer than 500
    assert model.trials[0]["boosting_rounds"] < CHAMPION["n_estimators"] / 2
    rounds = model.params["boosting_rounds"]
    assert rounds == model.search["boosting_rounds"] and rounds <= model.params["n_estimators"]
    # the final booster holds exactly the chosen rounds: predicting needs no iteration_range
    assert model.booster.num_boosted_rounds() == rounds
    # the work done: every fold's rounds up to its stop, far from 3 folds x 3 trials x the upper bound
    assert rounds < model.search["rounds_trained"] < 3 * sum(t["n_estimators"] for t in model.trials)


def test_progress_is_logged_once_per_trial_and_per_phase():
    lines: list[str] = []
    model = search(n_trials=5, warm_start=CHAMPION, log=lines.append)
    per_trial = [line for line in lines if line.startswith("trial ")]
    assert len(per_trial) == 5 == len(model.trials)
    assert per_trial[0].startswith("trial 1/5 (champion's parameters): cv rmse(log) ")
    assert all(" s" in line and ("best " in line) for line in per_trial)
    assert lines[0].startswith("tuning: 5 trials (1 random, then multivariate TPE)") and "max_depth 3..9" in lines[0]
    for phase in ("folds built: ", "search done: 5 trials", "final fit: "):
        assert sum(line.startswith(phase) for line in lines) == 1, phase
    search_record = model.search
    assert search_record["complete"] + search_record["pruned"] == search_record["trials"] == 5
    assert set(search_record["space"]) == set(SEARCH_SPACE) and search_record["seed"] == 7
    flat = model.search_params()
    assert flat["search_trials"] == 5 and "max_depth 3..9" in str(flat["search_space"])


def imported_by(module: str) -> set[str]:
    """Every top-level package `module` imports, following the project's own modules (read, not imported)."""
    seen, packages, todo = set(), set(), [module]
    while todo:
        name = todo.pop()
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:  # `from package.module import name`: a name, not a module
            continue
        if name in seen or spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(Path(spec.origin).read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            for imported in names:
                packages.add(imported.split(".")[0])
                if imported.startswith("mlops_assets."):
                    todo.append(imported)
    return packages


def test_the_prediction_path_does_not_import_optuna():
    assert "xgboost" in imported_by("mlops_assets.ml.predict")
    assert "optuna" not in imported_by("mlops_assets.ml.predict")
    assert "optuna" in imported_by("mlops_assets.ml.training")  # the check sees it where it is


@pytest.mark.slow  # an Optuna search on real rows
def test_tuning_searches_the_space_and_the_model_learns():
    data = clean_rows((1, 2), rows=4_000)
    mask = is_holdout(data["listing_id"])
    train, holdout = data[~mask], data[mask]
    state, train_x = fit_transform_training(train)
    model = tune_and_fit(train_x.to_numpy(), to_target(train["price"]), TuningConfig(n_trials=6))
    assert len(model.trials) == 6
    assert {*SEARCH_SPACE, "boosting_rounds"} == set(model.params)
    assert 100 <= model.params["n_estimators"] <= 500 and 3 <= model.params["max_depth"] <= 9
    assert 1 <= model.params["boosting_rounds"] <= model.params["n_estimators"]
    assert 0 < model.cv_r2_mean < 1 and model.cv_r2_std >= 0
    metrics = regression_metrics(holdout["price"], predict_price(model.booster, transform(holdout, state).to_numpy()))
    assert metrics["r2"] > 0.35 and metrics["rmse"] < 700_000
    # it learned more than where the listing is: well ahead of the zip / city / state median price
    baseline = regression_metrics(holdout["price"], MedianPriceBaseline.fit(train).predict(holdout))
    assert metrics["rmse_log"] < 0.8 * baseline["rmse_log"] and metrics["r2_log"] > 0.6


@pytest.mark.slow  # an Optuna search on real rows
def test_shap_values_are_additive_in_log_space():
    data = clean_rows((1,), rows=2_000)
    state = fit_feature_state(data)
    x = transform(data, state).to_numpy()
    model = tune_and_fit(x, to_target(data["price"]), TuningConfig(n_trials=1))
    values, base = shap_values(model.booster, x[:50])
    margin = model.booster.predict(xgb.DMatrix(x[:50], feature_names=state.feature_names))
    np.testing.assert_allclose(base + values.sum(axis=1), margin, rtol=1e-5)
    importance = mean_abs_shap(model.booster, x[:200])
    # what drives a price: the place (its price levels) and the size
    assert max(importance, key=lambda name: importance[name]) in {
        "house_size", "size_per_bed", "state_price_level", "city_price_level", "zip_price_level",
        "zip_price_per_sqft_level", "ppsf_price_estimate",
    }  # fmt: skip
