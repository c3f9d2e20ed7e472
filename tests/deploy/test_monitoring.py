"""Alerts and dashboards as code: the rules pass `promtool check rules` and their unit tests
(alerts_test.yaml), every metric name in a rule or a panel is one that serving/ defines (or BentoML,
Prometheus and kube-state-metrics, listed below), label values exist in serving/, and the dashboards
parse and are wired to the ServiceMonitor's job."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import K8S, ROOT, by_kind, require_tool

SERVING = ROOT / "serving"
DASHBOARDS = sorted((K8S / "base" / "monitoring" / "dashboards").glob("*.json"))
RULES = K8S / "base" / "monitoring" / "prometheusrule.yaml"

#: Not serving's, not BentoML's, and deliberate: Prometheus's own `up` (is the target scraped?) and the
#: kube-state-metrics series of kube-prometheus-stack that show Dagster's run pods (one Job per run,
#: K8sRunLauncher) and serving's Deployment. Adding a name here is a review decision.
PLATFORM_METRICS = {
    "up",
    "kube_deployment_status_replicas_available",
    "kube_job_status_active",
    "kube_job_status_failed",
    "kube_job_status_succeeded",
}
#: BentoML's metrics when its source cannot be read (bentoml not installed); read from it otherwise.
BENTOML_FALLBACK = {
    "request_total",
    "request_duration_seconds",
    "request_in_progress",
    "last_request_timestamp_seconds",
    "adaptive_batch_size",
}
#: Labels whose values serving/ spells out (metrics.py ENDPOINTS, OUTCOMES; model_holder, inference_log).
CHECKED_LABELS = {"outcome", "endpoint", "reason"}

PROMQL_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "atan2",
    "inf",
    "nan",
}
SUFFIXES = {
    "Counter": ("_total", "_created"),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "Summary": ("", "_sum", "_count", "_created"),
    "Gauge": ("",),
}


def exposed_names(kind: str, name: str) -> set[str]:
    base = name.removesuffix("_total") if kind == "Counter" else name
    return {base + suffix for suffix in SUFFIXES[kind]}


def serving_metrics() -> set[str]:
    """Every series name serving/*.py defines with prometheus_client."""
    if not SERVING.is_dir():
        pytest.skip("serving/ does not exist yet")
    pattern = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"")
    names = set()
    for path in SERVING.rglob("*.py"):
        for kind, name in pattern.findall(path.read_text()):
            names |= exposed_names(kind, name)
    assert names, "no prometheus_client metric found in serving/"
    return names


def bentoml_metrics() -> set[str]:
    """BentoML's HTTP metrics (namespace bentoml_service), read from its installed source."""
    spec = importlib.util.find_spec("bentoml")
    found: dict[str, str] = {}
    if spec and spec.origin:
        site = Path(spec.origin).parents[1]
        pattern = re.compile(r"metrics_client\.(Counter|Gauge|Histogram|Summary)\(\s*namespace=[^,]+,\s*name=\"(\w+)\"")
        for path in [site / "bentoml/_internal/server/http/instruments.py", site / "_bentoml_impl/server/app.py"]:
            if path.exists():
                found |= {name: kind for kind, name in pattern.findall(path.read_text())}
    if not found:
        found = dict.fromkeys(BENTOML_FALLBACK, "Histogram") | {"request_total": "Counter"}
    names = set()
    for name, kind in found.items():
        names |= exposed_names(kind, f"bentoml_service_{name}")
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, labels and variables removed)."""
    s = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\$\{?\w+\}?", " ", s)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", s):
        before = s[match.start() - 1] if match.start() else " "
        if before.isdigit() or before == ".":
            continue  # 1e-9, 5m
        if s[match.end() :].lstrip().startswith("(") or match.group() in PROMQL_KEYWORDS:
            continue
        names.add(match.group())
    return names


def label_matchers(expr: str) -> list[tuple[str, str, str]]:
    """(label, operator, value) for every matcher in the expression."""
    return re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', expr)


def rule_groups() -> dict:
    (rule,) = [d for d in yaml.safe_load_all(RULES.read_text()) if d]
    return rule["spec"]


def rule_exprs() -> list[tuple[str, str]]:
    return [(r.get("alert") or r.get("record"), r["expr"]) for g in rule_groups()["groups"] for r in g["rules"]]


def panels(dashboard: dict):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs() -> list[tuple[str, str]]:
    exprs = []
    for path in DASHBOARDS:
        for panel in panels(json.loads(path.read_text())):
            exprs += [(f"{path.name}: {panel['title']}", t["expr"]) for t in panel.get("targets", [])]
    return exprs


def test_promtool_checks_the_rules(tmp_path):
    promtool = require_tool("promtool", "`make deploy-tools` installs it (Debian's prometheus package)")
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(rule_groups()))
    result = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_the_alerts_fire_as_specified(tmp_path):
    """promtool's rule unit tests: each alert fires on synthetic series, and only when it should."""
    promtool = require_tool("promtool", "`make deploy-tools` installs it (Debian's prometheus package)")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_groups()))
    shutil.copy(Path(__file__).parent / "alerts_test.yaml", tmp_path / "alerts_test.yaml")
    result = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test():
    tested = set(re.findall(r"alertname: (\w+)", (Path(__file__).parent / "alerts_test.yaml").read_text()))
    alerts = {name for name, _ in rule_exprs()}
    assert alerts - tested <= {"ServingUnavailable", "ServingExplainerNotLoaded"}, alerts - tested


def test_the_rules_cover_the_serving_failure_modes():
    exprs = " ".join(expr for _, expr in rule_exprs())
    for needle in [
        "up{",
        "model_loaded",
        "prediction_latency_seconds_bucket",
        "> 0.05",
        "predictions_total",
        'model_reloads_total{job="serving", outcome="failed"}',
        "inference_log_dropped_total",
    ]:
        assert needle in exprs, needle
    for name, _ in rule_exprs():
        assert name, "every rule is named"


@pytest.mark.parametrize("source", ["rules", "dashboards"])
def test_every_metric_name_is_defined(source):
    exprs = rule_exprs() if source == "rules" else dashboard_exprs()
    known = serving_metrics() | bentoml_metrics() | PLATFORM_METRICS
    assert exprs
    unknown = {(where, name) for where, expr in exprs for name in metric_names(expr) if name not in known}
    assert not unknown, f"names that serving/ does not define: {sorted(unknown)}"


@pytest.mark.parametrize("source", ["rules", "dashboards"])
def test_label_values_exist_in_serving(source):
    """outcome="failed", endpoint="predict", reason=...: the exact strings serving/ uses."""
    exprs = rule_exprs() if source == "rules" else dashboard_exprs()
    text = "\n".join(p.read_text() for p in SERVING.rglob("*.py")) if SERVING.is_dir() else ""
    if not text:
        pytest.skip("serving/ does not exist yet")
    for where, expr in exprs:
        for label, _, value in label_matchers(expr):
            if label in CHECKED_LABELS:
                for literal in value.split("|"):
                    assert f'"{literal}"' in text, f'{where}: {label}="{literal}" is not a value serving/ uses'


def test_serving_metrics_of_the_issue_are_defined():
    names = serving_metrics()
    for metric in [
        "predictions_total",
        "prediction_latency_seconds_bucket",
        "prediction_price_dollars_bucket",
        "model_loaded",
        "explainer_loaded",
        "model_info",
        "model_reloads_total",
        "inference_log_dropped_total",
    ]:
        assert metric in names, metric


def test_the_metric_name_parser():
    expr = (
        'histogram_quantile(0.99, sum by (le, endpoint) (rate(prediction_latency_seconds_bucket{job="serving", '
        'endpoint="predict"}[$__rate_interval]))) / clamp_min(sum(rate(x_total[5m] offset 1h)), 1e-9) or vector(0)'
    )
    assert metric_names(expr) == {"prediction_latency_seconds_bucket", "x_total"}
    assert metric_names('absent(up{job="serving"}) and on (pod) model_loaded == 1') == {"up", "model_loaded"}


def test_dashboards_parse_and_are_consistent():
    assert {p.stem for p in DASHBOARDS} == {"serving", "pipeline"}
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] not in uids
        uids.add(dashboard["uid"])
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["query"] == "prometheus"
        ids = [p["id"] for p in panels(dashboard)]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in panels(dashboard):
            assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] == "${datasource}"
                assert 'job="serving"' in target["expr"] or "kube_" in target["expr"], target["expr"]


def test_the_serving_dashboard_shows_traffic_latency_prices_and_version():
    exprs = " ".join(expr for where, expr in dashboard_exprs() if where.startswith("serving.json"))
    for needle in [
        "predictions_total",
        "prediction_latency_seconds_bucket",
        "prediction_price_dollars_bucket",
        "model_info",
        "model_loaded",
        "bentoml_service_request_total",
    ]:
        assert needle in exprs, needle


def test_the_service_monitor_scrapes_every_serving_pod(rendered):
    monitor = by_kind(rendered, "ServiceMonitor")["serving"]
    services = [
        s
        for s in by_kind(rendered, "Service").values()
        if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]
    assert [s["metadata"]["name"] for s in services] == ["serving-metrics"]
    (service,) = services
    assert service["spec"]["publishNotReadyAddresses"] is True
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    # job="serving", as the rules and panels select.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "serving"
