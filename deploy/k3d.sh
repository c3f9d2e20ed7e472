#!/usr/bin/env bash
# The platform on a local k3d cluster under Argo CD (see the README, "Deployment").
#
#   deploy/k3d.sh up             registry + cluster, images, secrets, Argo CD, the root app (idempotent)
#   deploy/k3d.sh images         build and push the four images only (after a code change: bump IMAGE_TAG)
#   deploy/k3d.sh secrets        (re)write missing k8s/secrets/*.env with random values and apply them
#   deploy/k3d.sh ui-auth        rewrite the UIs' login (UI_AUTH_USER, UI_AUTH_PASSWORD) and apply it
#   deploy/k3d.sh repo URL [REV] point every Argo CD Application and the AppProject at your fork (any Git
#                                host; then commit and push). Needs no cluster nor tool; ARGOCD_DIR (default
#                                argocd) is the directory it rewrites.
#   deploy/k3d.sh status         the Applications and the pods
#   deploy/k3d.sh down           delete the cluster and the registry
#
# Needs docker (a running engine), k3d >= 5.7 (K3D_MIN_VERSION: older k3d has no shared `/` mount in its
# node, which node-exporter's mounts need), kubectl and openssl. The k3s image is pinned (K3S_IMAGE in
# deploy/versions.env): k3d's default k3s can be too old for kube-prometheus-stack and Argo CD.
# Argo CD pulls the manifests from the Git repository named in argocd/*.yaml, so that repository must be
# reachable and pushed.
#
# Environment:
#   K3D_BIND_ADDRESS  host address of the UIs' port (HTTP_PORT) and of the registry's (REGISTRY_PORT);
#                     default 127.0.0.1: this machine only. 0.0.0.0 opens them to the network: the
#                     registry has no authentication, and the open UIs (dashboard, serving) none either.
#   UI_AUTH_USER      user of the basic auth in front of MLflow, Dagster, Prometheus and Alertmanager
#                     (default admin)
#   UI_AUTH_PASSWORD  its password (default: random), kept in k8s/secrets/ui-basic-auth.env (gitignored)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=deploy/versions.env disable=SC1091  # followed with shellcheck -x (tests/deploy)
source deploy/versions.env

REGISTRY="k3d-${REGISTRY_NAME}:${REGISTRY_PORT}"  # the name pods pull from (k3d's registries.yaml)
PUSH_REGISTRY="localhost:${REGISTRY_PORT}"        # the same registry, as the host sees it
PLACEHOLDER_REPO="https://github.com/your-org/house-price-mlops.git"
ARGOCD_DIR="${ARGOCD_DIR:-argocd}"
KUBE_CONTEXT="k3d-${CLUSTER_NAME}"
K3D_BIND_ADDRESS="${K3D_BIND_ADDRESS:-127.0.0.1}"
UI_AUTH_ENV=k8s/secrets/ui-basic-auth.env
# name:Dockerfile; every build context is the repository root (.dockerignore).
IMAGES=(
  "mlops-dagster:docker/dagster/Dockerfile"
  "mlops-mlflow:docker/mlflow/Dockerfile"
  "mlops-serving:serving/Dockerfile"
  "mlops-dashboard:dashboard/Dockerfile"
)

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }
warn() { printf '\033[1;33mwarning: %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
kc() { kubectl --context "$KUBE_CONTEXT" "$@"; }

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
  done
}

# Loopback only unless K3D_BIND_ADDRESS says otherwise.
check_bind_address() {
  case "$K3D_BIND_ADDRESS" in
    127.* | localhost) ;;
    *) warn "K3D_BIND_ADDRESS=${K3D_BIND_ADDRESS}: the UIs and the registry (no authentication) are reachable from other machines" ;;
  esac
}

# An existing container keeps the address it was created with: say so when it is not ours.
check_binding() {
  local container="$1" port="$2" bound
  bound=$(docker port "$container" "$port" 2>/dev/null | head -n 1 || true)
  if [ -n "$bound" ] && [ "${bound%:*}" != "$K3D_BIND_ADDRESS" ]; then
    warn "${container} listens on ${bound}, not on ${K3D_BIND_ADDRESS}: 'deploy/k3d.sh down', then 'up', to re-bind it"
  fi
}

