"""The k3d overlay renders, and what it renders is deployable: namespaced, pinned, sized, probed,
wired (every Secret, ConfigMap, Service and port it refers to exists) and ordered (sync waves)."""

from __future__ import annotations

import re

import pytest

from tests.deploy.conftest import CLUSTER_SCOPED, NAMESPACE, by_kind, containers, pod_spec, wave


def long_running(obj: dict, container_kind: str) -> bool:
    """Containers of Deployments, StatefulSets, DaemonSets; not Jobs' nor init containers (they run to completion)."""
    return container_kind == "container" and obj["kind"] in {"Deployment", "StatefulSet", "DaemonSet"}


def test_renders_the_platform(rendered):
    names = {(o["kind"], o["metadata"]["name"]) for o in rendered}
    for expected in [
        ("StatefulSet", "postgresql"),
        ("Deployment", "seaweedfs"),
        ("Job", "seaweedfs-buckets"),
        ("Deployment", "mlflow"),
        ("Deployment", "serving"),
        ("Deployment", "dashboard"),
        ("Ingress", "mlops-uis"),
        ("Ingress", "mlops-admin-uis"),
        ("Middleware", "ui-basic-auth"),
        ("ServiceMonitor", "serving"),
        ("PrometheusRule", "mlops-serving"),
    ]:
        assert expected in names, f"{expected} is not rendered"


def test_the_overlay_is_exactly_its_two_argo_cd_parts(rendered, rendered_parts):
    """Argo CD deploys infra/ and apps/ as two Applications: together they are the whole overlay."""
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    infra, apps = ({key(o) for o in part} for part in rendered_parts.values())
    assert not infra & apps, f"in both parts: {infra & apps}"
    assert infra | apps == {key(o) for o in rendered}


def test_every_object_is_namespaced(rendered):
    for obj in rendered:
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"].get("namespace") == NAMESPACE, f"{obj['kind']}/{obj['metadata']['name']}"


def test_every_image_is_pinned_by_tag(rendered):
    for obj in rendered:
        for _, container in containers(obj):
            image = container["image"]
            name, _, tag = image.rpartition(":")
            assert name and "/" not in tag, f"{obj['metadata']['name']}: {image} has no tag"
            assert tag != "latest", f"{obj['metadata']['name']}: {image}"
            assert container.get("imagePullPolicy") in {"IfNotPresent", "Always"}, image


def test_every_container_has_requests_and_limits(rendered):
    for obj in rendered:
        for kind, container in containers(obj):
            resources = container.get("resources", {})
            where = f"{obj['metadata']['name']} {kind} {container['name']}"
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(section, {})), f"{where}: {section}.cpu/memory"


def test_long_running_containers_have_readiness_and_liveness_probes(rendered):
    checked = 0
    for obj in rendered:
        for kind, container in containers(obj):
            if long_running(obj, kind):
                checked += 1
                for probe in ("readinessProbe", "livenessProbe"):
                    assert probe in container, f"{obj['metadata']['name']}/{container['name']}: no {probe}"
    assert checked >= 5


