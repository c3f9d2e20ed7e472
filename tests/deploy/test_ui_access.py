"""Who can reach the UIs on k3d: deploy/k3d.sh binds the load balancer (and the registry) to loopback
unless K3D_BIND_ADDRESS says otherwise, and every UI that can change state (MLflow: the champion
alias; Dagster: runs; Alertmanager: silences; Prometheus with it) is behind Traefik's basic-auth
Middleware, in its own namespace, reading a Secret that deploy/k3d.sh generates (never in git).

Open on purpose: the dashboard (it only reads; its reload asks for the admin token) and serving (the API
itself; /reload and /predictions/history check their own bearer tokens). Grafana has its own login.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import K8S, ROOT, by_kind, kustomize, read_env_file, require_tool

SCRIPT = ROOT / "deploy" / "k3d.sh"
MIDDLEWARES_ANNOTATION = "traefik.ingress.kubernetes.io/router.middlewares"
#: Hosts without the basic auth, and why (the module docstring).
OPEN = {"dashboard.localhost", "serving.localhost"}
OWN_LOGIN = {"grafana.localhost"}
#: The UIs the issue names, and Alertmanager's silences: these must be behind the basic auth.
MUST_AUTHENTICATE = {"mlflow.localhost", "dagster.localhost", "alertmanager.localhost", "prometheus.localhost"}


def ingresses(rendered, monitoring_values) -> list[tuple[str, str, dict]]:
    """(namespace, host, annotations) for every UI host: the overlay's Ingresses and the Helm values'."""
    found = []
    for ingress in by_kind(rendered, "Ingress").values():
        annotations = ingress["metadata"].get("annotations", {})
        for rule in ingress["spec"]["rules"]:
            found.append((ingress["metadata"]["namespace"], rule["host"], annotations))
    for component in ("prometheus", "alertmanager", "grafana"):
        ingress = monitoring_values[component]["ingress"]
        for host in ingress["hosts"]:
            found.append(("monitoring", host, ingress.get("annotations") or {}))
    return found


def middlewares(rendered, monitoring_values) -> dict[tuple[str, str], dict]:
    """(namespace, name) -> Traefik Middleware, from the overlay and the monitoring release's extraManifests."""
    objects = [o for o in rendered if o["kind"] == "Middleware"]
    objects += [o for o in monitoring_values.get("extraManifests", []) if o["kind"] == "Middleware"]
    return {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}


def test_every_state_changing_ui_is_behind_basic_auth(rendered, monitoring_values, secrets):
    hosts = ingresses(rendered, monitoring_values)
    assert {host for _, host, _ in hosts} >= MUST_AUTHENTICATE | OPEN | OWN_LOGIN
    known = middlewares(rendered, monitoring_values)
    checked = set()
    for namespace, host, notes in hosts:
        if host in OPEN | OWN_LOGIN:
            continue
        refs = [r.strip() for r in notes.get(MIDDLEWARES_ANNOTATION, "").split(",") if r.strip()]
        assert refs, f"{host} ({namespace}) has no Traefik middleware: anyone reaching it can change state"
        auth = []
        for ref in refs:
            name, _, provider = ref.partition("@")
            assert provider == "kubernetescrd", ref
            # <namespace>-<name>: the Middleware must be in the Ingress's namespace (allowCrossNamespace off).
            assert name.startswith(f"{namespace}-"), f"{host}: {ref} is not in namespace {namespace}"
            middleware = known.get((namespace, name.removeprefix(f"{namespace}-")))
            assert middleware is not None, f"{host}: no Middleware {ref}"
            if "basicAuth" in middleware["spec"]:
                auth.append(middleware["spec"]["basicAuth"])
        assert len(auth) == 1, f"{host}: {len(auth)} basic-auth middlewares"
        secret = secrets.get((namespace, auth[0]["secret"]))
        assert secret is not None, f"{host}: k8s/secrets does not generate Secret {namespace}/{auth[0]['secret']}"
        # Traefik refuses a basic-auth Secret with more than one key (the router then answers 404).
        assert set(secret["data"]) == {"users"}, f"{namespace}/{auth[0]['secret']}: {set(secret['data'])}"
        checked.add(host)
    assert checked == MUST_AUTHENTICATE