# "k3d version v5.8.3" -> 5.8.3
k3d_version() { k3d version 2>/dev/null | sed -n 's/^k3d version v\{0,1\}\([0-9][0-9.]*\).*/\1/p' | head -n 1; }

# true when version $1 >= version $2 (dotted numbers)
version_at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }

check_k3d_version() {
  local version
  version="$(k3d_version)"
  [ -n "$version" ] || die "cannot read the k3d version ('k3d version'); k3d >= ${K3D_MIN_VERSION} is needed"
  version_at_least "$version" "$K3D_MIN_VERSION" ||
    die "k3d ${version} is too old: k3d >= ${K3D_MIN_VERSION} is needed (older k3d nodes have no shared '/' mount, so the monitoring stack never gets healthy). Upgrade: https://k3d.io/#installation"
}

registry_up() {
  check_bind_address
  if k3d registry list 2>/dev/null | grep -q "k3d-${REGISTRY_NAME}"; then
    log "registry k3d-${REGISTRY_NAME} exists"
    check_binding "k3d-${REGISTRY_NAME}" 5000/tcp
  else
    log "creating registry k3d-${REGISTRY_NAME} on ${K3D_BIND_ADDRESS}:${REGISTRY_PORT}"
    k3d registry create "$REGISTRY_NAME" --port "${K3D_BIND_ADDRESS}:${REGISTRY_PORT}"
  fi
}

cluster_up() {
  if k3d cluster list 2>/dev/null | grep -q "^${CLUSTER_NAME} "; then
    log "cluster ${CLUSTER_NAME} exists"
    check_binding "k3d-${CLUSTER_NAME}-serverlb" 80/tcp
  else
    log "creating cluster ${CLUSTER_NAME} (Traefik on http://*.localhost:${HTTP_PORT}, bound to ${K3D_BIND_ADDRESS})"
    k3d cluster create "$CLUSTER_NAME" \
      --image "$K3S_IMAGE" \
      --servers 1 --agents 0 \
      --registry-use "$REGISTRY" \
      --port "${K3D_BIND_ADDRESS}:${HTTP_PORT}:80@loadbalancer" \
      --wait
  fi
  kubectl config use-context "$KUBE_CONTEXT" >/dev/null
  kc wait --for=condition=Ready nodes --all --timeout=180s
}

images() {
  local entry name dockerfile
  for entry in "${IMAGES[@]}"; do
    name="${entry%%:*}"
    dockerfile="${entry#*:}"
    [ -f "$dockerfile" ] || die "$dockerfile is missing: it builds ${name}"
    log "building ${name}:${IMAGE_TAG} from ${dockerfile}"
    docker build -f "$dockerfile" -t "${PUSH_REGISTRY}/${name}:${IMAGE_TAG}" .
    docker push "${PUSH_REGISTRY}/${name}:${IMAGE_TAG}"
  done
}

random_value() { openssl rand -hex 24; }

# USER:HASH, an htpasswd line (Apache MD5, $apr1$) for password $2: `openssl passwd`, else htpasswd.
htpasswd_line() {
  local user="$1" password="$2" hash=""
  if command -v openssl >/dev/null 2>&1; then
    hash=$(printf '%s\n' "$password" | openssl passwd -apr1 -stdin 2>/dev/null || true)
  fi
  if [[ "$hash" == "\$apr1\$"* ]]; then
    printf '%s:%s\n' "$user" "$hash"
  elif command -v htpasswd >/dev/null 2>&1; then
    printf '%s\n' "$password" | htpasswd -n -i -m "$user" | head -n 1
  else
    die "cannot hash the UI login: neither 'openssl passwd -apr1' nor htpasswd (apache2-utils) works here"
  fi
}

