"""The Helm values (Dagster, kube-prometheus-stack) parse and are wired to the platform: our image at
the pinned tag, the code location's module, K8sRunLauncher, our PostgreSQL, and env whose Secrets,
ConfigMaps and URLs exist."""

from __future__ import annotations

import re
import tomllib

from tests.deploy.conftest import NAMESPACE, ROOT, by_kind

#: What mlops_assets reads (settings.py) and the deployment must set for the code location.
CODE_LOCATION_ENV = {
    "MLOPS_DATABASE_URL",
    "MLOPS_STORAGE_URL",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "MLFLOW_TRACKING_URI",
    "MLOPS_SERVING_URL",
    "MLOPS_ADMIN_TOKEN",
}


def pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def pinned(package: str) -> str:
    for requirement in pyproject()["project"]["dependencies"]:
        name, _, version = requirement.partition("==")
        if name == package:
            return version
    raise AssertionError(f"{package} is not pinned in pyproject.toml")


def code_location(values: dict) -> dict:
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    return deployment


def test_dagster_images_match_the_dagster_version(dagster_values):
    version = pinned("dagster")
    for component in ("dagsterWebserver", "dagsterDaemon"):
        image = dagster_values[component]["image"]
        assert image["repository"] == "docker.io/dagster/dagster-celery-k8s"
        assert image["tag"] == version, component


def test_the_code_location_is_our_image_at_the_pinned_tag(dagster_values, versions):
    deployment = code_location(dagster_values)
    registry = f"k3d-{versions['REGISTRY_NAME']}:{versions['REGISTRY_PORT']}"
    assert deployment["image"]["repository"] == f"{registry}/mlops-dagster"
    assert deployment["image"]["tag"] == versions["IMAGE_TAG"]
    assert deployment["image"]["pullPolicy"] == "IfNotPresent"


def test_the_code_location_loads_the_module_of_pyproject(dagster_values):
    deployment = code_location(dagster_values)
    assert deployment["codeServerArgs"] == ["-m", pyproject()["tool"]["dagster"]["module_name"]]
    assert deployment["port"] == 3030
    dockerfile = (ROOT / "docker" / "dagster" / "Dockerfile").read_text()
    assert '"-m", "mlops_assets.definitions"' in dockerfile and '"3030"' in dockerfile


