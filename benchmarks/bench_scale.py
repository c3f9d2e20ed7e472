"""What each step costs at full data scale, each step isolated at a fixed size:

    python benchmarks/bench_scale.py [--clean-rows 1000000] [--load-rows 200000] [--drift-rows 1000000]
        [--train-sizes 50000,200000] [--trials 10] [--train-large 1000000] [--large-trials 1] [--nthread 1]
        [--shap-rows 100000] [--repeats 3] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
        [--data-dir DIR] [--no-profile] [--output docs/benchmarks.md]

Steps, each in a fresh Python process of its own (its peak RSS is its own: VmHWM, reset after the step's input is
loaded, so a figure is the step's resident peak with its input held, imports included):

1. **cleaning**: `core.cleaning.clean_listings` on `--clean-rows` raw rows (as `clean_listings` cleans a batch);
2. **raw load**: `Warehouse.replace_batch(raw_listings, ...)` of `--load-rows` raw rows (as `raw_listings` loads a
   batch) into SQLite (a temporary file; chunked executemany) and PostgreSQL (COPY; a database of its own, dropped
   at the end); three batches each, a new batch id each time (a first load, no delete);
3. **drift**: `ml.drift.compare` of `--drift-rows` current against `--drift-rows` reference clean rows, with the
   default rule (each side sampled to `DriftRule.sample_rows` rows, `DataFrame.sample(random_state=0)`), and the
   same comparison unsampled, for an unchanged batch, a batch that drifted and two near the threshold;
4. **training**: `fit_transform_training` then `tune_and_fit` (`TuningConfig(n_trials=--trials)`) on growing
   training-row counts (`--train-sizes`), as `candidate_model` trains; at `--train-large` rows `--large-trials`
   trials, the `--trials`-trial time then extrapolated (and said so) when fewer were run. XGBoost threads:
   `--nthread` (default 1; the pipeline's default is 0, every core): on a shared 2-core machine two threads made a
   trial ~5x slower, and one run of trial 1 with every core measures that ratio each time;
5. **SHAP**: `ml.predict.shap_contributions` of the largest model on the 2,000 holdout rows the tracking explains,
   and on `--shap-rows` rows (and the 2,000 with every core, as the tracking calls it).

Defaults sized to finish in about 12-15 minutes on 2 loaded cores.

Data: the generator's national regime (seed 42's geography; random streams 1-3), raw rows with its missing values,
absurd prices and duplicates, coerced as `raw_listings` coerces them; clean rows by `clean_listings`. `--data-dir`
keeps the generated data for the next run (default: a temporary directory). A missed target is profiled with
py-spy (when installed) and the profile's top functions are written with the figures. Writes the "Full data scale"
section of docs/benchmarks.md and docs/images/bench-training-scale.png.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import machine, write_section  # noqa: E402

START = "<!-- scale-benchmark:start -->"
END = "<!-- scale-benchmark:end -->"
IMAGE = ROOT / "docs" / "images" / "bench-training-scale.png"
DATABASE = "mlops_bench_scale"
GEOGRAPHY_SEED = 42
CLEAN_YIELD = 0.66
"""At least this share of the generator's raw rows survives cleaning (~69%: a fifth have no bed/bath/size)."""
TRACKED_SHAP_ROWS = 2_000
"""The holdout rows `ml.tracking.record_training` explains."""
GIB = 1024**3

TARGETS = {
    "cleaning": "cleaning >= 1,000,000 rows/s",
    "load": "PostgreSQL raw load >= 200,000 rows/s",
    "drift": "drift 1M vs 1M <= 15 s",
    "training": "training 1M rows, default search <= 10 min",
    "rss": "peak RSS <= 4 GiB",
}
MIN_CLEAN_RATE = 1_000_000
MIN_LOAD_RATE = 200_000
MAX_DRIFT_SECONDS = 15.0
MAX_TRAINING_SECONDS = 600.0
MAX_RSS = 4 * GIB


# --- measuring, in the step's process -------------------------------------------------------------------------------


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return 0