def test_serving_probes_readyz_and_health(rendered):
    serving = by_kind(rendered, "Deployment")["serving"]
    container = pod_spec(serving)["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"


def test_no_secret_is_rendered_from_git(rendered):
    """Credentials come only from Kubernetes Secrets created out of band (k8s/secrets, gitignored)."""
    assert [o["metadata"]["name"] for o in rendered if o["kind"] == "Secret"] == []


def _secret_refs(obj: dict):
    for _, container in containers(obj):
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                yield ref["name"], ref["key"]
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                yield source["secretRef"]["name"], None
    for volume in (pod_spec(obj) or {}).get("volumes", []):
        if "secret" in volume:
            yield volume["secret"]["secretName"], None


def test_every_secret_reference_is_generated_by_k8s_secrets(rendered, secrets):
    refs = [(o["metadata"]["name"], name, key) for o in rendered for name, key in _secret_refs(o)]
    assert refs
    for workload, name, key in refs:
        secret = secrets.get((NAMESPACE, name))
        assert secret is not None, f"{workload} needs Secret {name}, which k8s/secrets does not generate"
        if key is not None:
            assert key in secret["data"], f"{workload} needs key {key} of Secret {name}"


def test_every_configmap_reference_exists(rendered):
    configmaps = by_kind(rendered, "ConfigMap")
    for obj in rendered:
        for _, container in containers(obj):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps, obj["metadata"]["name"]
        for volume in (pod_spec(obj) or {}).get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps, obj["metadata"]["name"]


def test_every_claim_exists(rendered):
    claims = set(by_kind(rendered, "PersistentVolumeClaim"))
    for obj in rendered:
        for volume in (pod_spec(obj) or {}).get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims


def _pod_ports(obj: dict) -> set:
    return {
        p.get(k) for _, c in containers(obj, init=False) for p in c.get("ports", []) for k in ("name", "containerPort")
    }


def test_every_service_selects_a_workload_on_its_ports(rendered):
    workloads = [o for o in rendered if pod_spec(o) is not None]
    for service in by_kind(rendered, "Service").values():
        selector = service["spec"]["selector"]
        matches = [w for w in workloads if selector.items() <= pod_spec_labels(w).items()]
        assert matches, f"Service {service['metadata']['name']} selects no pod template"
        for port in service["spec"]["ports"]:
            assert any(port["targetPort"] in _pod_ports(w) for w in matches), (service["metadata"]["name"], port)


def pod_spec_labels(obj: dict) -> dict:
    return obj["spec"]["template"]["metadata"].get("labels", {})


#: Services that the Helm releases create (k8s/dagster/values.yaml: release dagster, nameOverride webserver).
HELM_SERVICES = {"dagster-webserver": {80}}

URL_HOST = re.compile(r"://(?:[^@/\s]*@)?([a-z0-9-]+)\.mlops\.svc\.cluster\.local:(\d+)")


def _services_ports(rendered) -> dict[str, set]:
    ports = {name: {p["port"] for p in s["spec"]["ports"]} for name, s in by_kind(rendered, "Service").items()}
    return {**ports, **HELM_SERVICES}


def test_every_in_cluster_url_names_a_service_and_its_port(rendered):
    """http://NAME.mlops.svc.cluster.local:PORT (and postgresql://...@NAME...) in env and ConfigMaps."""
    services = _services_ports(rendered)
    texts = [str(cm.get("data", {})) for cm in by_kind(rendered, "ConfigMap").values()]
    texts += [str(c.get("env", [])) for o in rendered for _, c in containers(o)]
    found = [m for text in texts for m in URL_HOST.findall(text)]
    assert len(found) >= 8
    for host, port in found:
        assert host in services, f"no Service {host}"
        assert int(port) in services[host], f"Service {host} has no port {port}"


def test_ingress_backends_exist(rendered):
    services = _services_ports(rendered)
    for ingress in by_kind(rendered, "Ingress").values():
        assert ingress["spec"]["ingressClassName"] == "traefik"
        for rule in ingress["spec"]["rules"]:
            assert rule["host"].endswith(".localhost")
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] in services, backend
                if "number" in backend["port"]:
                    assert backend["port"]["number"] in services[backend["name"]]


def test_env_variable_references_are_defined_before_use(rendered):
    """$(VAR) in an env value expands only from variables defined earlier in the same container."""
    for obj in rendered:
        for _, container in containers(obj):
            defined = set()
            for env in container.get("env", []):
                for name in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", env.get("value", "")):
                    assert name in defined, f"{obj['metadata']['name']}: {env['name']} uses $({name}) before it is set"
                defined.add(env["name"])


def test_sync_waves_put_data_before_mlflow_and_serving_last(rendered):
    objects = {(o["kind"], o["metadata"]["name"]): o for o in rendered}
    data = [wave(objects["StatefulSet", "postgresql"]), wave(objects["Deployment", "seaweedfs"])]
    assert max(data) < wave(objects["Job", "seaweedfs-buckets"]) < wave(objects["Deployment", "mlflow"])
    assert wave(objects["ConfigMap", "mlops-pipeline-env"]) < min(data)
    # In the apps part: what watches serving comes before serving, which may never become ready alone.
    for name in [
        ("ServiceMonitor", "serving"),
        ("PrometheusRule", "mlops-serving"),
        ("Ingress", "mlops-uis"),
        ("Ingress", "mlops-admin-uis"),
        ("Deployment", "dashboard"),
    ]:
        assert wave(objects[name]) < wave(objects["Deployment", "serving"]), name


def test_the_bucket_job_is_an_argo_cd_sync_hook(rendered):
    job = by_kind(rendered, "Job")["seaweedfs-buckets"]
    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "Sync"
    assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    buckets = job["spec"]["template"]["spec"]["containers"][0]["env"][0]
    assert buckets == {"name": "BUCKETS", "value": "mlops mlflow"}
    assert "s3.bucket.create" in script


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PrometheusRule"])
def test_prometheus_operator_objects_tolerate_a_missing_crd_at_dry_run(rendered, kind):
    for obj in by_kind(rendered, kind).values():
        assert "SkipDryRunOnMissingResource=true" in obj["metadata"]["annotations"]["argocd.argoproj.io/sync-options"]


def test_images_come_from_the_k3d_registry_at_the_pinned_tag(rendered, versions):
    registry = f"k3d-{versions['REGISTRY_NAME']}:{versions['REGISTRY_PORT']}"
    ours = {c["image"] for o in rendered for _, c in containers(o) if "/mlops-" in c["image"]}
    assert ours == {f"{registry}/mlops-{name}:{versions['IMAGE_TAG']}" for name in ("mlflow", "serving", "dashboard")}


