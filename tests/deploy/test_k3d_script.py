"""deploy/k3d.sh as a new user meets it: the k3d and k3s it needs, `repo URL` on any Git host (no cluster
needed), and the URLs it prints."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy import schema_check
from tests.deploy.conftest import ARGOCD, ROOT, load_all_yaml
from tests.deploy.test_ui_access import run_script

SCRIPT = ROOT / "deploy" / "k3d.sh"


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


# --- 1. k3d >= 5.7 and a pinned k3s ---------------------------------------------------------------------------


def test_the_k3s_image_is_pinned_to_a_validated_kubernetes(versions):
    match = re.fullmatch(r"rancher/k3s:v(\d+)\.(\d+)\.(\d+)-k3s\d+", versions["K3S_IMAGE"])
    assert match, versions["K3S_IMAGE"]
    minor = f"{match.group(1)}.{match.group(2)}"
    oldest, newest = schema_check.KUBERNETES_VERSIONS
    # kube-prometheus-stack needs >= 1.25; the manifests are validated up to the newest version.
    assert version_tuple(oldest) <= version_tuple(minor) <= version_tuple(newest)


def test_the_cluster_is_created_with_the_pinned_k3s(tmp_path, versions):
    log = tmp_path / "log"
    result = run_script("cluster_up", env={"LOG": str(log)})
    assert result.returncode == 0, result.stderr
    (create,) = [c for c in log.read_text().splitlines() if c.startswith("k3d cluster create")]
    assert f"--image {versions['K3S_IMAGE']}" in create


def test_the_minimum_k3d_is_5_7(versions):
    assert version_tuple(versions["K3D_MIN_VERSION"]) >= (5, 7, 0)


@pytest.mark.parametrize(
    ("output", "ok"),
    [
        ("k3d version v5.8.3\nk3s version v1.31.5-k3s1 (default)", True),
        ("k3d version v5.7.0\nk3s version v1.30.4-k3s1 (default)", True),
        ("k3d version v5.10.1", True),
        ("k3d version v5.6.3\nk3s version v1.28.8-k3s1 (default)", False),
        ("k3d version v5.0.0\nk3s version v1.21.5-k3s2 (default)", False),
        ("", False),
    ],
)
def test_the_script_refuses_an_old_k3d(tmp_path, output, ok):
    body = f"k3d() {{ printf '%s\\n' {shlex.quote(output)}; }}\ncheck_k3d_version"
    result = run_script(body, env={"LOG": str(tmp_path / "log")})
    assert (result.returncode == 0) == ok, result.stderr
    if not ok:
        assert "k3d >= 5.7.0 is needed" in result.stderr


def test_up_checks_k3d_before_creating_anything():
    text = SCRIPT.read_text()
    up = text[text.index("    up)") : text.index(";;", text.index("    up)"))]
    assert up.index("check_k3d_version") < up.index("registry_up")


def test_node_exporter_does_not_mount_the_nodes_root(monitoring_values):
    """The hostPath `/` with HostToContainer propagation needs a shared `/`, which old k3d nodes lack."""
    assert monitoring_values["prometheus-node-exporter"]["hostRootFsMount"]["enabled"] is False


# --- 3. `deploy/k3d.sh repo URL [REV]` on any host, without a cluster ---------------------------------------------


def repo_subcommand(argocd: Path, *args: str) -> subprocess.CompletedProcess:
    """The script itself (not sourced), with a PATH without kubectl, k3d or docker."""
    bin_dir = argocd.parent / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("bash", "sed", "awk", "grep", "cat", "head", "mv", "dirname", "env"):
        target = shutil.which(tool)
        if target and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(target)
    return subprocess.run(
        ["bash", str(SCRIPT), "repo", *args],
        env={"PATH": str(bin_dir), "ARGOCD_DIR": str(argocd), "HOME": str(argocd.parent)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def our_sources(docs: list[dict], url: str) -> list[dict]:
    found = []
    for doc in docs:
        if doc.get("kind") == "Application":
            spec = doc["spec"]
            found += [s for s in spec.get("sources") or [spec["source"]] if s["repoURL"] == url]
    return found


@pytest.fixture
def argocd_copy(tmp_path) -> Path:
    copy = tmp_path / "argocd"
    shutil.copytree(ARGOCD, copy)
    return copy


def test_repo_points_every_file_at_any_host_twice(argocd_copy):
    original = load_all_yaml(ARGOCD / "root.yaml")[0]["spec"]["source"]["repoURL"]
    files = sorted(argocd_copy.rglob("*.yaml"))
    before = {f: f.read_text() for f in files}
    charts = {
        (doc["metadata"]["name"], s["chart"], s["targetRevision"])
        for f in files
        for doc in load_all_yaml(f)
        if doc.get("kind") == "Application"
        for s in doc["spec"].get("sources", [])
        if "chart" in s
    }
    for url, revision in [
        ("https://gitlab.example.com/team/house-price-mlops.git", ""),
        ("ssh://git@git.example.org:2222/me/fork.git", "release-1"),
    ]:
        result = repo_subcommand(argocd_copy, url, *([revision] if revision else []))
        assert result.returncode == 0, result.stderr
        for f in files:
            text = f.read_text()
            docs = load_all_yaml(f)
            if original in before[f]:
                assert url in text, f"{f.name} does not name {url}"
            assert original not in text and "gitlab.example.com" not in text.replace(url, ""), f.name
            sources = our_sources(docs, url)
            if revision:
                assert all(s["targetRevision"] == revision for s in sources), f.name
        project = yaml.safe_load((argocd_copy / "apps" / "project.yaml").read_text())
        assert url in project["spec"]["sourceRepos"]
        apps = [d for f in files for d in load_all_yaml(f) if d.get("kind") == "Application"]
        assert len(our_sources(apps, url)) == 5  # the root, mlops-infra, mlops-apps, and two $values sources
        # The charts keep their repositories and versions.
        assert {
            (doc["metadata"]["name"], s["chart"], s["targetRevision"])
            for doc in apps
            for s in doc["spec"].get("sources", [])
            if "chart" in s
        } == charts
    assert "bootstrap" in {p.name for p in argocd_copy.iterdir()}
    assert not list(argocd_copy.rglob("*.bak")) and not list(argocd_copy.rglob("*.tmp"))


def test_repo_refuses_what_is_not_a_url(argocd_copy):
    for bad in ["", "has space", "a#b"]:
        result = repo_subcommand(argocd_copy, bad)
        assert result.returncode != 0
    assert (argocd_copy / "root.yaml").read_text() == (ARGOCD / "root.yaml").read_text()


# --- 5. the URLs it prints ----------------------------------------------------------------------------------------


def test_the_summary_prints_the_serving_swagger_ui(tmp_path, versions):
    result = run_script("kc() { return 1; }\nsummary", env={"LOG": str(tmp_path / "log")})
    assert result.returncode == 0, result.stderr
    (serving,) = [line for line in result.stdout.splitlines() if line.strip().startswith("Serving")]
    assert serving.split()[1] == f"http://serving.localhost:{versions['HTTP_PORT']}/"
    assert "/docs" not in result.stdout
