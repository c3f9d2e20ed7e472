"""The whole pipeline at full data scale: the generator's sequence sized to ~2.2M raw rows (the real file's size),
replayed batch by batch as `make demo` runs it, on the embedded default (SQLite) and on PostgreSQL:

    python benchmarks/bench_replay.py [--rows 2200000] [--batches 20] [--trials 1] [--backends sqlite,postgresql]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres] [--work-dir DIR] [--output docs/benchmarks.md]
        [--image docs/images/bench-replay.png] [--render RESULTS.json]

Each backend replays in a fresh Python process of its own, on a platform of its own (a temporary MLOPS_HOME and
DAGSTER_HOME; for PostgreSQL a database of its own, dropped at the end): the ingestion sensor asks for the next
batch, `ingest_job` runs (raw load, cleaning, scoring, sales, live quality, drift report) and the drift sensor
requests `train_job` (candidate, promotion) only when the report says so - the same `Loop` as `make demo`, with the
product's in-process executor, so every step runs in that one process.

Per step (from the run's step stats in the Dagster instance): wall time; CPU time of the process (every thread),
sampled every 0.1 s from /proc and read at the step's start and end; the process's resident peak during the step
(the same samples); for PostgreSQL the server processes' CPU beside it. Training runs `--trials` Optuna trials
(default 1: 20 default searches of up to 1M rows would take hours; the default search's cost at 1M rows is
bench_scale's). The figures are saved after each backend (`--render WORK_DIR/result.json` writes the section from
them), and a backend that fails is reported with the batches it finished. Only the replay's own settings reach the
child: the caller's MLOPS_*, MLFLOW_* and DAGSTER_* variables are dropped. Writes the "Full replay" section of
docs/benchmarks.md and docs/images/bench-replay.png.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_scale import _postgres_cpu, _versions  # noqa: E402
from benchmarks.report import machine, write_section  # noqa: E402

START = "<!-- replay-benchmark:start -->"
END = "<!-- replay-benchmark:end -->"
IMAGE = ROOT / "docs" / "images" / "bench-replay.png"
DATABASE = "mlops_bench_replay"
GIB = 1024**3
SAMPLE_SECONDS = 0.1
#: The ingest steps whose cost per row must not grow with the batch index, and the drift report.
FLAT_STEPS = ("raw_listings", "clean_listings", "listing_scores", "sale_outcomes", "live_performance", "drift_report")
#: Flat: the mean cost per raw row of the last third of the batches within this factor of the first third's
#: (batch 1 left out: no champion yet, so nothing is scored or compared).
FLAT_FACTOR = 1.25
#: ... or every one of the last third's runs of the step took under this (seconds).
SMALL_SECONDS = 1.0
MAX_RSS = 4 * GIB


# --- measuring, in the replay's process ------------------------------------------------------------------------------


class Sampler(threading.Thread):
    """The process's CPU seconds and RSS (and the PostgreSQL server's CPU) every SAMPLE_SECONDS, with wall times."""

    def __init__(self, postgres: bool) -> None:
        super().__init__(daemon=True)
        self.postgres = postgres
        self.samples: list[tuple[float, float, int, float]] = []
        self._stop = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK")

    def _sample(self) -> tuple[float, float, int, float]:
        fields = Path("/proc/self/stat").read_text().rpartition(")")[2].split()
        cpu = (int(fields[11]) + int(fields[12])) / self._tick
        rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        return time.time(), cpu, rss, _postgres_cpu() if self.postgres else float("nan")

    def run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.samples.append(self._sample())

    def stop(self) -> None:
        self._stop.set()

    def window(self, start: float, end: float) -> dict[str, float]:
        """CPU (process, server) between two wall times and the RSS peak in between."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        before = [s for s in self.samples if s[0] <= start][-1:] or self.samples[:1]
        after = [s for s in self.samples if s[0] >= end][:1] or self.samples[-1:]
        edge = before + inside + after
        return {
            "cpu": after[0][1] - before[0][1],
            "server_cpu": after[0][3] - before[0][3],
            "peak_rss": max(s[2] for s in edge),
        }