def test_each_run_gets_its_own_pod_with_the_code_location_config(dagster_values):
    assert dagster_values["runLauncher"]["type"] == "K8sRunLauncher"
    assert code_location(dagster_values)["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert dagster_values["runLauncher"]["config"]["k8sRunLauncher"]["failPodOnRunFailure"] is True


def test_the_daemon_runs_the_sensors(dagster_values):
    daemon = dagster_values["dagsterDaemon"]
    assert daemon["enabled"] is True
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"


def test_dagster_storage_is_our_postgresql(dagster_values, rendered, secrets):
    postgresql = dagster_values["postgresql"]
    assert postgresql["enabled"] is False
    host = postgresql["postgresqlHost"]
    assert host == f"postgresql.{NAMESPACE}.svc.cluster.local"
    service = by_kind(rendered, "Service")["postgresql"]
    assert postgresql["service"]["port"] in {p["port"] for p in service["spec"]["ports"]}
    assert (postgresql["postgresqlUsername"], postgresql["postgresqlDatabase"]) == ("dagster", "dagster")
    # The init script creates that role and database.
    init = (ROOT / "k8s" / "base" / "postgres" / "initdb" / "10-databases.sh").read_text()
    assert "'dagster'" in init
    # The chart reads the password from our Secret (it does not generate one).
    assert dagster_values["generatePostgresqlPasswordSecret"] is False
    secret = secrets[(NAMESPACE, dagster_values["global"]["postgresqlSecretName"])]
    assert "postgresql-password" in secret["data"]


def test_the_code_location_env_is_complete_and_resolvable(dagster_values, rendered, secrets):
    deployment = code_location(dagster_values)
    configmaps = by_kind(rendered, "ConfigMap")
    names = set()
    for source in deployment["envConfigMaps"]:
        assert source["name"] in configmaps, f"ConfigMap {source['name']} is not rendered (it needs a fixed name)"
        names |= set(configmaps[source["name"]]["data"])
    defined = set()
    for env in deployment["env"]:
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["key"] in secrets[(NAMESPACE, ref["name"])]["data"], ref
        for used in re.findall(r"\$\((\w+)\)", env.get("value", "")):
            assert used in defined, f"{env['name']} uses $({used}) before it is defined"
        defined.add(env["name"])
    names |= defined
    assert names >= CODE_LOCATION_ENV, CODE_LOCATION_ENV - names


def test_the_code_location_env_points_at_the_platform(dagster_values, rendered):
    deployment = code_location(dagster_values)
    data = {}
    for source in deployment["envConfigMaps"]:
        data |= by_kind(rendered, "ConfigMap")[source["name"]]["data"]
    env = {e["name"]: e.get("value") for e in deployment["env"]}
    assert data["MLOPS_STORAGE_URL"].startswith("s3://mlops/")
    assert data["AWS_ENDPOINT_URL"] == "http://seaweedfs.mlops.svc.cluster.local:8333"
    assert data["MLFLOW_TRACKING_URI"] == "http://mlflow.mlops.svc.cluster.local:5000"
    assert data["MLOPS_SERVING_URL"] == "http://serving.mlops.svc.cluster.local:3000"
    assert env["MLOPS_DATABASE_URL"].startswith("postgresql://warehouse:$(WAREHOUSE_DB_PASSWORD)@postgresql.mlops.svc")
    # The bucket of MLOPS_STORAGE_URL is one the bucket Job creates.
    job = by_kind(rendered, "Job")["seaweedfs-buckets"]
    buckets = job["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"].split()
    assert data["MLOPS_STORAGE_URL"].removeprefix("s3://").split("/")[0] in buckets


def test_the_code_location_and_its_runs_are_sized(dagster_values):
    for component in (
        code_location(dagster_values),
        dagster_values["dagsterWebserver"],
        dagster_values["dagsterDaemon"],
    ):
        assert {"cpu", "memory"} <= set(component["resources"]["requests"])
        assert {"cpu", "memory"} <= set(component["resources"]["limits"])


def test_monitoring_selects_our_monitors_rules_and_dashboards(monitoring_values, rendered):
    spec = monitoring_values["prometheus"]["prometheusSpec"]
    for key in ("serviceMonitorSelectorNilUsesHelmValues", "ruleSelectorNilUsesHelmValues"):
        assert spec[key] is False, key
    sidecar = monitoring_values["grafana"]["sidecar"]["dashboards"]
    assert sidecar["enabled"] is True and sidecar["searchNamespace"] == "ALL"
    dashboards = [cm for name, cm in by_kind(rendered, "ConfigMap").items() if name.startswith("grafana-dashboard-")]
    assert len(dashboards) == 2
    for cm in dashboards:
        assert cm["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"]
        assert sidecar["folderAnnotation"] in cm["metadata"]["annotations"]


def test_grafana_admin_comes_from_a_secret(monitoring_values, secrets):
    admin = monitoring_values["grafana"]["admin"]
    secret = secrets[("monitoring", admin["existingSecret"])]
    assert {admin["userKey"], admin["passwordKey"]} <= set(secret["data"])
    assert "adminPassword" not in monitoring_values["grafana"]


def test_monitoring_is_sized_for_a_laptop(monitoring_values):
    prometheus = monitoring_values["prometheus"]["prometheusSpec"]
    assert prometheus["resources"]["limits"]["memory"]
    assert monitoring_values["grafana"]["resources"]["limits"]["memory"]
    assert monitoring_values["alertmanager"]["alertmanagerSpec"]["resources"]["limits"]["memory"]


def test_ui_hosts_use_the_ingress_controller(monitoring_values, versions):
    for component in ("prometheus", "alertmanager", "grafana"):
        ingress = monitoring_values[component]["ingress"]
        assert ingress["enabled"] is True and ingress["ingressClassName"] == "traefik"
        assert all(host.endswith(".localhost") for host in ingress["hosts"])
    root_url = monitoring_values["grafana"]["grafana.ini"]["server"]["root_url"]
    assert root_url == f"http://grafana.localhost:{versions['HTTP_PORT']}"