@contextmanager
def measured(into: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Wall and CPU seconds (every thread of the process) and the resident peak of the block, into `into`.

    The peak (VmHWM) is reset to the current RSS first (`/proc/self/clear_refs`), so it is this block's peak with
    what the process already holds; `peak_reset` says whether the kernel allowed it (else: the process's peak)."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        into["peak_reset"] = True
    except OSError:
        into["peak_reset"] = False
    into["rss_before"] = _status_bytes("VmRSS")
    wall, cpu = time.perf_counter(), time.process_time()
    yield into
    into["wall"] = time.perf_counter() - wall
    into["cpu"] = time.process_time() - cpu
    into["peak_rss"] = _status_bytes("VmHWM")


def _say(text: str) -> None:
    print(f"  {text}", flush=True)


# --- the data --------------------------------------------------------------------------------------------------------


def _raw(stream: int, rows: int):
    """`rows` raw listings of the national regime, imperfections included, coerced as `raw_listings` does."""
    import numpy as np

    from mlops_assets.core.schema import coerce_raw
    from mlops_assets.sources.generator import Regime, add_imperfections, generate_listings

    rng = np.random.default_rng([GEOGRAPHY_SEED, stream])
    frame = add_imperfections(generate_listings(rows, Regime(None), rng, GEOGRAPHY_SEED), rng)
    return coerce_raw(frame.iloc[:rows])


def child_prepare(spec: dict) -> dict:
    from mlops_assets.core.cleaning import clean_listings

    data = Path(spec["dir"])
    started = time.monotonic()
    _raw(1, spec["raw_rows"]).to_parquet(data / "raw.parquet")
    _say(f"raw: {spec['raw_rows']:,} rows ({time.monotonic() - started:.0f} s)")
    sizes = {}
    for stream in (2, 3):
        wanted = spec["pool_rows"]
        clean = clean_listings(_raw(stream, math.ceil(wanted / CLEAN_YIELD))).frame
        if len(clean) < wanted:
            raise RuntimeError(f"stream {stream}: {len(clean):,} clean rows, fewer than {wanted:,}")
        clean.to_parquet(data / f"clean_{stream}.parquet")
        sizes[stream] = len(clean)
        _say(f"clean stream {stream}: {len(clean):,} rows ({time.monotonic() - started:.0f} s)")
        del clean
        gc.collect()
    return {"seconds": time.monotonic() - started, "clean_rows": sizes}


# --- the steps -------------------------------------------------------------------------------------------------------


def child_cleaning(spec: dict) -> dict:
    import pandas as pd

    from mlops_assets.core.cleaning import clean_listings
    from mlops_assets.core.schema import coerce_raw

    raw = pd.read_parquet(Path(spec["dir"]) / "raw.parquet").iloc[: spec["rows"]]
    out: dict[str, Any] = {"rows_in": len(raw)}
    with measured(out):
        result = clean_listings(raw)
    out |= {"rows_out": result.rows_out, "dropped": result.dropped}
    _say(f"clean_listings: {len(raw):,} rows in {out['wall']:.1f} s")
    if spec.get("coerce", True):
        coerce: dict[str, Any] = {}
        with measured(coerce):
            coerce_raw(raw)
        out["coerce"] = coerce
        _say(f"coerce_raw: {len(raw):,} rows in {coerce['wall']:.1f} s")
    return out


def _postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL server process on this machine (backends, WAL writer, checkpointer), from
    /proc; NaN when none is visible (a server elsewhere)."""
    ticks, found = 0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, tail = stat.read_text().rpartition(")")
        except OSError:  # gone meanwhile
            continue
        if head.split("(", 1)[-1] == "postgres":
            fields = tail.split()
            ticks += int(fields[11]) + int(fields[12])
            found = True
    return ticks / os.sysconf("SC_CLK_TCK") if found else float("nan")


def child_load(spec: dict) -> dict:
    from datetime import UTC, datetime

    import pandas as pd
    import sqlalchemy as sa

    from mlops_assets.storage import warehouse as tables
    from mlops_assets.storage.warehouse import Warehouse

    raw = pd.read_parquet(Path(spec["dir"]) / "raw.parquet").iloc[: spec["rows"]].reset_index(drop=True)
    raw.insert(0, "batch_id", "")
    raw.insert(1, "source", "bench")
    raw.insert(2, "ingested_at", datetime.now(UTC))
    results: dict[str, Any] = {"rows": len(raw)}

    def load(url: str, name: str) -> None:
        db = Warehouse(url)
        db.create_tables()
        runs = []
        for repeat in range(spec["repeats"]):
            batch_id = f"{repeat + 1:05d}"
            raw["batch_id"] = batch_id
            server_cpu = _postgres_cpu() if db.is_postgres else float("nan")
            run: dict[str, Any] = {}
            with measured(run):
                db.replace_batch(tables.raw_listings, batch_id, raw)
            if db.is_postgres:
                run["server_cpu"] = _postgres_cpu() - server_cpu
            loaded = db.count(tables.raw_listings, batch_id)
            if loaded != len(raw):  # a benchmark of a load that lost rows measures nothing
                raise RuntimeError(f"{name}: loaded {loaded:,} rows of {len(raw):,}")
            runs.append(run)
            _say(f"{name} batch {batch_id}: {len(raw):,} rows in {run['wall']:.2f} s")
        results[name] = runs
        if db.is_postgres:
            with db.engine.connect() as connection:
                results["postgresql_version"] = str(connection.execute(sa.text("SHOW server_version")).scalar_one())
        db.dispose()

    if "sqlite" in spec["backends"]:
        import sqlite3

        with tempfile.TemporaryDirectory() as tmp:
            load(f"sqlite:///{tmp}/bench.db", "sqlite")
        results["sqlite_version"] = sqlite3.sqlite_version
    if "postgresql" in spec["backends"]:
        admin = sa.create_engine(spec["postgres"], isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{DATABASE}"'))
            connection.execute(sa.text(f'CREATE DATABASE "{DATABASE}"'))
        try:
            load(spec["postgres"].rsplit("/", 1)[0] + f"/{DATABASE}", "postgresql")
        finally:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{DATABASE}"'))
            admin.dispose()
    return results


def drift_cases(current):
    """The batches compared with the reference: unchanged, drifted as the demo's later batches are (prices x1.3,
    houses x1.1), and price moves that score just under and just over the rule's threshold (x1.10: ~0.095, x1.12:
    ~0.115, of 0.1)."""

    def scaled(price: float, size: float):
        frame = current.copy()
        frame["price"] = frame["price"] * price
        frame["house_size"] = frame["house_size"] * size
        return frame

    return {
        "unchanged": lambda: current,
        "drifted (price x1.3, house_size x1.1)": lambda: scaled(1.3, 1.1),
        "just under the threshold (price x1.10)": lambda: scaled(1.10, 1.0),
        "just over the threshold (price x1.12)": lambda: scaled(1.12, 1.0),
    }


def child_drift(spec: dict) -> dict:
    import pandas as pd

    from mlops_assets.ml.drift import CATEGORICAL, NUMERIC, DriftRule, compare

    data, rows, columns = Path(spec["dir"]), spec["rows"], NUMERIC + CATEGORICAL
    reference = pd.read_parquet(data / "clean_2.parquet", columns=columns).iloc[:rows].reset_index(drop=True)
    current = pd.read_parquet(data / "clean_3.parquet", columns=columns).iloc[:rows].reset_index(drop=True)
    out: dict[str, Any] = {"reference_rows": len(reference), "current_rows": len(current), "cases": {}}
    imported: dict[str, Any] = {}
    with measured(imported):
        from evidently import Report  # noqa: F401  (compare imports it: timed apart, once per process)
        from evidently.metrics import ValueDrift  # noqa: F401
    out["import"] = imported
    _say(f"import evidently: {imported['wall']:.1f} s")
    sampled_rule = DriftRule()
    exact_rule = DriftRule(sample_rows=max(len(reference), len(current)))
    out["sample_rows"] = sampled_rule.sample_rows
    for name, make in drift_cases(current).items():
        if spec.get("cases") and name not in spec["cases"]:
            continue
        batch = make()
        case: dict[str, Any] = {}
        for kind, rule in (("sampled", sampled_rule), ("exact", exact_rule)):
            if kind == "exact" and not spec.get("exact", True):
                continue
            run: dict[str, Any] = {}
            with measured(run):
                result = compare(reference, batch, rule)
            run["decision"] = result.detected(rule)
            run["why"] = result.why()
            run["columns"] = {c: {"score": v.score, "drifted": v.drifted} for c, v in result.columns.items()}
            case[kind] = run
            _say(f"{name}, {kind}: drifted {run['decision']} in {run['wall']:.1f} s")
        out["cases"][name] = case
        del batch
    return out


def _phase_seconds(lines: list[str]) -> dict[str, float]:
    """The phases' seconds from `tune_and_fit`'s own log lines."""
    patterns = {"folds": r"^folds built: .*\(([\d.]+) s\)$", "search": r"^search done: .* in ([\d.]+) s;",
                "final_fit": r"^final fit: .* in ([\d.]+) s$"}  # fmt: skip
    found = {}
    for key, pattern in patterns.items():
        for line in lines:
            if match := re.search(pattern, line):
                found[key] = float(match.group(1))
    return found


def child_train(spec: dict) -> dict:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops_assets.core.features import fit_transform_training, to_target, transform
    from mlops_assets.core.splits import is_holdout
    from mlops_assets.ml.training import TuningConfig, training_seed, tune_and_fit

    data = Path(spec["dir"])
    # The pool stays in Arrow: only the rows used become pandas rows (the step holds what the pipeline would).
    pool = pa.concat_tables([pq.read_table(data / f"clean_{s}.parquet") for s in (2, 3)])
    holdout_mask = is_holdout(pool.column("listing_id").to_pandas())
    training_rows, holdout_rows = np.flatnonzero(~holdout_mask), np.flatnonzero(holdout_mask)
    if spec["rows"] > len(training_rows):
        raise RuntimeError(f"{spec['rows']:,} training rows asked, {len(training_rows):,} available")
    picked = np.sort(np.random.default_rng(0).choice(training_rows, size=spec["rows"], replace=False))
    train = pool.take(picked).to_pandas()
    holdout = pool.take(holdout_rows[: spec.get("holdout_rows", 0)]).to_pandas()
    del pool
    out: dict[str, Any] = {"rows": len(train), "trials": spec["trials"]}
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        _say(line[:160])

    config = TuningConfig(
        n_trials=spec["trials"], seed=training_seed(TuningConfig.seed, "00001"), nthread=spec["nthread"]
    )
    with measured(out):
        features: dict[str, Any] = {}
        with measured(features):
            state, train_x = fit_transform_training(train)
            x, y_log = train_x.to_numpy(), to_target(train["price"])
        model = tune_and_fit(x, y_log, config, log=log)
    out["features"] = features
    out["phases"] = _phase_seconds(lines)
    out["search"] = {k: v for k, v in model.search.items() if k not in ("space", "warm_start")}
    out["trial_seconds"] = [t["seconds"] for t in model.trials]
    out["trial_states"] = [t["state"] for t in model.trials]
    out["params"] = model.params
    out["trees"] = model.booster.num_boosted_rounds()
    if spec.get("save"):
        model.booster.save_model(data / "model.ubj")
        np.save(data / "holdout_x.npy", transform(holdout, state).to_numpy())
    return out


def child_shap(spec: dict) -> dict:
    import numpy as np
    import xgboost as xgb

    from mlops_assets.ml.predict import shap_contributions

    data = Path(spec["dir"])
    booster = xgb.Booster()
    booster.load_model(data / "model.ubj")
    x = np.load(data / "holdout_x.npy")
    out: dict[str, Any] = {"trees": booster.num_boosted_rounds(), "runs": []}
    runs = [(TRACKED_SHAP_ROWS, spec["nthread"]), (spec["rows"], spec["nthread"])]
    if spec["nthread"] != 0:  # as `record_training` calls it: every core
        runs.append((TRACKED_SHAP_ROWS, 0))
    for rows, nthread in runs:
        run: dict[str, Any] = {"rows": min(rows, len(x)), "nthread": nthread}
        with measured(run):
            shap_contributions(booster, x[:rows], nthread=nthread)
        out["runs"].append(run)
        _say(f"shap_contributions: {run['rows']:,} rows, nthread {nthread}, in {run['wall']:.2f} s")
    return out


CHILDREN: dict[str, Callable[[dict], dict]] = {
    "prepare": child_prepare,
    "cleaning": child_cleaning,
    "load": child_load,
    "drift": child_drift,
    "train": child_train,
    "shap": child_shap,
}
PROFILE_FOCUS = {"cleaning": "clean_listings", "load": "replace_batch", "drift": "compare", "train": "tune_and_fit"}
"""The function whose samples a step's profile keeps (what the step times)."""
PROFILE_RATE = 100
"""py-spy samples per second; `--idle` keeps the samples of a thread waiting (on PostgreSQL, say): wall time."""


