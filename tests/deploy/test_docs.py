"""What the README and the manifests' comments say about deploying is what works."""

from __future__ import annotations

import re

from tests.deploy.conftest import ROOT, load_yaml

DOCS = [ROOT / "README.md", *sorted((ROOT / "k8s").rglob("*.yaml")), *sorted((ROOT / "deploy").iterdir())]


def test_applying_the_overlay_without_argo_cd_says_what_it_needs():
    """`kubectl apply -k k8s/overlays/k3d` needs the prometheus-operator CRDs first, and has no Dagster."""
    mentions = 0
    for path in DOCS:
        text = path.read_text()
        if "apply -k k8s/overlays/k3d" not in text:
            continue
        mentions += 1
        where = path.relative_to(ROOT)
        assert "prometheus-operator CRDs" in text or "prometheus-operator's" in text, where
        assert re.search(r"helm install kube-prometheus-stack .*?--version", text, re.DOTALL), where
        assert re.search(r"helm install dagster .*?--version", text, re.DOTALL), where
        assert "kubectl apply -k k8s/overlays/k3d/infra" in text and "kubectl apply -k k8s/overlays/k3d/apps" in text
        assert text.index("helm install kube-prometheus-stack") < text.index("kubectl apply -k k8s/overlays/k3d/apps")
    assert mentions >= 2


def test_the_helm_versions_in_the_docs_are_the_apps(applications):
    charts = {
        s["chart"]: s["targetRevision"]
        for key, app in applications.items()
        if key.startswith("Application/")
        for s in app["spec"].get("sources", [])
        if "chart" in s
    }
    found = 0
    for path in DOCS:
        text = path.read_text()
        for chart, version in re.findall(r"helm install \S+ (\S+) --repo \S+ \\?\s*#?\s*--version (\S+)", text):
            assert charts[chart] == version, (path.relative_to(ROOT), chart, version)
            found += 1
    assert found >= 4


def test_the_readme_names_the_k3d_and_k3s_the_script_uses(versions):
    text = (ROOT / "README.md").read_text()
    assert f"k3d](https://k3d.io) >= {versions['K3D_MIN_VERSION'].removesuffix('.0')}" in text
    assert f"--image {versions['K3S_IMAGE']}" in text
    assert load_yaml(ROOT / "argocd" / "root.yaml")