def test_the_middlewares_are_traefik_io_basic_auth(rendered, monitoring_values):
    known = middlewares(rendered, monitoring_values)
    assert {namespace for namespace, _ in known} == {"mlops", "monitoring"}
    for (namespace, name), middleware in known.items():
        # traefik.containo.us is gone in Traefik v3 (k3s >= 1.32); traefik.io/v1alpha1 is served by v2.10+ and v3.
        assert middleware["apiVersion"] == "traefik.io/v1alpha1", (namespace, name)
        assert middleware["spec"]["basicAuth"]["removeHeader"] is True, (namespace, name)
        options = middleware["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-options", "")
        assert "SkipDryRunOnMissingResource=true" in options, (namespace, name)


def test_the_middleware_comes_before_the_ingresses(rendered):
    def wave(o):
        return int(o["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))

    (middleware,) = by_kind(rendered, "Middleware").values()
    assert all(wave(middleware) < wave(i) for i in by_kind(rendered, "Ingress").values())


def test_grafana_keeps_its_own_login(monitoring_values, secrets):
    grafana = monitoring_values["grafana"]
    assert grafana["admin"]["existingSecret"] == "grafana-admin" and ("monitoring", "grafana-admin") in secrets
    assert grafana["grafana.ini"]["auth.anonymous"]["enabled"] is False


def test_the_open_uis_check_their_own_tokens():
    """serving's /reload and /predictions/history, the dashboard's reload: bearer tokens, not the Ingress."""
    app = (ROOT / "serving" / "app.py").read_text()
    assert app.count("_check_bearer(authorization") >= 2
    assert 'headers={"Authorization": f"Bearer {token}"}' in (ROOT / "dashboard" / "client.py").read_text()


# --- deploy/k3d.sh, sourced with stubbed tools ------------------------------------------------------------


def run_script(body: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    """`source deploy/k3d.sh` (relative to cwd) with k3d, kubectl and docker replaced by functions that
    log their arguments to $LOG, then `body`."""
    stubs = """
k3d() { printf 'k3d %s\\n' "$*" >>"$LOG"; if [ "$1 $2" = "cluster list" ]; then printf '%s' "${K3D_CLUSTERS:-}"; fi; }
kubectl() { printf 'kubectl %s\\n' "$*" >>"$LOG"; }
docker() { printf 'docker %s\\n' "$*" >>"$LOG"; if [ "$1" = port ]; then printf '%s\\n' "${DOCKER_PORT:-}"; fi; }
"""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("K3D_", "UI_AUTH_"))}
    full_env.update(env or {})
    return subprocess.run(
        ["bash", "-c", f"{stubs}\nsource deploy/k3d.sh\n{body}"],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("bind", "expected"), [(None, "127.0.0.1"), ("0.0.0.0", "0.0.0.0")])
def test_the_script_binds_to_loopback_unless_told_otherwise(tmp_path, versions, bind, expected):
    log = tmp_path / "log"
    env = {"LOG": str(log)} | ({"K3D_BIND_ADDRESS": bind} if bind else {})
    result = run_script("registry_up; cluster_up", env=env)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    (create,) = [c for c in calls if c.startswith("k3d cluster create")]
    assert f"--port {expected}:{versions['HTTP_PORT']}:80@loadbalancer" in create
    (registry,) = [c for c in calls if c.startswith("k3d registry create")]
    assert registry.endswith(f"--port {expected}:{versions['REGISTRY_PORT']}")
    # Every port k3d publishes names its host address: none falls back to all interfaces.
    for call in (create, registry):
        ports = call.split("--port ")[1:]
        assert ports and all(p.startswith(f"{expected}:") for p in ports), call
    assert ("reachable from other machines" in result.stderr) == (expected != "127.0.0.1")


def test_the_script_warns_when_an_existing_cluster_listens_everywhere(tmp_path, versions):
    env = {"LOG": str(tmp_path / "log"), "K3D_CLUSTERS": f"{versions['CLUSTER_NAME']} 1/1 0/0 true\n"}
    result = run_script("cluster_up", env=env | {"DOCKER_PORT": f"0.0.0.0:{versions['HTTP_PORT']}"})
    assert result.returncode == 0, result.stderr
    assert f"listens on 0.0.0.0:{versions['HTTP_PORT']}, not on 127.0.0.1" in result.stderr
    result = run_script("cluster_up", env=env | {"DOCKER_PORT": f"127.0.0.1:{versions['HTTP_PORT']}"})
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr


@pytest.fixture
def sandbox(tmp_path) -> Path:
    """deploy/ and k8s/secrets/ copied without any real *.env file: the script writes its own there."""
    require_tool("openssl", "deploy/k3d.sh hashes the UIs' password with openssl passwd")
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    shutil.copytree(K8S / "secrets", tmp_path / "k8s" / "secrets", ignore=shutil.ignore_patterns("*.env"))
    return tmp_path


def ui_secret(sandbox: Path) -> dict:
    secrets = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in kustomize(sandbox / "k8s" / "secrets")}
    assert secrets["mlops", "ui-basic-auth"]["data"] == secrets["monitoring", "ui-basic-auth"]["data"]
    return secrets["mlops", "ui-basic-auth"]


