"""Shared parts of the deployment checks: the rendered manifests, the Secrets (rendered from the
committed *.env.example files), the Helm values and the Argo CD Applications, all read from the tree.

kubectl (with its built-in kustomize) and promtool are tools, not Python packages: without them their
tests are skipped with the reason, or fail when MLOPS_REQUIRE_SERVICES=1 (as in CI). `make deploy-tools`
installs promtool; kubectl is expected on the machine.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import missing_service

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAY = K8S / "overlays" / "k3d"
ARGOCD = ROOT / "argocd"
NAMESPACE = "mlops"

#: Objects without a namespace.
CLUSTER_SCOPED = {
    "Namespace",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
    "IngressClass",
    "PriorityClass",
}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}


def require_tool(name: str, why: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing_service(f"{name} is not installed ({why})")
    return path


def kustomize(path: Path) -> list[dict]:
    """`kubectl kustomize PATH`, parsed."""
    kubectl = require_tool("kubectl", "kubectl kustomize renders the manifests")
    result = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"kubectl kustomize {path.relative_to(ROOT)} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def load_yaml(path: Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def load_all_yaml(path: Path) -> list[dict]:
    with open(path) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def pod_spec(obj: dict) -> dict | None:
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    if obj["kind"] in WORKLOADS:
        return spec["template"]["spec"]
    return None


def containers(obj: dict, init: bool = True) -> Iterator[tuple[str, dict]]:
    """(kind, container) for every container of a workload; kind is 'container' or 'initContainer'."""
    spec = pod_spec(obj)
    if spec is None:
        return
    for container in spec.get("containers", []):
        yield "container", container
    if init:
        for container in spec.get("initContainers", []):
            yield "initContainer", container


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def wave(obj: dict) -> int:
    return int(obj["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


@pytest.fixture(scope="session")
def rendered() -> list[dict]:
    """The whole k3d overlay."""
    return kustomize(OVERLAY)


@pytest.fixture(scope="session")
def rendered_parts() -> dict[str, list[dict]]:
    """The two overlays Argo CD deploys separately (apps mlops-infra and mlops-apps)."""
    return {part: kustomize(OVERLAY / part) for part in ("infra", "apps")}


@pytest.fixture(scope="session")
def secrets(tmp_path_factory) -> dict[tuple[str, str], dict]:
    """k8s/secrets rendered from the committed *.env.example files: {(namespace, name): Secret}."""
    copy = tmp_path_factory.mktemp("secrets") / "secrets"
    shutil.copytree(K8S / "secrets", copy, ignore=shutil.ignore_patterns("*.env"))
    for example in copy.glob("*.env.example"):
        shutil.copy(example, copy / example.name.removesuffix(".example"))
    return {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in kustomize(copy) if s["kind"] == "Secret"}


@pytest.fixture(scope="session")
def versions() -> dict[str, str]:
    return read_env_file(ROOT / "deploy" / "versions.env")


@pytest.fixture(scope="session")
def dagster_values() -> dict:
    return load_yaml(K8S / "dagster" / "values.yaml")


@pytest.fixture(scope="session")
def monitoring_values() -> dict:
    return load_yaml(K8S / "monitoring" / "values.yaml")


@pytest.fixture(scope="session")
def applications() -> dict[str, dict]:
    """argocd/root.yaml and argocd/apps/*.yaml, by kind/name."""
    docs = load_all_yaml(ARGOCD / "root.yaml")
    for path in sorted((ARGOCD / "apps").glob("*.yaml")):
        docs += load_all_yaml(path)
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}
