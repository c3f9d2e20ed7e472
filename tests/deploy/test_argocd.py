"""The app-of-apps: the root points at argocd/apps/, every Application points at a path (or values
file) that exists in this repository, charts are pinned, sync is automated, and the sync waves order
monitoring -> infra -> Dagster -> apps."""

from __future__ import annotations

import re

import pytest

from tests.deploy.conftest import ARGOCD, ROOT, kustomize, load_yaml
from tests.deploy.test_helm_values import pinned

OUR_REPO = load_yaml(ARGOCD / "root.yaml")["spec"]["source"]["repoURL"]
EXPECTED = {"mlops-infra", "dagster", "mlops-apps", "monitoring"}


def apps(applications) -> dict[str, dict]:
    return {key.split("/", 1)[1]: a for key, a in applications.items() if key.startswith("Application/")}


def sources(app: dict) -> list[dict]:
    spec = app["spec"]
    return spec.get("sources") or [spec["source"]]


def test_the_root_app_points_at_argocd_apps(applications):
    root = applications["Application/mlops-root"]
    assert root["metadata"]["namespace"] == "argocd"
    assert root["spec"]["source"]["path"] == "argocd/apps"
    assert (ROOT / "argocd" / "apps").is_dir()
    assert set(apps(applications)) == EXPECTED | {"mlops-root"}


def test_every_repository_path_exists_and_renders(applications):
    rendered_paths = []
    for name, app in apps(applications).items():
        for source in sources(app):
            if source["repoURL"] != OUR_REPO or "path" not in source:
                continue
            path = ROOT / source["path"]
            assert path.is_dir(), f"{name}: {source['path']} does not exist"
            if (path / "kustomization.yaml").exists():
                rendered_paths.append(path)
            else:
                assert list(path.glob("*.yaml")), f"{name}: no manifests in {source['path']}"
    assert rendered_paths
    for path in rendered_paths:
        assert kustomize(path)


def test_every_values_file_exists(applications):
    checked = 0
    for name, app in apps(applications).items():
        refs = {s["ref"]: s for s in sources(app) if "ref" in s}
        for source in sources(app):
            for values_file in source.get("helm", {}).get("valueFiles", []):
                ref, _, path = values_file.partition("/")
                assert ref.startswith("$") and ref[1:] in refs, f"{name}: {values_file}"
                assert refs[ref[1:]]["repoURL"] == OUR_REPO
                assert (ROOT / path).is_file(), f"{name}: {path} does not exist"
                checked += 1
    assert checked == 2


def test_our_repository_and_revision_are_the_same_everywhere(applications):
    ours = [s for app in apps(applications).values() for s in sources(app) if s["repoURL"] == OUR_REPO]
    assert len(ours) == 5
    assert len({s["targetRevision"] for s in ours}) == 1
    others = {s["repoURL"] for app in apps(applications).values() for s in sources(app)} - {OUR_REPO}
    assert others == {"https://dagster-io.github.io/helm", "https://prometheus-community.github.io/helm-charts"}


def test_charts_are_pinned(applications):
    charts = {s["chart"]: s for app in apps(applications).values() for s in sources(app) if "chart" in s}
    assert set(charts) == {"dagster", "kube-prometheus-stack"}
    for chart, source in charts.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", source["targetRevision"]), f"{chart}: {source['targetRevision']}"
    # The Dagster chart is versioned with dagster: the same version as the code location's.
    assert charts["dagster"]["targetRevision"] == pinned("dagster")
    assert charts["dagster"]["helm"]["releaseName"] == "dagster"


def test_sync_is_automated_with_prune_and_self_heal(applications):
    for name, app in apps(applications).items():
        automated = app["spec"]["syncPolicy"]["automated"]
        assert automated == {"prune": True, "selfHeal": True}, name


def test_sync_waves_order_the_components(applications):
    wave = {
        name: int(a["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", 0))
        for name, a in apps(applications).items()
        if name != "mlops-root"
    }
    # CRDs for the ServiceMonitor/PrometheusRule, then PostgreSQL/SeaweedFS/MLflow, then Dagster, then
    # serving (ready only after Dagster has promoted a model, so it must not come before Dagster).
    assert wave["monitoring"] < wave["mlops-infra"] < wave["dagster"] < wave["mlops-apps"]
    project = applications["AppProject/mlops"]
    assert int(project["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < min(wave.values())


def test_the_project_allows_exactly_what_the_apps_use(applications):
    project = applications["AppProject/mlops"]["spec"]
    children = {n: a for n, a in apps(applications).items() if n != "mlops-root"}
    repos = {s["repoURL"] for app in children.values() for s in sources(app)}
    assert repos == set(project["sourceRepos"])
    allowed = {d["namespace"] for d in project["destinations"]}
    for name, app in children.items():
        assert app["spec"]["project"] == "mlops", name
        assert app["spec"]["destination"]["namespace"] in allowed, name


@pytest.mark.parametrize("name", ["monitoring"])
def test_the_monitoring_stack_is_applied_server_side(applications, name):
    """kube-prometheus-stack's CRDs exceed client-side apply's annotation limit."""
    assert "ServerSideApply=true" in applications[f"Application/{name}"]["spec"]["syncPolicy"]["syncOptions"]


def test_the_application_health_check_is_provided():
    patch = load_yaml(ARGOCD / "bootstrap" / "argocd-cm-patch.yaml")
    assert (
        "hs.status = obj.status.health.status"
        in patch["data"]["resource.customizations.health.argoproj.io_Application"]
    )
    assert "argocd/bootstrap/argocd-cm-patch.yaml" in (ROOT / "deploy" / "k3d.sh").read_text()