# k8s/secrets/ui-basic-auth.env: the UIs' login. The Secret gets one key, `users` (the htpasswd line:
# Traefik refuses a basic-auth Secret with more); the password itself stays in a comment line of this
# gitignored file. Kept when it exists, unless $1 is "force" (deploy/k3d.sh ui-auth).
ui_auth_file() {
  local force="${1:-}" user="${UI_AUTH_USER:-admin}" password="${UI_AUTH_PASSWORD:-}" line
  if [ -f "$UI_AUTH_ENV" ] && [ "$force" != force ]; then
    return
  fi
  [[ "$user" =~ ^[A-Za-z0-9._-]+$ ]] || die "UI_AUTH_USER=${user}: letters, digits and . _ - only"
  [ -n "$password" ] || password="$(random_value)"
  [[ "$password" != *$'\n'* ]] || die "UI_AUTH_PASSWORD must be a single line"
  line="$(htpasswd_line "$user" "$password")"
  log "writing ${UI_AUTH_ENV}: the UIs' login, user ${user}, password in that file (gitignored)"
  rm -f "$UI_AUTH_ENV"
  (
    umask 077
    {
      printf '# The login of MLflow, Dagster, Prometheus and Alertmanager (deploy/k3d.sh). Never commit it.\n'
      printf '# %s: %s\n' user "$user" password "$password"
      printf 'users=%s\n' "$line"
    } >"$UI_AUTH_ENV"
  )
}

# k8s/secrets/NAME.env from NAME.env.example: same keys, random values (admin-user stays as written).
secrets_files() {
  local example target line key value
  for example in k8s/secrets/*.env.example; do
    target="${example%.example}"
    if [ "$target" = "$UI_AUTH_ENV" ]; then
      ui_auth_file
      continue
    fi
    if [ -f "$target" ]; then
      continue
    fi
    log "writing ${target} (random values; gitignored)"
    (
      umask 077
      while IFS= read -r line; do
        case "$line" in
          '' | '#'*) continue ;;
        esac
        key="${line%%=*}"
        value="${line#*=}"
        [ "$key" = "admin-user" ] || value="$(random_value)"
        printf '%s=%s\n' "$key" "$value"
      done <"$example" >"$target"
    )
  done
}

secrets_apply() {
  secrets_files
  log "applying the Secrets (namespaces mlops, monitoring)"
  kc create namespace mlops --dry-run=client -o yaml | kc apply -f -
  kc create namespace monitoring --dry-run=client -o yaml | kc apply -f -
  kc apply -k k8s/secrets
}

argocd_install() {
  log "installing Argo CD ${ARGOCD_VERSION}"
  kc create namespace argocd --dry-run=client -o yaml | kc apply -f -
  kc apply -n argocd --server-side --force-conflicts \
    -f "https://raw.githubusercontent.com/argoproj/argo-cd/${ARGOCD_VERSION}/manifests/install.yaml"
  # Sync waves between the child Applications need a health check for Applications.
  kc -n argocd patch configmap argocd-cm --type merge --patch-file argocd/bootstrap/argocd-cm-patch.yaml
  kc -n argocd rollout status deployment/argocd-repo-server --timeout=300s
  kc -n argocd rollout status deployment/argocd-server --timeout=300s
  kc -n argocd rollout status statefulset/argocd-application-controller --timeout=300s
  # The controller reads argocd-cm at start: restart it so the health check above applies.
  kc -n argocd rollout restart statefulset/argocd-application-controller
  kc -n argocd rollout status statefulset/argocd-application-controller --timeout=300s
}

check_repo() {
  if grep -rqF "$PLACEHOLDER_REPO" "$ARGOCD_DIR"; then
    die "${ARGOCD_DIR}/*.yaml still point at ${PLACEHOLDER_REPO}. Run: deploy/k3d.sh repo <your fork's URL> [branch], commit and push."
  fi
}

root_app() {
  check_repo
  log "applying the root Application (argocd/root.yaml)"
  kc apply -n argocd -f argocd/root.yaml
}

# Rewrite our repository's URL (whatever its host), wherever it is named under ARGOCD_DIR: the
# Applications' repoURL and the AppProject's sourceRepos. With REVISION, also the targetRevision right
# after each of our repoURLs (the charts' versions stay as they are).
set_repo() {
  local url="${1:-}" revision="${2:-}" current file text
  [ -n "$url" ] || die "usage: deploy/k3d.sh repo URL [REVISION]"
  [[ "$url" =~ ^[^[:space:]\#\&\\]+$ ]] || die "not a repository URL: ${url}"
  [[ "$revision" =~ ^[^[:space:]\#\&\\]*$ ]] || die "not a revision: ${revision}"
  [ -f "${ARGOCD_DIR}/root.yaml" ] || die "no ${ARGOCD_DIR}/root.yaml"
  current=$(sed -n 's/^ *repoURL: *\([^ ]*\) *$/\1/p' "${ARGOCD_DIR}/root.yaml" | head -n 1)
  [ -n "$current" ] || die "no repoURL in ${ARGOCD_DIR}/root.yaml"
  while IFS= read -r file; do
    text="$(cat "$file")"
    printf '%s\n' "${text//"$current"/"$url"}" >"$file"
    if [ -n "$revision" ]; then
      NEW_URL="$url" NEW_REVISION="$revision" awk '
        follows && /^[[:space:]]*targetRevision:/ { sub(/targetRevision:.*/, "targetRevision: " ENVIRON["NEW_REVISION"]) }
        { value = $0; sub(/^[[:space:]]*(- )?repoURL:[[:space:]]*/, "", value); sub(/[[:space:]]*$/, "", value)
          follows = ($0 ~ /repoURL:/ && value == ENVIRON["NEW_URL"]); print }
      ' "$file" >"${file}.tmp"
      mv "${file}.tmp" "$file"
    fi
  done < <(grep -rlF -- "$current" "$ARGOCD_DIR")
  log "${ARGOCD_DIR}/ now points at ${url}${revision:+ (${revision})}: commit and push before 'up'"
}

