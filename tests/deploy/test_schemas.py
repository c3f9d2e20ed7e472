"""What Argo CD deploys is valid against the Kubernetes schemas (1.25 and 1.34) and the CRD schemas, strictly
(tests/deploy/schema_check.py); and the checker does report a wrong field."""

from __future__ import annotations

import copy

import pytest

from tests.conftest import missing_service
from tests.deploy import schema_check
from tests.deploy.conftest import ARGOCD, K8S, OVERLAY, ROOT, by_kind, load_yaml


def checked(objects: list[dict], source: str = "test") -> schema_check.Report:
    try:
        return schema_check.check_objects(objects, source)
    except schema_check.ToolMissingError as missing:
        missing_service(str(missing))
        raise


@pytest.fixture(scope="module")
def report() -> schema_check.Report:
    try:
        return schema_check.check_all()
    except schema_check.ToolMissingError as missing:
        missing_service(str(missing))
        raise


def deployment() -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "mlops"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }


def application() -> dict:
    return copy.deepcopy(load_yaml(ARGOCD / "apps" / "mlops-infra.yaml"))


def test_the_platform_is_valid_against_every_schema(report):
    assert report.errors == [], "\n".join(report.errors)
    # argocd/ (6), infra, apps and the Secrets (8): all validated but the Traefik Middleware.
    assert report.checked >= 35
    assert all("Middleware/" in line for line in report.unchecked), report.unchecked


def test_the_kubernetes_versions_are_the_oldest_and_newest_supported():
    assert schema_check.KUBERNETES_VERSIONS == ("1.25", "1.34")
    for version in schema_check.KUBERNETES_VERSIONS:
        assert (schema_check._k8s_schema_dir(version) / "deployment-apps-v1.json").is_file()


def test_the_checked_trees_are_those_the_applications_deploy():
    trees = {p.relative_to(ROOT).as_posix() for p in schema_check.app_trees()}
    assert trees == {"argocd/apps", "k8s/overlays/k3d/infra", "k8s/overlays/k3d/apps"}


def test_the_secrets_are_rendered_in_a_copy_from_the_examples():
    before = sorted(p.name for p in (K8S / "secrets").iterdir())
    secrets = {s["metadata"]["name"] for s in schema_check.render_secrets()}
    assert {"mlops-s3", "mlops-postgres", "grafana-admin", "ui-basic-auth"} <= secrets
    assert sorted(p.name for p in (K8S / "secrets").iterdir()) == before


def test_a_valid_deployment_passes():
    assert checked([deployment()]).errors == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["spec"].update(replicaz=2), "'replicaz' was unexpected"),
        (lambda d: d["spec"].update(replicas="two"), "'two' is not of type 'integer'"),
        (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(imagePullPolice="Always"), "imagePullPolice"),
        (lambda d: d["metadata"].update(labelz={}), "'labelz' was unexpected"),
    ],
)
def test_a_wrong_field_fails_at_both_versions(mutate, expected):
    obj = deployment()
    mutate(obj)
    errors = checked([obj]).errors
    assert len(errors) == 2, errors
    assert {("Kubernetes 1.25" in e, "Kubernetes 1.34" in e) for e in errors} == {(True, False), (False, True)}
    assert all(expected in e for e in errors), errors


def test_a_wrong_field_in_a_rendered_workload_fails(rendered_parts):
    serving = copy.deepcopy(by_kind(rendered_parts["apps"], "Deployment")["serving"])
    assert checked([serving]).errors == []
    serving["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    errors = checked([serving]).errors
    assert errors and all("readinessProbe.httpGet: Additional properties" in e and "paht" in e for e in errors)


def test_an_api_removed_since_the_oldest_version_fails():
    hpa = {
        "apiVersion": "autoscaling/v2beta2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 2},
    }
    assert checked([hpa]).errors == [
        "test: HorizontalPodAutoscaler/web: autoscaling/v2beta2 HorizontalPodAutoscaler does "
        "not exist in Kubernetes 1.34"
    ]


def test_an_unknown_kind_fails():
    errors = checked([{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}]).errors
    assert errors and "no schema for example.com/v1 Widget" in errors[0]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda a: a["spec"]["syncPolicy"].update(automatd={}), "'automatd' was unexpected"),
        (lambda a: a["spec"]["source"].update(targetRevison="main"), "'targetRevison' was unexpected"),
        (lambda a: a["spec"].update(projects="mlops"), "'projects' was unexpected"),
        (lambda a: a["metadata"].update(annotation={}), "'annotation' was unexpected"),
        (lambda a: a["spec"]["source"].update(helm={"skipSchemaValidation": "yes"}), "'yes' is not of type 'boolean'"),
        (lambda a: a["spec"].pop("destination"), "'destination' is a required property"),
    ],
)
def test_a_wrong_field_in_an_application_fails(mutate, expected):
    app = application()
    assert checked([app]).errors == []
    mutate(app)
    errors = checked([app]).errors
    assert len(errors) == 1 and "Application CRD schema" in errors[0] and expected in errors[0], errors


def test_the_dagster_application_may_skip_the_charts_schema():
    app = load_yaml(ARGOCD / "apps" / "dagster.yaml")
    assert app["spec"]["sources"][0]["helm"]["skipSchemaValidation"] is True
    assert checked([app]).errors == []


def test_a_wrong_field_in_the_app_project_fails():
    project = copy.deepcopy(load_yaml(ARGOCD / "apps" / "project.yaml"))
    project["spec"]["sourceRepo"] = project["spec"].pop("sourceRepos")
    errors = checked([project]).errors
    assert errors and all("AppProject CRD schema" in e for e in errors)
    assert any("'sourceRepo' was unexpected" in e for e in errors), errors


def test_a_wrong_field_in_a_service_monitor_or_rule_fails():
    monitor = load_yaml(K8S / "base" / "monitoring" / "servicemonitor.yaml")
    rule = load_yaml(K8S / "base" / "monitoring" / "prometheusrule.yaml")
    assert checked([monitor, rule]).errors == []
    monitor, rule = copy.deepcopy(monitor), copy.deepcopy(rule)
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    rule["spec"]["groups"][0]["rules"][0]["expression"] = "up == 0"
    errors = checked([monitor, rule]).errors
    assert any("ServiceMonitor CRD schema" in e and "'intervall' was unexpected" in e for e in errors), errors
    assert any("PrometheusRule CRD schema" in e and "'expression' was unexpected" in e for e in errors), errors


def test_the_crd_packages_are_pinned_with_their_integrity():
    for package, (version, integrity, _) in schema_check.CRD_PACKAGES.items():
        assert package.startswith("@kubernetes-models/")
        assert version.count(".") == 2 and integrity.startswith("sha512-")


def test_the_overlay_is_the_two_checked_trees():
    """The whole overlay (make render) is infra + apps: checking those checks it."""
    assert load_yaml(OVERLAY / "kustomization.yaml")["resources"] == ["infra", "apps"]