# --- the orchestration -------------------------------------------------------------------------------------------


def _command(spec: dict) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]


def run_child(spec: dict) -> dict:
    """Run one step in a fresh process; its result comes back through a JSON file."""
    result = Path(spec["dir"]) / f"result-{spec['step']}-{spec.get('rows', 0)}-{spec.get('nthread', '')}.json"
    result.unlink(missing_ok=True)
    print(f"{spec['step']}: ...", flush=True)
    started = time.monotonic()
    subprocess.run(_command(spec | {"result": str(result)}), check=True)  # noqa: S603 (our own script)
    out = json.loads(result.read_text())
    print(f"{spec['step']}: {time.monotonic() - started:.0f} s", flush=True)
    return out


def _frame(text: str) -> tuple[str, str, int]:
    """A py-spy raw frame 'name (path:line)' -> (name, short path, line)."""
    match = re.match(r"^(.*) \((.*?)(?::(\d+))?\)$", text)
    if not match:
        return text, "", 0
    name, path, line = match.groups()
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return name, path, int(line or 0)


def _where(name: str, path: str, line: int) -> str:
    """'name (path:line)', with the line's code when it is the project's."""
    text = f"{name} ({path}:{line})"
    source = ROOT / path
    if line and path.startswith(("mlops_assets/", "benchmarks/")) and source.exists():
        lines = source.read_text().splitlines()
        code = lines[line - 1].strip() if line <= len(lines) else ""
        text += f": {code[:70]}" if code else ""
    return text


