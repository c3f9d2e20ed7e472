#!/usr/bin/env bash
# The platform on a local k3d cluster under Argo CD (see the README, "Deployment").
#
#   deploy/k3d.sh up             registry + cluster, images, secrets, Argo CD, the root app (idempotent)
#   deploy/k3d.sh images         build and push the four images only (after a code change: bump IMAGE_TAG)
#   deploy/k3d.sh secrets        (re)write missing k8s/secrets/*.env with random values and apply them
#   deploy/k3d.sh repo URL [REV] point every Argo CD Application at your fork (then commit and push)
#   deploy/k3d.sh status         the Applications and the pods
#   deploy/k3d.sh down           delete the cluster and the registry
#
# Needs docker (a running engine), k3d >= 5, kubectl and openssl. Argo CD pulls the manifests from the
# Git repository named in argocd/*.yaml, so that repository must be reachable and pushed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=deploy/versions.env
source deploy/versions.env

REGISTRY="k3d-${REGISTRY_NAME}:${REGISTRY_PORT}"  # the name pods pull from (k3d's registries.yaml)
PUSH_REGISTRY="localhost:${REGISTRY_PORT}"        # the same registry, as the host sees it
PLACEHOLDER_REPO="https://github.com/your-org/house-price-mlops.git"
KUBE_CONTEXT="k3d-${CLUSTER_NAME}"
# name:Dockerfile; every build context is the repository root (.dockerignore).
IMAGES=(
  "mlops-dagster:docker/dagster/Dockerfile"
  "mlops-mlflow:docker/mlflow/Dockerfile"
  "mlops-serving:serving/Dockerfile"
  "mlops-dashboard:dashboard/Dockerfile"
)

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
kc() { kubectl --context "$KUBE_CONTEXT" "$@"; }

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
  done
}

registry_up() {
  if k3d registry list 2>/dev/null | grep -q "k3d-${REGISTRY_NAME}"; then
    log "registry k3d-${REGISTRY_NAME} exists"
  else
    log "creating registry k3d-${REGISTRY_NAME} on port ${REGISTRY_PORT}"
    k3d registry create "$REGISTRY_NAME" --port "$REGISTRY_PORT"
  fi
}

cluster_up() {
  if k3d cluster list 2>/dev/null | grep -q "^${CLUSTER_NAME} "; then
    log "cluster ${CLUSTER_NAME} exists"
  else
    log "creating cluster ${CLUSTER_NAME} (Traefik on http://*.localhost:${HTTP_PORT})"
    k3d cluster create "$CLUSTER_NAME" \
      --servers 1 --agents 0 \
      --registry-use "$REGISTRY" \
      --port "${HTTP_PORT}:80@loadbalancer" \
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

# k8s/secrets/NAME.env from NAME.env.example: same keys, random values (admin-user stays as written).
secrets_files() {
  local example target line key value
  for example in k8s/secrets/*.env.example; do
    target="${example%.example}"
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
  if grep -rq "$PLACEHOLDER_REPO" argocd/; then
    die "argocd/*.yaml still point at ${PLACEHOLDER_REPO}. Run: deploy/k3d.sh repo <your fork's URL> [branch], commit and push."
  fi
}

root_app() {
  check_repo
  log "applying the root Application (argocd/root.yaml)"
  kc apply -n argocd -f argocd/root.yaml
}

set_repo() {
  local url="${1:?usage: deploy/k3d.sh repo URL [REVISION]}" revision="${2:-}"
  local files current
  files=$(grep -rl "repoURL: \|- https://github.com/" argocd/)
  current=$(sed -n 's/^ *repoURL: \(.*\.git\)$/\1/p' argocd/root.yaml | head -1)
  [ -n "$current" ] || die "no repoURL in argocd/root.yaml"
  # shellcheck disable=SC2086
  sed -i.bak "s#${current}#${url}#g" $files
  if [ -n "$revision" ]; then
    # Only the targetRevision that follows our repoURL (chart versions stay as they are).
    # shellcheck disable=SC2086
    sed -i.bak "/repoURL: ${url//\//\\/}/{n;s#targetRevision: .*#targetRevision: ${revision}#;}" $files
  fi
  find argocd -name '*.bak' -delete
  log "argocd/ now points at ${url}${revision:+ (${revision})}: commit and push before 'up'"
}

summary() {
  local password
  password=$(kc -n argocd get secret argocd-initial-admin-secret -o jsonpath='{.data.password}' 2>/dev/null | base64 -d || true)
  cat <<SUMMARY

The root app syncs: monitoring -> mlops-infra -> dagster -> mlops-apps (serving is ready once the
pipeline has promoted a first model, a few minutes after the Dagster daemon starts).

  Dashboard   http://dashboard.localhost:${HTTP_PORT}
  Serving     http://serving.localhost:${HTTP_PORT}/docs
  Dagster     http://dagster.localhost:${HTTP_PORT}
  MLflow      http://mlflow.localhost:${HTTP_PORT}
  Grafana     http://grafana.localhost:${HTTP_PORT}   (admin / see k8s/secrets/grafana-admin.env)
  Prometheus  http://prometheus.localhost:${HTTP_PORT}
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
    argocd) need kubectl; argocd_install; root_app; summary ;;
    repo) shift; set_repo "$@" ;;
    status) need kubectl; status ;;
    down)
      need k3d
      k3d cluster delete "$CLUSTER_NAME" || true
      k3d registry delete "k3d-${REGISTRY_NAME}" || true
      ;;
    -h | --help | help) sed -n '2,13p' "$0" ;;
    *) die "unknown command: $command (see deploy/k3d.sh help)" ;;
  esac
}

main "$@"
