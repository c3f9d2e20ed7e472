"""The images the manifests name are the images deploy/k3d.sh builds, from Dockerfiles that exist and
pin their bases; the script parses (and passes shellcheck where installed); ports agree."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import missing_service
from tests.deploy.conftest import ROOT, by_kind, containers, pod_spec

SCRIPT = ROOT / "deploy" / "k3d.sh"


def script_images() -> dict[str, str]:
    """name -> Dockerfile, from deploy/k3d.sh's IMAGES."""
    block = re.search(r"IMAGES=\((.*?)\)", SCRIPT.read_text(), re.DOTALL).group(1)
    return dict(re.findall(r'"(mlops-[a-z]+):([^"]+)"', block))


def test_the_script_parses():
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def shell_scripts() -> list[str]:
    """Every *.sh in the tree (tracked or not, unless git ignores it) and .ci/run."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "*.sh", ".ci/run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted({path for path in listed if (ROOT / path).is_file()})


def test_shellcheck():
    """shellcheck finds nothing in the scripts (make deploy-tools installs it; CI fails without it)."""
    scripts = shell_scripts()
    assert {"deploy/k3d.sh", ".ci/run", "k8s/base/postgres/initdb/10-databases.sh"} <= set(scripts), scripts
    if shutil.which("shellcheck") is None:
        missing_service("shellcheck is not installed (make deploy-tools: apt-get install shellcheck)")
    result = subprocess.run(["shellcheck", "-x", *scripts], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_shellcheck_reports_a_finding(tmp_path):
    """The check fails on a finding: an unquoted variable (SC2086)."""
    if shutil.which("shellcheck") is None:
        missing_service("shellcheck is not installed (make deploy-tools: apt-get install shellcheck)")
    script = tmp_path / "bad.sh"
    script.write_text("#!/usr/bin/env bash\nrm -rf $1/tmp\n")
    result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert result.returncode != 0 and "SC2086" in result.stdout


def test_the_script_builds_every_image_the_manifests_and_values_name(rendered, dagster_values):
    named = {
        c["image"].rsplit("/", 1)[1].split(":")[0]
        for o in rendered
        for _, c in containers(o)
        if "/mlops-" in c["image"]
    }
    named.add(dagster_values["dagster-user-deployments"]["deployments"][0]["image"]["repository"].rsplit("/", 1)[1])
    assert set(script_images()) == named


@pytest.mark.parametrize("name", ["mlops-dagster", "mlops-mlflow"])
def test_our_dockerfiles_exist_and_pin_their_base(name):
    dockerfile = ROOT / script_images()[name]
    text = dockerfile.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE).group(1)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), f"{dockerfile.name} copies {path}, which does not exist"
    assert "requirements.lock.txt" in text
    assert re.search(r"^USER 1000$", text, re.MULTILINE)


def test_the_mlflow_image_has_the_postgres_and_s3_clients():
    text = (ROOT / "docker" / "mlflow" / "Dockerfile").read_text()
    version = re.search(r"mlflow==(\S+)", text).group(1)
    assert f'"mlflow=={version}"' in (ROOT / "pyproject.toml").read_text()
    assert "psycopg2-binary" in text and "boto3" in text


@pytest.mark.parametrize(
    ("name", "deployment", "port"), [("mlops-serving", "serving", 3000), ("mlops-dashboard", "dashboard", 8501)]
)
def test_the_other_images_expose_the_ports_the_manifests_use(rendered, name, deployment, port):
    """serving/Dockerfile and dashboard/Dockerfile are written alongside: checked once they exist."""
    (container,) = pod_spec(by_kind(rendered, "Deployment")[deployment])["containers"]
    assert port in {p["containerPort"] for p in container["ports"]}
    dockerfile = ROOT / script_images()[name]
    if not dockerfile.exists():
        pytest.skip(f"{dockerfile.relative_to(ROOT)} does not exist yet")
    exposed = {int(p) for p in re.findall(r"^EXPOSE\s+(\d+)", dockerfile.read_text(), re.MULTILINE)}
    assert not exposed or port in exposed, (
        f"{dockerfile.relative_to(ROOT)} exposes {exposed}, the Deployment uses {port}"
    )


def test_versions_are_the_ones_the_script_uses(versions):
    text = SCRIPT.read_text()
    assert "source deploy/versions.env" in text
    assert {
        "CLUSTER_NAME",
        "REGISTRY_NAME",
        "REGISTRY_PORT",
        "IMAGE_TAG",
        "HTTP_PORT",
        "ARGOCD_VERSION",
        "K3S_IMAGE",
        "K3D_MIN_VERSION",
    } <= set(versions)
    assert re.fullmatch(r"v\d+\.\d+\.\d+", versions["ARGOCD_VERSION"])
    assert versions["IMAGE_TAG"] != "latest"
