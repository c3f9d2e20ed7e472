"""The compiled trees (ONNX Runtime) price small requests as XGBoost does, to the bit, or are not used at all."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import xgboost as xgb

from mlops_assets.core.features import fit_feature_state, to_target, transform
from mlops_assets.ml.predict import predict_price
from mlops_assets.ml.registry import LoadedModel
from serving import compiled_trees
from serving.compiled_trees import SMALL_BATCH_ROWS, check_rows, compile_trees
from serving.predictor import Champion
from tests.model_factory import clean_rows


@pytest.fixture(scope="module")
def trained() -> tuple[xgb.Booster, np.ndarray, object]:
    """A real model of the listings (features as training builds them), deep enough that float32 rounding order
    matters: 150 trees."""
    rows = clean_rows((1,), rows=3_000)
    state = fit_feature_state(rows)
    x = transform(rows, state).to_numpy()
    params = {"max_depth": 6, "eta": 0.1, "nthread": 1, "subsample": 0.8, "seed": 1}
    booster = xgb.train(params, xgb.DMatrix(x, label=to_target(rows["price"])), num_boost_round=150)
    return booster, x, state


def _bits(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).view(np.uint32)


def test_the_compiled_trees_give_xgboost_s_float32_result_to_the_bit(trained):
    booster, x, _ = trained
    compiled = compile_trees(booster)
    assert compiled is not None
    drawn = check_rows(booster, seed=7)
    assert np.isnan(drawn).any()  # missing values take the trees' default directions
    for rows in (x, drawn, x[:1]):
        assert np.array_equal(_bits(compiled.margin(rows)), _bits(booster.inplace_predict(rows)))


def test_without_the_base_score_moved_into_the_first_tree_the_sums_round_differently(trained, monkeypatch):
    """Why `_onnx_model` folds the base score in: ONNX Runtime adds it last, XGBoost first. Such a conversion
    differs from XGBoost on some rows, and compile_trees then refuses it: XGBoost prices everything."""
    booster, x, _ = trained
    converted = compiled_trees._onnx_model

    def base_added_last(model: xgb.Booster):
        return converted(model, fold_base=False)

    unfolded = compiled_trees.CompiledTrees(base_added_last(booster)[0].SerializeToString(), booster.num_features())
    differ = _bits(unfolded.margin(x)) != _bits(booster.inplace_predict(x))
    assert differ.any()  # the rounding order shows
    assert np.allclose(unfolded.margin(x), booster.inplace_predict(x), rtol=1e-5)  # but only in the last bits

    monkeypatch.setattr(compiled_trees, "_onnx_model", base_added_last)
    assert compile_trees(booster) is None


def test_a_model_the_converter_cannot_take_is_served_by_xgboost_alone(trained, monkeypatch, caplog):
    booster, x, state = trained

    def fails(model: xgb.Booster):
        raise ValueError("unsupported objective")

    monkeypatch.setattr(compiled_trees, "_onnx_model", fails)
    with caplog.at_level(logging.WARNING, logger="bentoml.serving"):
        champion = Champion.prepare(LoadedModel("house-price", "1", None, booster, state), "champion")
    assert champion.compiled is None and champion.predictor == "xgboost"
    assert "unsupported objective" in caplog.text
    assert np.array_equal(champion.predict(x[:1]), predict_price(booster, x[:1]))


def test_a_champion_prices_small_requests_compiled_and_large_ones_with_xgboost_one_price_either_way(trained):
    booster, x, state = trained
    champion = Champion.prepare(LoadedModel("house-price", "1", None, booster, state), "champion")
    assert champion.compiled is not None and "onnxruntime" in champion.predictor
    large = x[: SMALL_BATCH_ROWS * 4]
    one_by_one = np.concatenate([champion.predict(large[k : k + 1]) for k in range(len(large))])
    assert np.array_equal(one_by_one, champion.predict(large))  # XGBoost for the batch, compiled for each row
    assert np.array_equal(champion.predict(large[:SMALL_BATCH_ROWS]), predict_price(booster, large[:SMALL_BATCH_ROWS]))