summary() {
  local password ui_user
  ui_user=$(sed -n 's/^# user: //p' "$UI_AUTH_ENV" 2>/dev/null | head -n 1 || true)
  password=$(kc -n argocd get secret argocd-initial-admin-secret -o jsonpath='{.data.password}' 2>/dev/null | base64 -d || true)
  cat <<SUMMARY

The UIs listen on ${K3D_BIND_ADDRESS}:${HTTP_PORT} only (K3D_BIND_ADDRESS).
The root app syncs: monitoring -> mlops-infra -> dagster -> mlops-apps (serving is ready once the
pipeline has promoted a first model, a few minutes after the Dagster daemon starts).

  Dashboard   http://dashboard.localhost:${HTTP_PORT}
  Serving     http://serving.localhost:${HTTP_PORT}/      (the API's Swagger UI)
  Dagster     http://dagster.localhost:${HTTP_PORT}      (login: see below)
  MLflow      http://mlflow.localhost:${HTTP_PORT}       (login: see below)
  Grafana     http://grafana.localhost:${HTTP_PORT}   (admin / see k8s/secrets/grafana-admin.env)
  Prometheus  http://prometheus.localhost:${HTTP_PORT}   (login: see below; also Alertmanager)
              login of Dagster, MLflow, Prometheus, Alertmanager: user ${ui_user:-admin}, password in
              ${UI_AUTH_ENV} (deploy/k3d.sh ui-auth to change it)
  Argo CD     kubectl -n argocd port-forward svc/argocd-server 8443:443  ->  https://localhost:8443
              user admin, password ${password:-<kubectl -n argocd get secret argocd-initial-admin-secret>}
SUMMARY
}

status() {
  kc -n argocd get applications.argoproj.io || true
  kc -n mlops get pods -o wide || true
}

main() {
  local command="${1:-up}"
  case "$command" in
    up)
      need docker k3d kubectl openssl
      check_k3d_version
      docker info >/dev/null 2>&1 || die "the Docker engine is not running"
      check_repo
      registry_up
      cluster_up
      images
      secrets_apply
      argocd_install
      root_app
      summary
      ;;
    images) need docker; images ;;
    secrets) need kubectl openssl; secrets_apply ;;
    ui-auth) need kubectl openssl; ui_auth_file force; secrets_apply ;;
    argocd) need kubectl; argocd_install; root_app; summary ;;
    repo) shift; set_repo "$@" ;;
    status) need kubectl; status ;;
    down)
      need k3d
      k3d cluster delete "$CLUSTER_NAME" || true
      k3d registry delete "k3d-${REGISTRY_NAME}" || true
      ;;
    -h | --help | help) sed -n '/^set -euo/q;2,$p' "$0" ;;
    *) die "unknown command: $command (see deploy/k3d.sh help)" ;;
  esac
}

# Sourced (tests/deploy does, to run one step with stubbed tools), it only defines the functions.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
