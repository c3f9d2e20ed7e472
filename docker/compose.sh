#!/usr/bin/env bash
# The platform as containers, from docker-compose.yml (README "Deployment", compose).
#
#   docker/compose.sh up      engine, secrets, base/stand-ins, missing images; `up -d`; waits until every
#                             container is healthy, then prints the URLs (make up)
#   docker/compose.sh down    stops and removes the containers; keeps the volumes unless VOLUMES=1 (make down)
#   docker/compose.sh urls | ps | logs [SERVICE...] | compose ARGS...   (the last: any compose command)
#
# Environment: MLOPS_COMPOSE_PROJECT (default mlops), MLOPS_UP_TIMEOUT (seconds, default 900), VOLUMES=1
# (down: also the volumes), MLOPS_BIND and *_HOST_PORT (docker-compose.yml), and the platform's settings
# docker-compose.yml reads (MLOPS_TRAIN_TRIALS, MLOPS_SIM_BATCHES, ...). Secrets: docker/compose.env.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=docker/engine.sh
MLOPS_ENGINE_LIB=1 source docker/engine.sh
# shellcheck source=deploy/versions.env
source deploy/versions.env
export IMAGE_TAG

PROJECT="${MLOPS_COMPOSE_PROJECT:-mlops}"
ENV_FILE=docker/compose.env
IMAGES=(mlops-dagster mlops-mlflow mlops-serving mlops-dashboard)

log() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose -p "$PROJECT" --env-file "$ENV_FILE" -f docker-compose.yml "$@"
  elif command -v docker-compose >/dev/null 2>&1; then
    docker-compose -p "$PROJECT" --env-file "$ENV_FILE" -f docker-compose.yml "$@"
  else
    die "neither 'docker compose' (v2) nor docker-compose (1.29) is installed"
  fi
}

random_value() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

# docker/compose.env: every key of the example with a random value, once; kept afterwards.
secrets() {
  [ -f "$ENV_FILE" ] && return
  log "writing ${ENV_FILE} (random secrets, gitignored)"
  (
    umask 077
    {
      echo "# Written by docker/compose.sh from docker/compose.env.example. Never commit it."
      grep -E '^[A-Z_]+=' docker/compose.env.example | while IFS='=' read -r key _; do
        printf '%s=%s\n' "$key" "$(random_value)"
      done
    } >"$ENV_FILE"
  )
}

# The third-party images: the real ones, or the stand-ins where no registry answers (docker/base.sh).
bases() {
  local mode
  mode="$(docker/base.sh)"
  if [ "$mode" = standin ]; then
    export POSTGRES_IMAGE="${POSTGRES_IMAGE:-mlops-standin/postgres:15}"
    export S3_IMAGE="${S3_IMAGE:-mlops-standin/s3:moto}"
    export PROMETHEUS_IMAGE="${PROMETHEUS_IMAGE:-mlops-standin/prometheus:bookworm}"
    log "NOTE: no registry answers: stand-ins ${POSTGRES_IMAGE} (for postgres:16), ${S3_IMAGE} (for SeaweedFS),"
    log "      ${PROMETHEUS_IMAGE} (for prom/prometheus); Grafana is left out (no image)"
  else
    export COMPOSE_PROFILES="${COMPOSE_PROFILES:-grafana}"
  fi
}

missing_images() {
  local name absent=()
  for name in "${IMAGES[@]}"; do
    docker image inspect "${name}:${IMAGE_TAG}" >/dev/null 2>&1 || absent+=("$name")
  done
  echo "${absent[@]}"
}

containers() { docker ps -a --filter "label=com.docker.compose.project=${PROJECT}" --format '{{.ID}}'; }

# Every container healthy (or running without a health check; the one-shot `buckets` exited 0).
wait_healthy() {
  local deadline=$((SECONDS + ${MLOPS_UP_TIMEOUT:-900})) id line name status health code bad pending
  while :; do
    bad=()
    pending=()
    for id in $(containers); do
      line="$(docker inspect --format '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.ExitCode}}' "$id")"
      read -r name status health code <<<"$line"
      case "$status/$health" in
        running/healthy | running/none) ;;
        exited/*) [ "$code" = 0 ] && [ "$name" = buckets ] || bad+=("$name") ;;
        */unhealthy) bad+=("$name") ;;
        *) pending+=("$name") ;;
      esac
    done
    if [ "${#bad[@]}" -gt 0 ] || { [ "${#pending[@]}" -gt 0 ] && [ "$SECONDS" -ge "$deadline" ]; }; then
      for name in "${bad[@]}" "${pending[@]}"; do
        echo "---- ${name}: docker logs --tail 40" >&2
        compose logs --no-color --tail 40 "$name" >&2 || true
      done
      die "not healthy: ${bad[*]} ${pending[*]}"
    fi
    [ "${#pending[@]}" -eq 0 ] && return 0
    sleep 3
  done
}

port() { compose port "$1" "$2" 2>/dev/null | tail -n 1 || true; }

urls() {
  local serving dagster mlflow dashboard prometheus grafana postgres s3 simulator
  serving="$(port serving 3000)"
  dagster="$(port dagster-webserver 3000)"
  mlflow="$(port mlflow 5000)"
  dashboard="$(port dashboard 8501)"
  prometheus="$(port prometheus 9090)"
  grafana="$(port grafana 3000)"
  postgres="$(port postgres 5432)"
  s3="$(port s3 8333)"
  simulator="$(port simulator 8800)"
  cat <<EOF
Dashboard    http://${dashboard}
Serving API  http://${serving}   (bearer tokens for /reload and /predictions/*: ${ENV_FILE})
Dagster      http://${dagster}
MLflow       http://${mlflow}
Prometheus   http://${prometheus}
Grafana      ${grafana:+http://${grafana}   (admin / GRAFANA_ADMIN_PASSWORD in ${ENV_FILE})}${grafana:-not started (no image here; profile grafana)}
Simulator    http://${simulator}   (the batch data API)
S3           http://${s3}   (keys in ${ENV_FILE})
PostgreSQL   ${postgres}   (databases warehouse, dagster, mlflow; passwords in ${ENV_FILE})
EOF
}

cmd="${1:-up}"
shift || true
ensure_engine
case "$cmd" in
  up)
    started=$SECONDS
    secrets
    bases
    todo="$(missing_images)"
    if [ -n "$todo" ]; then
      log "building the missing images: ${todo}"
      # shellcheck disable=SC2086  # one word per image
      docker/build.sh $todo
    fi
    log "compose up (project ${PROJECT})"
    compose up -d --remove-orphans
    log "waiting until every container is healthy"
    wait_healthy
    log "the platform is up in $((SECONDS - started)) s (project ${PROJECT}):"
    urls
    ;;
  down)
    if [ "${VOLUMES:-0}" = 1 ]; then
      log "compose down, volumes removed (project ${PROJECT})"
      compose --profile grafana down --volumes --remove-orphans
    else
      log "compose down, volumes kept (project ${PROJECT}; VOLUMES=1 removes them)"
      compose --profile grafana down --remove-orphans
    fi
    ;;
  urls) urls ;;
  ps) compose ps ;;
  logs) compose logs --no-color --tail 200 "$@" ;;
  compose) compose "$@" ;;
  *) die "usage: $0 up|down|urls|ps|logs [SERVICE...]|compose ARGS..." ;;
esac