def verify_apr1(line: str, password: str) -> bool:
    _, _, hashed = line.partition(":")
    salt = hashed.split("$")[2]
    again = subprocess.run(
        ["openssl", "passwd", "-apr1", "-salt", salt, "-stdin"], input=password + "\n", capture_output=True, text=True
    )
    return again.stdout.strip() == hashed


def test_the_script_generates_the_ui_login_hashed_and_out_of_git(sandbox, tmp_path):
    result = run_script("secrets_files", cwd=sandbox, env={"LOG": str(tmp_path / "log"), "UI_AUTH_PASSWORD": "pw one"})
    assert result.returncode == 0, result.stderr
    env_file = sandbox / "k8s" / "secrets" / "ui-basic-auth.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", "k8s/secrets/ui-basic-auth.env"], cwd=ROOT)
    assert ignored.returncode == 0
    # Where to find the password: a comment line of the gitignored file, not a key of the Secret.
    assert "# password: pw one" in env_file.read_text().splitlines()
    assert set(read_env_file(env_file)) == {"users"}
    line = read_env_file(env_file)["users"]
    assert line.startswith("admin:$apr1$") and verify_apr1(line, "pw one")
    secret = ui_secret(sandbox)
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {"users": line}
    assert b"pw one" not in base64.b64decode(secret["data"]["users"])

    # `up` again keeps it; `ui-auth` (ui_auth_file force) rewrites it.
    again = run_script("secrets_files", cwd=sandbox, env={"LOG": str(tmp_path / "log"), "UI_AUTH_PASSWORD": "other"})
    assert again.returncode == 0 and read_env_file(env_file)["users"] == line
    forced = run_script(
        "ui_auth_file force",
        cwd=sandbox,
        env={"LOG": str(tmp_path / "log"), "UI_AUTH_USER": "ops", "UI_AUTH_PASSWORD": "pw two"},
    )
    assert forced.returncode == 0, forced.stderr
    new = read_env_file(env_file)["users"]
    assert new.startswith("ops:$apr1$") and verify_apr1(new, "pw two")


def test_the_script_draws_a_random_ui_password(sandbox, tmp_path):
    result = run_script("ui_auth_file", cwd=sandbox, env={"LOG": str(tmp_path / "log")})
    assert result.returncode == 0, result.stderr
    text = (sandbox / "k8s" / "secrets" / "ui-basic-auth.env").read_text()
    (password,) = [line.removeprefix("# password: ") for line in text.splitlines() if line.startswith("# password: ")]
    assert len(password) >= 32 and password != "change-me"
    assert verify_apr1(read_env_file(sandbox / "k8s" / "secrets" / "ui-basic-auth.env")["users"], password)


def test_the_script_falls_back_to_htpasswd(sandbox, tmp_path):
    """Where `openssl passwd -apr1` does not work, Apache's htpasswd (-n -i -m: stdin, MD5) hashes it."""
    body = """
openssl() { if [ "$1" = passwd ]; then return 1; fi; command openssl "$@"; }
htpasswd() { printf 'htpasswd %s\\n' "$*" >>"$LOG"; cat >/dev/null; printf '%s:$apr1$stub$hash\\n\\n' "${@: -1}"; }
htpasswd_line admin secret
"""
    result = run_script(body, cwd=sandbox, env={"LOG": str(tmp_path / "log")})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "admin:$apr1$stub$hash\n"
    assert "htpasswd -n -i -m admin" in (tmp_path / "log").read_text()


def test_the_script_applies_the_ui_login_and_says_where_it_is():
    text = SCRIPT.read_text()
    assert "ui-auth) need kubectl openssl; ui_auth_file force; secrets_apply ;;" in text
    summary = text.split("summary() {", 1)[1].split("\n}\n", 1)[0]
    assert "${UI_AUTH_ENV}" in summary


def test_the_readme_documents_the_binding_and_the_login():
    readme = (ROOT / "README.md").read_text()
    deployment = readme.split("## Deployment", 1)[1].split("\n## ", 1)[0]
    for needle in ("K3D_BIND_ADDRESS", "127.0.0.1", "ui-basic-auth", "deploy/k3d.sh ui-auth", "UI_AUTH_PASSWORD"):
        assert needle in deployment, needle