def summarize_profile(raw: Path, focus: str, top: int = 5) -> dict:
    """From py-spy's raw (collapsed) stacks, the samples inside `focus` (a function or method name): `focus`'s
    direct callees by inclusive time, the project's lines by inclusive time (the innermost `mlops_assets` frame of
    each sample: the product line that led to it) and the lines with the most own time; shares of the samples
    inside `focus`."""
    own: Counter[str] = Counter()
    callees: Counter[str] = Counter()
    project: Counter[str] = Counter()
    inside = 0
    for line in raw.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        frames = [_frame(f) for f in stack_text.split(";")]
        positions = [i for i, (name, _, _) in enumerate(frames) if name == focus or name.endswith(f".{focus}")]
        if not positions:
            continue
        count = int(count_text)
        inside += count
        below = frames[positions[0] :]
        own[_where(*below[-1])] += count
        if len(below) > 1:
            callees[f"{below[1][0]} ({below[1][1]})"] += count
        ours = [frame for frame in below if frame[1].startswith("mlops_assets/")]
        if ours:
            project[_where(*ours[-1])] += count
    if not inside:
        return {"samples": 0, "own": [], "callees": [], "project": []}

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, n / inside) for name, n in counter.most_common(top)]

    return {"samples": inside, "own": shares(own), "callees": shares(callees), "project": shares(project)}


def profile(spec: dict) -> dict | None:
    """The step re-run under py-spy (sampling, non-blocking); None when py-spy is not installed."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("py-spy not installed: no profile", flush=True)
        return None
    raw = Path(spec["dir"]) / f"profile-{spec['step']}.txt"
    result = Path(spec["dir"]) / f"profile-result-{spec['step']}.json"
    print(f"profiling {spec['step']} with py-spy: ...", flush=True)
    command = [spy, "record", "--format", "raw", "--rate", str(PROFILE_RATE), "--idle", "--nonblocking", "-o", str(raw)]
    command.append("--")
    subprocess.run([*command, *_command(spec | {"result": str(result)})], check=True)  # noqa: S603
    summary = summarize_profile(raw, PROFILE_FOCUS[spec["step"]])
    summary["spec"] = {k: v for k, v in spec.items() if k not in ("dir", "postgres")}
    return summary


def extrapolate(train: list[dict], large: dict | None, trials: int, default_trials: int) -> dict | None:
    """`trials` (and `default_trials`) trials at the large size from each full run, scaled by how trial 1 - the
    same parameters at every size (the same seed) - scaled between the two sizes, plus the large size's features
    and folds (measured). The figure is the largest full run's (the shortest leap); `bases` has every run's, a
    range that shows how much the shared machine's noise moves it."""
    if large is None or large["trials"] >= trials or not train:
        return None
    fixed = large["features"]["wall"] + large["phases"].get("folds", 0.0)
    bases = []
    for base in sorted(train, key=lambda r: r["rows"]):
        k = large["trial_seconds"][0] / base["trial_seconds"][0]
        search, final = base["phases"].get("search", 0.0), base["phases"].get("final_fit", 0.0)
        bases.append({
            "base_rows": base["rows"],
            "k": k,
            "wall": fixed + (search + final) * k,
            "wall_default": fixed + (search * default_trials / trials + final) * k,
        })  # fmt: skip
    return bases[-1] | {"bases": bases}


def plot(
    train: list[dict], large: dict | None, estimate: dict | None, trials: int, default_trials: int, path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    full = sorted(train, key=lambda r: r["rows"])
    xs = [r["rows"] for r in full]
    axis.plot(xs, [r["wall"] / 60 for r in full], "o-", label=f"{trials} trials, measured")
    if large is not None and large["trials"] >= trials:
        axis.plot([*xs[-1:], large["rows"]], [full[-1]["wall"] / 60, large["wall"] / 60], "o-", color="C0")
    elif large is not None and estimate is not None:
        axis.plot([xs[-1], large["rows"]], [full[-1]["wall"] / 60, estimate["wall"] / 60], "--", color="C0")
        axis.plot([large["rows"]], [estimate["wall"] / 60], "o", color="C0", mfc="white",
                  label=f"{trials} trials, extrapolated")  # fmt: skip
        axis.plot([large["rows"]], [estimate["wall_default"] / 60], "D", color="C2", mfc="white",
                  label=f"default search ({default_trials} trials), extrapolated")  # fmt: skip
        axis.plot([large["rows"]], [large["wall"] / 60], "s", color="C1", label=f"{large['trials']} trial, measured")
    axis.axhline(MAX_TRAINING_SECONDS / 60, color="C3", ls=":", label="target (default search): 10 min")
    axis.set_xlabel("training rows")
    axis.set_ylabel("wall time (min)")
    axis.set_title("tune_and_fit (with features) by training rows")
    axis.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1e6:g}M"))
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --- the section -------------------------------------------------------------------------------------------------


def _gib(value: float) -> str:
    return f"{value / GIB:.2f} GiB"


def _s(value: float) -> str:
    return f"{value:.1f} s" if value < 100 else f"{value:.0f} s"