def test_browser_links_use_the_ingress_port(rendered, versions):
    """Links opened by the browser, and MLflow's allowed origins, go through Traefik on HTTP_PORT."""
    configmaps = {name.rsplit("-", 1)[0]: cm["data"] for name, cm in by_kind(rendered, "ConfigMap").items()}
    port = versions["HTTP_PORT"]
    dashboard = configmaps["dashboard-env"]
    for key in ("MLOPS_DAGSTER_URL", "MLOPS_MLFLOW_URL", "MLOPS_GRAFANA_URL", "MLOPS_API_DOCS_URL"):
        assert re.match(rf"http://[a-z]+\.localhost:{port}(/|$)", dashboard[key]), (key, dashboard[key])
    for key in ("MLOPS_DAGSTER_URL", "MLOPS_MLFLOW_URL"):  # serving's lineage links: the same UIs
        assert configmaps["serving-env"][key] == dashboard[key], key
    assert f"http://mlflow.localhost:{port}" in configmaps["mlflow-env"]["MLFLOW_SERVER_CORS_ALLOWED_ORIGINS"]
    assert "mlflow.localhost:*" in configmaps["mlflow-env"]["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")


def _env(obj: dict, configmaps: dict[str, dict]) -> dict[str, object]:
    """A workload's first container's environment: ConfigMap values as strings, Secret refs as (name, key)."""
    (container,) = pod_spec(obj)["containers"]
    env: dict[str, object] = {}
    for source in container.get("envFrom", []):
        env |= configmaps[source["configMapRef"]["name"]]["data"]
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        env[item["name"]] = (ref["name"], ref["key"]) if ref else item.get("value")
    return env


def test_the_dashboard_reads_the_reports_on_s3_like_the_pipeline(rendered, dagster_values):
    """The Drift page opens the Evidently reports the pipeline stored (s3://...): same endpoint, bucket and
    credentials as the pipeline's code location and MLflow."""
    configmaps = by_kind(rendered, "ConfigMap")
    dashboard = _env(by_kind(rendered, "Deployment")["dashboard"], configmaps)
    pipeline = configmaps["mlops-pipeline-env"]["data"]
    for key in ("MLOPS_STORAGE_URL", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        assert dashboard.get(key) == pipeline[key], key
    mlflow = _env(by_kind(rendered, "Deployment")["mlflow"], configmaps)
    (code_location,) = dagster_values["dagster-user-deployments"]["deployments"]
    pipeline_secrets = {
        e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in code_location["env"]
        if "valueFrom" in e
    }
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert dashboard[key] == mlflow[key] == pipeline_secrets[key] == ("mlops-s3", key)


def test_the_dashboards_streamlit_options_come_from_its_configmap(rendered):
    """Streamlit's command-line flags override STREAMLIT_*: the Deployment passes none, so the ConfigMap decides."""
    deployment = by_kind(rendered, "Deployment")["dashboard"]
    (container,) = pod_spec(deployment)["containers"]
    command = container.get("command", []) + container.get("args", [])
    assert command[:3] == ["streamlit", "run", "dashboard/app.py"]
    assert not [arg for arg in command if arg.startswith("--")], command
    env = _env(deployment, by_kind(rendered, "ConfigMap"))
    assert int(env["STREAMLIT_SERVER_PORT"]) == container["ports"][0]["containerPort"]
    assert env["STREAMLIT_SERVER_ADDRESS"] == "0.0.0.0"
    assert env["STREAMLIT_SERVER_HEADLESS"] == "true"
    # What the image's own command line set, kept.
    assert env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] == "false"
    assert env["STREAMLIT_CLIENT_TOOLBAR_MODE"] == "viewer"


def test_mlflow_accepts_the_hosts_its_clients_use(rendered):
    """MLFLOW_SERVER_ALLOWED_HOSTS replaces MLflow's defaults: what it needs must be in the list itself."""
    from mlflow.server.security_utils import is_allowed_host_header, is_health_endpoint

    configmap = next(cm for name, cm in by_kind(rendered, "ConfigMap").items() if name.startswith("mlflow-env"))
    allowed = configmap["data"]["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    for host in [
        "mlflow:5000",
        "mlflow.mlops:5000",
        "mlflow.mlops.svc.cluster.local:5000",  # the pipeline, the dashboard (MLFLOW_TRACKING_URI)
        "mlflow.localhost:8080",  # the Ingress
        "localhost:5000",  # kubectl port-forward
        "127.0.0.1:5000",
        "[::1]:5000",
    ]:
        assert is_allowed_host_header(allowed, host), host
    assert not is_allowed_host_header(allowed, "evil.example.com")
    # The probes use /health, which MLflow exempts from the check (pod IPs are not in the list).
    assert is_health_endpoint("/health")
    deployment = by_kind(rendered, "Deployment")["mlflow"]
    (container,) = pod_spec(deployment)["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