def _steps(instance, run_id: str, sampler: Sampler) -> dict[str, dict[str, float]]:
    """Every step of a run: wall time from the instance's step stats, CPU and RSS from the samples."""
    time.sleep(2 * SAMPLE_SECONDS)  # a sample after the last step's end
    out = {}
    for stat in instance.get_run_step_stats(run_id):
        if stat.start_time is None or stat.end_time is None:
            continue
        out[stat.step_key] = {"wall": stat.end_time - stat.start_time, **sampler.window(stat.start_time, stat.end_time)}
    return out


def _search(metadata: dict, name: str) -> int | None:
    found = re.search(rf"^\| {name} \| ([\d,]+) \|$", str(metadata.get("search", "")), flags=re.MULTILINE)
    return int(found.group(1).replace(",", "")) if found else None


def child_replay(spec: dict) -> None:
    """One backend's replay; its figures go to spec["result"] after every batch."""
    home = Path(spec["dir"])
    for name in [n for n in os.environ if n.startswith(("MLOPS_", "MLFLOW_", "DAGSTER_"))]:
        del os.environ[name]  # a platform of its own: never a registry, warehouse or setting of the caller's
    os.environ |= {
        "MLOPS_HOME": str(home / "mlops"),
        "DAGSTER_HOME": str(home / "dagster"),
        "MLOPS_SIM_BATCHES": str(spec["batches"]),
        "MLOPS_SIM_MIN_ROWS": str(spec["min_rows"]),
        "MLOPS_SIM_MAX_ROWS": str(spec["max_rows"]),
        "MLOPS_TRAIN_TRIALS": str(spec["trials"]),
        "MLOPS_TRAIN_WINDOW_ROWS": str(spec["window_rows"]),
        "MLFLOW_LOGGING_LEVEL": "WARNING",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    if spec.get("database_url"):
        os.environ["MLOPS_DATABASE_URL"] = spec["database_url"]
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True)
    shutil.copy(ROOT / "config" / "dagster" / "sqlite.yaml", Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml")

    import logging

    from dagster import DagsterInstance

    from mlops_assets.core.contracts import DriftDecision, Meta
    from mlops_assets.demo import Loop, _meta, failure_reason
    from mlops_assets.sensors import drift_sensor, ingestion_sensor
    from mlops_assets.settings import Settings

    logging.disable(logging.WARNING)
    sampler = Sampler(postgres=bool(spec.get("database_url")))
    sampler.start()
    started = time.time()
    loop = Loop(DagsterInstance.get(), Settings.from_env())
    out: dict[str, Any] = {"backend": spec["backend"], "spec": spec, "batches": [], "peak_rss": 0,
                           "setup_seconds": time.time() - started}  # fmt: skip
    while True:
        requests, skip = loop.tick(ingestion_sensor)
        if not requests:
            out["end"] = skip
            break
        key = requests[0].partition_key or ""
        ingest = loop.execute("ingest_job", requests[0])
        if not ingest.success:
            raise RuntimeError(f"batch {key}: {failure_reason(ingest)}")
        raw, clean, drift = (_meta(ingest, n) for n in ("raw_listings", "clean_listings", "drift_report"))
        if not drift:
            out["end"] = loop.tick(ingestion_sensor)[1]
            break
        batch: dict[str, Any] = {
            "batch": key,
            "raw_rows": raw.get("rows"),
            "clean_rows": clean.get("rows_out"),
            "decision": DriftDecision.parse(drift[Meta.DECISION]).name,
            "reference_rows": drift.get("rows_reference"),
            "steps": _steps(loop.instance, ingest.run_id, sampler),
        }
        train_requests, _ = loop.tick(drift_sensor)
        if train_requests:
            train = loop.execute("train_job", train_requests[0])
            if not train.success:
                raise RuntimeError(f"batch {key}: training failed: {failure_reason(train)}")
            candidate, verdict = _meta(train, "candidate_model"), _meta(train, "champion_model")
            batch["training"] = {
                "version": candidate.get("model_version"),
                "rows": candidate.get("training_rows"),
                "trials": _search(candidate, "trials"),
                "pruned": _search(candidate, "pruned"),
                "r2_log": candidate.get("r2_log"),
                "verdict": verdict.get("verdict"),
                "window": str(candidate.get("training_window", "")).split(":", 1)[0],
            }
            batch["steps"] |= _steps(loop.instance, train.run_id, sampler)
        batch["elapsed"] = time.time() - started
        out["batches"].append(batch)
        out["seconds"] = time.time() - started
        out["peak_rss"] = max(s[2] for s in sampler.samples)
        Path(spec["result"]).write_text(json.dumps(out, default=str))
        step = batch["steps"]
        trained = f", trained v{batch['training']['version']} on {batch['training']['rows']:,} rows" if (
            "training" in batch) else ""  # fmt: skip
        print(f"  {spec['backend']} {key}: {batch['raw_rows']:,} raw, {batch['clean_rows']:,} clean, "
              f"ingest {sum(step[s]['wall'] for s in FLAT_STEPS if s in step):.1f} s{trained} "
              f"({out['seconds'] / 60:.1f} min)", flush=True)  # fmt: skip
    sampler.stop()
    out["seconds"] = time.time() - started
    Path(spec["result"]).write_text(json.dumps(out, default=str))


# --- the run ---------------------------------------------------------------------------------------------------------


def replay(backend: str, args: argparse.Namespace, work: Path) -> dict:
    """One backend in a fresh process; a fresh database for PostgreSQL."""
    import sqlalchemy as sa

    home = work / backend
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    per_batch = args.rows / args.batches / 1.15  # past the first batches ~15-20% of a batch are earlier listings' sales
    spec: dict[str, Any] = {
        "step": "replay",
        "backend": backend,
        "dir": str(home),
        "result": str(work / f"replay-{backend}.json"),
        "batches": args.batches,
        "min_rows": int(per_batch * 0.8),
        "max_rows": int(per_batch * 1.2),
        "trials": args.trials,
        "window_rows": 1_000_000,  # MLOPS_TRAIN_WINDOW_ROWS's default: the caller's value is not passed on
    }
    admin = None
    if backend == "postgresql":
        admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{DATABASE}"'))
            connection.execute(sa.text(f'CREATE DATABASE "{DATABASE}"'))
        spec["database_url"] = sa.engine.make_url(args.postgres).set(database=DATABASE).render_as_string(False)
    print(f"{backend}: replaying {args.batches} batches of {spec['min_rows']:,}-{spec['max_rows']:,} new listings",
          flush=True)  # fmt: skip
    try:
        command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
        failed = subprocess.run(command).returncode  # noqa: S603 (our own script)
    finally:
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{DATABASE}"'))
            admin.dispose()
        shutil.rmtree(home, ignore_errors=True)
    result = Path(spec["result"])
    out = json.loads(result.read_text()) if result.exists() else {"backend": backend, "batches": [], "peak_rss": 0}
    if failed:  # what it measured until then is still reported, and said to be incomplete
        out["end"] = f"the replay stopped (exit {failed}) after {len(out['batches'])} batches; see its output above"
    return out | {"spec": spec}


# --- the figures -----------------------------------------------------------------------------------------------------


def per_row_us(batch: dict, step: str) -> float | None:
    """A step's wall time per raw row of its batch, in microseconds."""
    figures = batch["steps"].get(step)
    return None if figures is None or not batch["raw_rows"] else figures["wall"] / batch["raw_rows"] * 1e6


def flatness(batches: list[dict], step: str) -> dict | None:
    """The last third's mean cost per row against the first third's (batch 1 left out)."""
    values = [v for b in batches[1:] if (v := per_row_us(b, step)) is not None]
    if len(values) < 6:
        return None
    third = len(values) // 3
    first, last = sum(values[:third]) / third, sum(values[-third:]) / third
    walls = [b["steps"][step]["wall"] for b in batches[1:] if step in b["steps"]]
    small = max(walls[-third:]) < SMALL_SECONDS  # a step this short is flat whatever its ratio: noise, not growth
    return {"first": first, "last": last, "ratio": last / first, "flat": last / first <= FLAT_FACTOR or small,
            "small": small}  # fmt: skip


def window_full(batches: list[dict]) -> list[dict]:
    """The batches judged against a full training window: reference rows within 10% of the largest reference."""
    largest = max((b.get("reference_rows") or 0 for b in batches), default=0)
    return [b for b in batches if largest and (b.get("reference_rows") or 0) >= 0.9 * largest]


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (ingest, training, memory) = plt.subplots(1, 3, figsize=(15, 4.4))
    styles = {"sqlite": "-", "postgresql": "--"}
    for result in results:
        batches, style = result["batches"], styles.get(result["backend"], ":")
        index = [int(b["batch"]) for b in batches]
        for color, step in enumerate(("raw_listings", "clean_listings", "drift_report", "sale_outcomes")):
            values = [per_row_us(b, step) for b in batches]
            ingest.plot(index, values, style, color=f"C{color}", marker="o", ms=3,
                        label=f"{step} ({result['backend']})")  # fmt: skip
        trained = [b for b in batches if "training" in b and "candidate_model" in b["steps"]]
        rows = [b["training"]["rows"] for b in trained]
        seconds = [b["steps"]["candidate_model"]["wall"] for b in trained]
        training.plot(rows, seconds, style, marker="o", label=f"candidate_model ({result['backend']})")
        peaks = [max(s["peak_rss"] for s in b["steps"].values()) / GIB for b in batches]
        memory.plot(index, peaks, style, marker="o", ms=3, label=result["backend"])
    ingest.set(xlabel="batch", ylabel="wall µs per raw row", title="per-batch cost by batch index")
    training.set(xlabel="training rows", ylabel="wall s", title=f"training ({results[0]['spec']['trials']} trial(s))")
    training.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1e6:g}M"))
    memory.axhline(MAX_RSS / GIB, color="C3", ls=":", label="target: 4 GiB")
    memory.set(xlabel="batch", ylabel="GiB", title="peak RSS of the replay's process, by batch")
    for axis in (ingest, training, memory):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    ingest.set_ylim(bottom=0)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _s(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _total(batch: dict, steps: tuple[str, ...], field: str = "wall") -> float:
    return sum(batch["steps"][s][field] for s in steps if s in batch["steps"])


def backend_table(result: dict) -> list[str]:
    lines = [
        "| batch | raw rows | clean rows | raw load | cleaning | scoring + sales + live | drift (reference rows) "
        "| training rows (window) | candidate | promotion | ingest CPU | server CPU | peak RSS |",
        "|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for b in result["batches"]:
        steps, training = b["steps"], b.get("training")
        wall = {k: v["wall"] for k, v in steps.items()}
        drift = f"{_s(wall.get('drift_report'))} ({b['reference_rows']:,})" if b.get("reference_rows") else (
            f"{_s(wall.get('drift_report'))} (baseline)")  # fmt: skip
        trained = f"{training['rows']:,} ({training['window']}; {training['trials']} trial(s))" if training else (
            f"- ({b['decision'].lower().replace('_', ' ')})")  # fmt: skip
        server = _total(b, FLAT_STEPS, "server_cpu")
        lines.append(
            f"| {b['batch']} | {b['raw_rows']:,} | {b['clean_rows']:,} | {_s(wall.get('raw_listings'))} "
            f"| {_s(wall.get('clean_listings'))} "
            f"| {_s(sum(wall.get(s, 0) for s in ('listing_scores', 'sale_outcomes', 'live_performance')))} "
            f"| {drift} | {trained} | {_s(wall.get('candidate_model'))} | {_s(wall.get('champion_model'))} "
            f"| {_s(_total(b, FLAT_STEPS, 'cpu'))} | {'' if server != server else _s(server)} "
            f"| {max(s['peak_rss'] for s in steps.values()) / GIB:.2f} GiB |"
        )
    return lines


def section(results: list[dict], run: dict, image: str = IMAGE.name) -> str:
    lines = [
        START,
        "## Full replay (`python benchmarks/bench_replay.py`)",
        "",
        f"Measured {run['date']} UTC by `benchmarks/bench_replay.py` in {run['seconds'] / 60:.0f} min; rerun to "
        "refresh.",
        "",
        *[f"- **{k}**: {v}" for k, v in run["machine"].items()],
        f"- **load average at end**: {run['load_end']}",
        f"- **versions**: {_versions()}",
        f"- **command**: `{run['command']}`",
        f"- **data**: the generator's sequence (seed 42), {run['batches']} batches of "
        f"{results[0]['spec']['min_rows']:,}-{results[0]['spec']['max_rows']:,} new listings plus the sales of "
        "earlier ones, through the in-process simulator; every batch goes the way `make demo` takes it",
        f"- **training**: {run['trials']} Optuna trial(s) per training (the default search's cost at 1M rows is in "
        "*Full data scale*), XGBoost on every core; the window `MLOPS_TRAIN_WINDOW_ROWS` = "
        f"{results[0]['spec'].get('window_rows', 1_000_000):,} clean rows",
        "- **figures**: seconds of wall time per step from the run's step stats; *ingest CPU*: the process's CPU over "
        "the ingest steps, *server CPU*: the PostgreSQL server processes' beside it (those alive at both reads: a "
        "backend that exits within a step is not counted); *peak RSS*: the replay process's resident peak during the "
        f"batch's steps (sampled every {SAMPLE_SECONDS} s; one process for the whole replay, as `make demo`, so it "
        "includes what earlier batches left, among it the in-process simulator's cache of the batches it generated)",
        "",
        f"![per-batch cost, training time and memory](images/{image})",
        "",
    ]
    for result in results:
        raw = sum(b["raw_rows"] for b in result["batches"])
        trained = [b for b in result["batches"] if "training" in b]
        lines += [
            f"### {result['backend']}: {len(result['batches'])} batches, {raw:,} raw rows, "
            f"{len(trained)} trainings, {result['seconds'] / 60:.1f} min in all",
            "",
            *backend_table(result),
            "",
            f"Peak RSS of the whole replay: {result['peak_rss'] / GIB:.2f} GiB "
            f"({'met' if result['peak_rss'] <= MAX_RSS else '**MISSED**'}: <= 4 GiB). The source's last word: "
            f"{result.get('end', 'the run did not finish')}.",
            "",
            f"Cost per raw row, the last third of batches 2-{len(result['batches'])} against the first third "
            f"(flat: at most {FLAT_FACTOR}x, or every run of the last third under {SMALL_SECONDS:g} s):",
            "",
        ]
        for step in FLAT_STEPS:
            flat = flatness(result["batches"], step)
            if flat is not None:
                verdict = "flat" if flat["flat"] else "**grows**"
                verdict += f" (each run under {SMALL_SECONDS:g} s)" if flat["small"] else ""
                lines.append(f"- `{step}`: {flat['first']:.1f} -> {flat['last']:.1f} µs a row, {flat['ratio']:.2f}x: "
                             f"{verdict}")  # fmt: skip
        full = window_full(result["batches"])
        if len(full) >= 6:
            span = f"{full[0]['batch']}-{full[-1]['batch']}"
            lines += ["", f"Once the champion's training window is full (batches {span}, "
                      f"reference rows {min(b['reference_rows'] for b in full):,}-"
                      f"{max(b['reference_rows'] for b in full):,}), by the same rule:", ""]  # fmt: skip
            for step in ("drift_report", "champion_model"):
                flat = flatness([full[0], *full], step)  # flatness leaves the first out
                if flat is not None:
                    verdict = "flat" if flat["flat"] else "**grows**"
                    lines.append(f"- `{step}`: {flat['first']:.1f} -> {flat['last']:.1f} µs a row, "
                                 f"{flat['ratio']:.2f}x: {verdict}")  # fmt: skip
        lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


def render(results: list[dict], run: dict, output: Path, image: Path = IMAGE) -> None:
    plot(results, image)
    write_section(output, START, END, section(results, run, image.name))
    print(f"written to {output} and {image}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_200_000, help="raw rows in all (about)")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--trials", type=int, default=1, help="Optuna trials per training")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--work-dir", type=Path, help="the platforms and the raw figures (default: temporary)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--image", type=Path, default=IMAGE, help="the plot (PNG)")
    parser.add_argument("--render", type=Path, help="rewrite the section and the plot from saved figures")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_replay(json.loads(args.child))
        return
    if args.render:
        saved = json.loads(args.render.read_text())
        render(saved["results"], saved["run"], args.output, args.image)
        return
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-replay-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    run: dict[str, Any] = {
        "machine": machine(),
        "batches": args.batches,
        "trials": args.trials,
        "command": " ".join(["python benchmarks/bench_replay.py", *sys.argv[1:]]),
    }
    saved, results = work / "result.json", []
    for backend in args.backends.split(","):
        results.append(replay(backend, args, work))
        run |= {
            "seconds": time.monotonic() - started,
            "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
            "load_end": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        }
        saved.write_text(json.dumps({"results": results, "run": run}, default=str))  # --render takes it
    print(f"raw figures: {saved}", flush=True)
    render(results, run, args.output, args.image)
    stopped = [r["backend"] for r in results if "stopped" in str(r.get("end", ""))]
    if stopped:
        raise SystemExit(f"the replay stopped on {', '.join(stopped)}: the section reports the batches it finished")


if __name__ == "__main__":
    main()