def _min(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 600 else f"{seconds / 60:.1f} min"


def _met(ok: bool, text: str) -> str:
    return f"met: {text}" if ok else f"**MISSED**: {text}"


def _versions() -> str:
    names = ["pandas", "numpy", "pyarrow", "xgboost", "optuna", "evidently", "sqlalchemy", "psycopg2-binary"]
    found = []
    for name in names:
        try:
            found.append(f"{name.removesuffix('-binary')} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _profile_lines(name: str, summary: dict | None) -> list[str]:
    if summary is None:
        return [f"- **{name}**: not profiled (py-spy not installed, or `--no-profile`)."]
    if not summary["samples"]:
        return [f"- **{name}**: the profile holds no sample inside the step."]
    own = ", ".join(f"`{n}` {s:.0%}" for n, s in summary["own"])
    callees = ", ".join(f"`{n}` {s:.0%}" for n, s in summary["callees"])
    project = ", ".join(f"`{n}` {s:.0%}" for n, s in summary.get("project", []))
    spec = summary["spec"]
    sizes = ", ".join(f"{k} {spec[k]:,}" for k in ("rows", "trials") if k in spec)
    return [
        f"- **{name}** ({summary['samples']:,} samples at {PROFILE_RATE}/s; {sizes}):",
        f"  - the step's direct calls (inclusive): {callees}",
        f"  - the product's lines (inclusive: the innermost `mlops_assets` frame of each sample): {project or '-'}",
        f"  - own time: {own}",
    ]


def section(run: dict) -> str:
    cleaning, load, drift, shap = run["cleaning"], run["load"], run["drift"], run["shap"]
    shap_depth = (run.get("large") or max(run["train"], key=lambda r: r["rows"]))["params"]["max_depth"]
    train, large, estimate = run["train"], run.get("large"), run.get("estimate")
    trials, default_trials = run["trials"], run["default_trials"]
    info = machine() | {"load average at start": run["load_start"]}
    info["load average at end"] = run["load_end"]
    info["versions"] = (
        f"{_versions()}, PostgreSQL {load.get('postgresql_version', '?')}, SQLite {load.get('sqlite_version', '?')}"
    )
    peaks: list[tuple[str, float]] = []
    threads_text = (
        "every core (`nthread=0`, as the pipeline trains)"
        if not run["nthread"]
        else f"`nthread={run['nthread']}` for training and SHAP (the pipeline's default is 0, every core)"
    )

    lines = [
        START,
        "## Full data scale (`python benchmarks/bench_scale.py`)",
        "",
        f"Measured {run['date']} UTC by `benchmarks/bench_scale.py` in {run['seconds'] / 60:.1f} min "
        + (
            f"(data generation {run['prepare_seconds'] / 60:.1f} min of it); rerun to refresh."
            if not run["reused"]
            else f"with data generated earlier ({run['prepare_seconds'] / 60:.1f} min, not included); rerun to refresh."
        ),
        "",
        *(f"- **{k}**: {v}" for k, v in info.items()),
        "- **data**: the generator's national regime (seed 42's geography, random streams 1-3) with its missing "
        "values, absurd prices and duplicates, coerced as `raw_listings` coerces a batch; clean rows by "
        "`clean_listings`; nothing else ran in the benchmark's processes",
        "- **each step in a fresh process**: *wall*/*CPU* (every thread of the process) of the step alone; *peak "
        "RSS*: the process's resident peak during the step (VmHWM reset once its input was loaded), with its input, "
        "the interpreter and its imports; the PostgreSQL server's CPU is not in *CPU* (given apart)",
        f"- **XGBoost threads**: {threads_text} (see *Threads* below)",
        f"- **command**: `{run['command']}`",
        "",
        "| step | size | wall | CPU | RSS before | peak RSS | rows/s | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]

    def row(step: str, size: str, m: dict, rate: str, target: str = "") -> None:
        peaks.append((step, m["peak_rss"]))
        lines.append(
            f"| {step} | {size} | {_s(m['wall'])} | {_s(m['cpu'])} | {_gib(m['rss_before'])} | "
            f"{_gib(m['peak_rss'])} | {rate} | {target} |"
        )

    clean_rate = cleaning["rows_in"] / cleaning["wall"]
    run["verdicts"] = {"cleaning": clean_rate >= MIN_CLEAN_RATE}
    row("cleaning (`clean_listings`)", f"{cleaning['rows_in']:,} raw rows", cleaning, f"{clean_rate:,.0f}",
        _met(clean_rate >= MIN_CLEAN_RATE, TARGETS["cleaning"]))  # fmt: skip
    if "coerce" in cleaning:
        c = cleaning["coerce"]
        row("`coerce_raw` (before the raw load)", f"{cleaning['rows_in']:,} raw rows", c,
            f"{cleaning['rows_in'] / c['wall']:,.0f}")  # fmt: skip
    rates = {}
    for backend in ("sqlite", "postgresql"):
        if backend not in load:
            continue
        runs = load[backend]
        median = sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]
        rates[backend] = load["rows"] / median["wall"]
        size = f"{load['rows']:,} raw rows, median of {len(runs)}"
        if backend == "postgresql":
            ok = rates[backend] >= MIN_LOAD_RATE
            run["verdicts"]["load"] = ok
            row("raw load, PostgreSQL COPY", size, median, f"{rates[backend]:,.0f}", _met(ok, TARGETS["load"]))
        else:
            row("raw load, SQLite executemany", size, median, f"{rates[backend]:,.0f}")
    cases = drift["cases"]
    sampled_walls = [c["sampled"]["wall"] for c in cases.values()]
    worst = max(cases.values(), key=lambda c: c["sampled"]["wall"])["sampled"]
    drift_ok = max(sampled_walls) <= MAX_DRIFT_SECONDS
    run["verdicts"]["drift"] = drift_ok
    size = f"{drift['current_rows']:,} vs {drift['reference_rows']:,}"
    row("drift (`compare`, default rule: sampled)", f"{size}, slowest case", worst,
        f"{drift['current_rows'] / worst['wall']:,.0f}", _met(drift_ok, TARGETS["drift"]))  # fmt: skip
    exact = [c["exact"] for c in cases.values() if "exact" in c]
    if exact:
        slowest = max(exact, key=lambda r: r["wall"])
        row("drift (`compare`, unsampled)", f"{size}, slowest case", slowest,
            f"{drift['current_rows'] / slowest['wall']:,.0f}")  # fmt: skip
    row("Evidently import (once per process)", "", drift["import"], "")
    for r in sorted(train, key=lambda r: r["rows"]):
        row(f"training ({r['trials']} trials)", f"{r['rows']:,} training rows", r, f"{r['rows'] / r['wall']:,.0f}")
    if large is not None:
        label = "training" if large["trials"] >= trials else f"training ({large['trials']} trial, measured)"
        target = ""
        if large["trials"] >= trials and large["trials"] >= default_trials:
            ok = large["wall"] <= MAX_TRAINING_SECONDS
            run["verdicts"]["training"] = ok
            target = _met(ok, TARGETS["training"])
        row(label, f"{large['rows']:,} training rows", large, f"{large['rows'] / large['wall']:,.0f}", target)
    for r in shap["runs"]:
        row(f"SHAP (`shap_contributions`, nthread {r['nthread']})", f"{r['rows']:,} rows, {shap['trees']} trees",
            r, f"{r['rows'] / r['wall']:,.0f}")  # fmt: skip
    heaviest = max(peaks, key=lambda p: p[1])
    rss_ok = heaviest[1] <= MAX_RSS
    run["verdicts"]["rss"] = rss_ok
    lines.append("")
    lines.append(
        f"Peak RSS: the heaviest step is {heaviest[0]} at {_gib(heaviest[1])}: {_met(rss_ok, TARGETS['rss'])}."
    )

    # training
    lines += [
        "",
        f"### Training by size ({trials} trials, `TuningConfig`, "
        + ("every core" if not run["nthread"] else f"{run['nthread']} XGBoost thread(s)")
        + ")",
        "",
        f"![training time by rows](images/{IMAGE.name})",
        "",
        "| rows | trials (pruned) | features | folds | search | final fit | wall | CPU | per trial (mean) "
        "| rounds trained | trees | peak RSS |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    every = sorted(train, key=lambda r: r["rows"]) + ([large] if large else [])
    for r in every:
        p, s = r["phases"], r["search"]
        per_trial = sum(r["trial_seconds"]) / len(r["trial_seconds"])
        lines.append(
            f"| {r['rows']:,} | {s['trials']} ({s['pruned']}) | {_s(r['features']['wall'])} | "
            f"{_s(p.get('folds', float('nan')))} | {_s(p.get('search', float('nan')))} | "
            f"{_s(p.get('final_fit', float('nan')))} | {_s(r['wall'])} | {_s(r['cpu'])} | {_s(per_trial)} | "
            f"{s['rounds_trained']:,} | {r['trees']} | {_gib(r['peak_rss'])} |"
        )
    lines.append("")
    if len(train) >= 2:
        small, big = sorted(train, key=lambda r: r["rows"])[0], sorted(train, key=lambda r: r["rows"])[-1]
        lines.append(
            f"From {small['rows']:,} to {big['rows']:,} rows ({big['rows'] / small['rows']:.1f}x) the {trials}-trial "
            f"training took {big['wall'] / small['wall']:.2f}x the wall time; trial 1 (the same parameters at every "
            f"size: the same seed) {big['trial_seconds'][0] / small['trial_seconds'][0]:.2f}x. Searches differ "
            "by size in what they prune and where early stopping ends, so the totals scale less regularly than trial 1."
        )
        lines.append("")
    if estimate is not None and large is not None:
        ok = estimate["wall_default"] <= MAX_TRAINING_SECONDS
        run["verdicts"]["training"] = ok
        each = [
            f"{b['base_rows']:,} rows: x{b['k']:.1f}, ~{_min(b['wall'])} and ~{_min(b['wall_default'])}"
            for b in estimate.get("bases", [])
        ]
        spread = (
            f" From each measured size: {'; '.join(each)} (trial 1's time moves with the machine's load, and so "
            "does the factor)."
            if len(each) > 1
            else ""
        )
        lines += [
            f"**Extrapolated, not measured**: {trials} trials at {large['rows']:,} rows were not run (too long "
            f"for this run's budget); {large['trials']} trial was. Trial 1 took {estimate['k']:.2f}x as long at "
            f"{large['rows']:,} rows as at {estimate['base_rows']:,}; scaling the {estimate['base_rows']:,}-row "
            f"search and final fit by that (plus the {large['rows']:,}-row features and folds, measured) gives "
            f"~{_min(estimate['wall'])} for {trials} trials and ~{_min(estimate['wall_default'])} for "
            f"the default {default_trials} (`TuningConfig.n_trials`): "
            f"{_met(ok, TARGETS['training'] + ' (extrapolated)')}." + spread,
            "",
        ]
    elif large is not None and large["trials"] < default_trials:
        ok = large["wall"] * default_trials / large["trials"] <= MAX_TRAINING_SECONDS
        run["verdicts"]["training"] = ok
        lines += [
            f"The default search is {default_trials} trials; {large['trials']} were measured at "
            f"{large['rows']:,} rows ({_s(large['wall'])}), "
            f"~{_min(large['wall'] * default_trials / large['trials'])} scaled by trial count: "
            f"{_met(ok, TARGETS['training'] + ' (scaled)')}.",
            "",
        ]

    # drift decisions
    names = list(cases)
    lines += [
        f"### Drift at {size}: sampled ({drift['sample_rows']:,} rows a side) against unsampled",
        "",
        f"The default rule samples each side to `DriftRule.sample_rows` = {drift['sample_rows']:,} rows with "
        "`DataFrame.sample(n, random_state=0)` (`ml/drift.py`, `_sample`): the same rows on every run. Each case "
        "is compared twice on the same frames, sampled and unsampled (every row). Score: Wasserstein distance in "
        "reference standard deviations (numbers), Jensen-Shannon distance (categories); threshold 0.1; "
        "*yes*: drifted.",
        "",
        "| column | " + " | ".join(f"{n}: sampled / unsampled" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    columns = list(next(iter(cases.values()))["sampled"]["columns"])
    largest_gap = 0.0
    for column in columns:
        cells = []
        for name in names:
            s = cases[name]["sampled"]["columns"][column]
            e = cases[name].get("exact", {}).get("columns", {}).get(column)
            text = f"{s['score']:.4f} ({'yes' if s['drifted'] else 'no'})"
            if e is not None:
                text += f" / {e['score']:.4f} ({'yes' if e['drifted'] else 'no'})"
                largest_gap = max(largest_gap, abs(s["score"] - e["score"]))
            cells.append(text)
        lines.append(f"| {column} | " + " | ".join(cells) + " |")
    decisions = []
    same = True
    for name in names:
        s = cases[name]["sampled"]
        e = cases[name].get("exact")
        text = f"**{'drift' if s['decision'] else 'no drift'}**"
        if e is not None:
            text += f" / **{'drift' if e['decision'] else 'no drift'}**"
            same = (
                same
                and s["decision"] == e["decision"]
                and all(s["columns"][c]["drifted"] == e["columns"][c]["drifted"] for c in columns)
            )
        decisions.append(text)
    lines.append("| **decision** | " + " | ".join(decisions) + " |")
    times = []
    for name in names:
        s, e = cases[name]["sampled"], cases[name].get("exact")
        times.append(f"{s['wall']:.1f} s" + (f" / {e['wall']:.1f} s ({e['wall'] / s['wall']:.1f}x)" if e else ""))
    lines.append("| wall time | " + " | ".join(times) + " |")
    lines += [
        "",
        (
            f"Sampling changed no decision and no column's verdict; the largest difference between a sampled and an "
            f"unsampled score was {largest_gap:.4f}, so a sampled verdict could differ only for a column scoring "
            f"within about that of its threshold."
            if same
            else f"**Sampling changed a decision or a column's verdict** (largest score difference {largest_gap:.4f})."
        ),
        f"Evidently's import costs {_s(drift['import']['wall'])} once per process, on top of the comparison; "
        "`drift_report` runs in a step process of its own, so each drift report pays it: cold, the slowest case "
        f"took {_s(drift['import']['wall'] + worst['wall'])} (import and sampled comparison), "
        f"{'within' if drift['import']['wall'] + worst['wall'] <= MAX_DRIFT_SECONDS else 'over'} the 15 s.",
        "",
    ]

    # load, shap, ratios
    if "sqlite" in load and "postgresql" in load:
        pg = sorted(load["postgresql"], key=lambda r: r["wall"])[len(load["postgresql"]) // 2]
        lines.append(
            f"Raw load: PostgreSQL COPY loads {rates['postgresql'] / rates['sqlite']:.1f}x as many rows per second as "
            f"SQLite's executemany; the PostgreSQL server's processes spent "
            f"{pg.get('server_cpu', float('nan')):.1f} s of CPU on the median batch beside the client's "
            f"{pg['cpu']:.1f} s. All runs (wall s): "
            + "; ".join(f"{b} " + ", ".join(f"{r['wall']:.2f}" for r in load[b]) for b in ("sqlite", "postgresql"))
            + "."
        )
        lines.append("")
    small_shap, big_shap = shap["runs"][0], shap["runs"][1]
    per_row = big_shap["wall"] / big_shap["rows"]
    text = (
        f"SHAP: the {small_shap['rows']:,} rows `record_training` explains take {_s(small_shap['wall'])} "
        f"({shap['trees']} trees of depth <= {shap_depth}, the largest model above); {big_shap['rows']:,} rows "
        f"{_s(big_shap['wall'])}: {per_row * 1000:.1f} ms a row, "
        f"{per_row / (small_shap['wall'] / small_shap['rows']):.2f}x the time per row of the {small_shap['rows']:,}"
    )
    if big_shap["rows"] < 100_000:
        text += f"; 100,000 rows would take ~{per_row * 100_000 / 60:.0f} min at that rate (extrapolated, not run)"
    lines.append(text + ".")
    lines.append("")
    threads = run.get("threads")
    if threads is not None:
        smallest = min(train, key=lambda r: r["rows"])
        every, one = threads["trial_seconds"][0], smallest["trial_seconds"][0]
        text = (
            f"Threads: trial 1 at {smallest['rows']:,} rows (the same parameters) took {every:.1f} s with every core "
            f"(`nthread=0`, the pipeline's default) against {one:.1f} s with `nthread={run['nthread']}`: "
            f"{every / one:.1f}x the time"
        )
        if len(shap["runs"]) > 2:
            shap_every = shap["runs"][2]
            text += (
                f"; SHAP of {shap_every['rows']:,} rows {shap_every['wall']:.2f} s against {small_shap['wall']:.2f} s "
                f"({shap_every['wall'] / small_shap['wall']:.1f}x)"
            )
        if every > one:  # slower with more threads: contention, which the load averages show
            reading = (
                ". On this machine's two cores, shared with other work (see the load averages), XGBoost's threads "
                "synchronise within every tree, so one thread descheduled stalls the other (the likely cause; "
                "not profiled)"
            )
        else:
            reading = ". With the cores to itself, XGBoost's threads shorten the work"
        lines += [
            text + reading + ". Runs are sequential, minutes apart, under a load that moves: the ratio is indicative. "
            f"The figures above use `nthread={run['nthread']}` so that they measure the work, not the contention.",
            "",
        ]
    if "dropped" in cleaning:
        dropped = ", ".join(f"{k} {v:,}" for k, v in cleaning["dropped"].items() if v)
        lines.append(f"Cleaning kept {cleaning['rows_out']:,} of {cleaning['rows_in']:,} rows (dropped: {dropped}).")
        lines.append("")

    # targets and profiles
    lines += ["### Targets", ""]
    for key, text in TARGETS.items():
        verdict = run["verdicts"].get(key)
        lines.append(f"- {text}: " + ("not judged" if verdict is None else "met" if verdict else "**MISSED**"))
    if run["profiles"]:
        lines += [
            "",
            "Where the time goes in a missed step (py-spy, the step re-run in a fresh process; percent of the samples "
            "inside the step's function; findings only, nothing changed):",
            "",
        ]
        for name, summary in run["profiles"].items():
            lines += _profile_lines(name, summary)
    lines += [END, ""]
    return "\n".join(lines)


def render(result: dict, output: Path) -> None:
    """The section and the plot from a run's raw figures."""
    plot(result["train"], result.get("large"), result.get("estimate"), result["trials"], result["default_trials"],
         IMAGE)  # fmt: skip
    write_section(output, START, END, section(result))
    print(f"written to {output} and {IMAGE}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clean-rows", type=int, default=1_000_000)
    parser.add_argument("--load-rows", type=int, default=200_000)
    parser.add_argument("--drift-rows", type=int, default=1_000_000)
    parser.add_argument("--train-sizes", default="50000,100000", help="comma-separated training-row counts")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--train-large", type=int, default=1_000_000, help="0: none")
    parser.add_argument("--large-trials", type=int, default=1, help="trials at --train-large (default 1)")
    parser.add_argument("--nthread", type=int, default=1, help="XGBoost threads (0: every core, as the pipeline)")
    parser.add_argument("--shap-rows", type=int, default=20_000, help="rows explained (and 100,000 extrapolated)")
    parser.add_argument("--repeats", type=int, default=3, help="batches loaded per database")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--data-dir", type=Path, help="keep (and reuse) the generated data here")
    parser.add_argument("--no-profile", action="store_true", help="do not profile missed targets")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--results", type=Path, help="where the raw figures go (default: the data directory's "
                        "result.json, or bench-scale-result.json in the temporary directory)")  # fmt: skip
    parser.add_argument("--render", type=Path, help="rewrite the section and the plot from saved raw figures")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        Path(spec["result"]).write_text(json.dumps(CHILDREN[spec["step"]](spec)))
        return
    if args.render:
        render(json.loads(args.render.read_text()), args.output)
        return

    from mlops_assets.ml.training import TuningConfig

    started = time.monotonic()
    load_start = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    sizes = [int(s) for s in args.train_sizes.split(",") if s.strip()]
    largest = max([*sizes, args.train_large])
    pool_rows = max(args.drift_rows, math.ceil(largest / 0.8 / 2 * 1.03))
    temporary = None if args.data_dir else tempfile.mkdtemp(prefix="bench-scale-")
    data = args.data_dir or Path(temporary or "")
    data.mkdir(parents=True, exist_ok=True)
    try:
        base = {"dir": str(data)}
        want = {"raw_rows": max(args.clean_rows, args.load_rows), "pool_rows": pool_rows}
        marker = data / "prepared.json"
        if marker.exists() and json.loads(marker.read_text()).get("want") == want:
            prepared = json.loads(marker.read_text()) | {"reused": True}
            print(f"prepare: reusing the data in {data}", flush=True)
        else:
            prepared = run_child(base | {"step": "prepare"} | want) | {"want": want}
            marker.write_text(json.dumps(prepared))
            prepared["reused"] = False
        result: dict[str, Any] = {"trials": args.trials, "default_trials": TuningConfig.n_trials,
                                  "prepare_seconds": prepared["seconds"], "load_start": load_start,
                                  "reused": prepared["reused"], "nthread": args.nthread,
                                  "command": " ".join(["python benchmarks/bench_scale.py", *sys.argv[1:]])}  # fmt: skip
        specs: dict[str, dict] = {
            "cleaning": base | {"step": "cleaning", "rows": args.clean_rows},
            "load": base
            | {
                "step": "load",
                "rows": args.load_rows,
                "repeats": args.repeats,
                "backends": ["sqlite", "postgresql"],
                "postgres": args.postgres,
            },
            "drift": base | {"step": "drift", "rows": args.drift_rows},
        }
        for name, spec in specs.items():
            result[name] = run_child(spec)
        result["train"] = []

        def train_spec(rows: int, trials: int, save: bool = False) -> dict:
            return base | {"step": "train", "rows": rows, "trials": trials, "save": save, "nthread": args.nthread,
                           "holdout_rows": args.shap_rows}  # fmt: skip

        for rows in sizes:
            result["train"].append(run_child(train_spec(rows, args.trials, save=rows == largest)))
        if args.nthread != 0 and sizes:  # the same first trial with every core: what the threads cost here
            result["threads"] = run_child(train_spec(min(sizes), 1) | {"nthread": 0})
        if args.train_large and args.train_large not in sizes:
            result["large"] = run_child(train_spec(args.train_large, args.large_trials, save=True))
            result["estimate"] = extrapolate(result["train"], result["large"], args.trials, TuningConfig.n_trials)
        result["shap"] = run_child(base | {"step": "shap", "rows": args.shap_rows, "nthread": args.nthread})
        result["load_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        result["profiles"] = {}
        result["seconds"] = time.monotonic() - started
        result["date"] = f"{datetime.now(UTC):%Y-%m-%d %H:%M}"
        plot(result["train"], result.get("large"), result.get("estimate"), args.trials, TuningConfig.n_trials, IMAGE)
        text = section(result)  # decides the verdicts
        if not args.no_profile:
            profiles = {
                "cleaning": base | {"step": "cleaning", "rows": min(args.clean_rows, 300_000), "coerce": False},
                "load": specs["load"] | {"backends": ["postgresql"], "repeats": 1},
                "drift": specs["drift"] | {"exact": False, "cases": ["drifted (price x1.3, house_size x1.1)"]},
                "training": train_spec(min(sizes or [args.train_large]), 1),
            }
            for key, spec in profiles.items():
                if result["verdicts"].get(key) is False:
                    result["profiles"][key] = profile(spec)
            if result["profiles"]:
                result["load_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
                result["seconds"] = time.monotonic() - started
                text = section(result)
        results = args.results or (
            data / "result.json" if args.data_dir else Path(tempfile.gettempdir()) / "bench-scale-result.json"
        )
        results.write_text(json.dumps(result, default=str))
        write_section(args.output, START, END, text)
        print(f"written to {args.output} and {IMAGE}; the raw figures: {results}", flush=True)
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)


if __name__ == "__main__":
    main()
