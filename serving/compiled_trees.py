"""The champion's trees in ONNX Runtime's tree ensemble, for the small requests that dominate serving.

XGBoost's `inplace_predict` costs ~200-350 µs a call whatever the model (per-call setup: the cgroup CPU quota, a
tree view, the thread pool), which is most of a one-row /predict. ONNX Runtime's `TreeEnsembleRegressor` prices
one row in ~10 µs. For large batches XGBoost's blocked kernel is the faster one, so `Champion.predict` sends
at most `SMALL_BATCH_ROWS` rows here and the rest to XGBoost.

Both must give a property the same price, to the bit: the same float32 splits, and the same float32 sums in the
same order. XGBoost starts each row at `base_score` and adds the trees in order; ONNX Runtime adds the trees in
order and `base_values` last, which rounds differently (up to ~30 ulps). So the base score is folded into the
first tree's leaves and `base_values` set to 0: the first sum is then the same `fl(base + leaf)`, and so is every
one after it. `compile_trees` checks this on rows drawn across the model's own split values (with missing
values) before the compiled form is used, and returns None - XGBoost alone serves - when any row differs.

The conversion is onnxmltools' (the field's converter), from the booster in memory: nothing but XGBoost's own
format is read from storage. It runs in the loading thread while the previous champion keeps serving: ~1 s for the
demo's models, ~6 s (pure Python, sharing the worker's interpreter) for the search's largest, 500 trees of depth 9.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import xgboost as xgb

logger = logging.getLogger("bentoml.serving")

#: Rows up to this many are priced by ONNX Runtime, more by XGBoost (measured crossover ~50-100 rows).
SMALL_BATCH_ROWS = 32
#: Rows the equality check prices both ways.
CHECK_ROWS = 2_000


class CompiledTrees:
    """A session over the converted ensemble; `margin(x)` equals `booster.inplace_predict(x)` bit for bit."""

    def __init__(self, model_bytes: bytes, n_features: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one worker per core: more threads only contend
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.n_features = n_features

    def margin(self, x: np.ndarray) -> np.ndarray:
        """The raw prediction (log1p dollars here), float32, one per row."""
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return out.reshape(-1)


def _onnx_model(booster: xgb.Booster, fold_base: bool = True):
    """onnxmltools' conversion, with the base score moved into the first tree's leaves (see the module; False:
    as converted, the base added last)."""
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    plain = xgb.Booster()
    plain.load_model(bytearray(booster.save_raw("ubj")))
    plain.feature_names = None  # the converter reads features as f0, f1, ...
    plain.feature_types = None
    n_features = booster.num_features()
    model = convert_xgboost(plain, initial_types=[("x", FloatTensorType([None, n_features]))], target_opset=15)
    if not fold_base:
        return model, n_features
    [ensemble] = [node for node in model.graph.node if node.op_type == "TreeEnsembleRegressor"]
    attributes = {a.name: a for a in ensemble.attribute}
    base = np.float32(attributes["base_values"].floats[0]) if "base_values" in attributes else np.float32(0)
    trees = np.asarray(attributes["target_treeids"].ints)
    weights = np.asarray(attributes["target_weights"].floats, dtype=np.float32)
    first = trees == trees.min()
    weights[first] = weights[first] + base  # float32 + float32: XGBoost's first sum
    del attributes["target_weights"].floats[:]
    attributes["target_weights"].floats.extend(weights.tolist())
    if "base_values" in attributes:
        attributes["base_values"].floats[0] = 0.0
    return model, n_features


def _split_values(booster: xgb.Booster) -> dict[int, np.ndarray]:
    """Per feature index, the float32 split values of every tree (from the model's JSON: ~10x faster than
    `trees_to_dataframe` on a large model)."""
    model = json.loads(booster.save_raw("json"))
    features, values = [], []
    for tree in model["learner"]["gradient_booster"]["model"]["trees"]:
        inner = np.asarray(tree["left_children"]) != -1  # leaves have no children
        features.append(np.asarray(tree["split_indices"])[inner])
        values.append(np.asarray(tree["split_conditions"], dtype=np.float32)[inner])
    feature, value = np.concatenate(features), np.concatenate(values)
    return {int(i): value[feature == i] for i in np.unique(feature)}


def check_rows(booster: xgb.Booster, rows: int = CHECK_ROWS, seed: int = 0) -> np.ndarray:
    """Rows that exercise the trees: each feature drawn from the model's split values, just under and just
    over them, and missing (NaN) for a tenth - every branch and default direction the model has."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, booster.num_features())).astype(np.float32)
    for i, values in _split_values(booster).items():
        picked = rng.choice(values, rows)
        x[:, i] = np.where(rng.random(rows) < 0.5, np.nextafter(picked, -np.inf), picked)
    x[rng.random(x.shape) < 0.1] = np.nan
    return x


def compile_trees(booster: xgb.Booster) -> CompiledTrees | None:
    """The compiled form of `booster`, or None (XGBoost serves alone) when the conversion is not possible here or
    differs from XGBoost on any check row."""
    try:
        model, n_features = _onnx_model(booster)
        compiled = CompiledTrees(model.SerializeToString(), n_features)
        x = check_rows(booster)
        expected = booster.inplace_predict(x)
        got = compiled.margin(x)
    except Exception as error:  # no onnxruntime, or a model the converter does not take: XGBoost serves
        logger.warning("compiled trees unavailable (%s): XGBoost prices every request", error)
        return None
    differ = int(np.count_nonzero(expected.view(np.uint32) != got.view(np.uint32)))
    if differ:
        logger.warning("compiled trees differ from XGBoost on %d of %d check rows: XGBoost prices every request",
                       differ, len(x))  # fmt: skip
        return None
    return compiled
