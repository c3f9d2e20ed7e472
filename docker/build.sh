#!/usr/bin/env bash
# Builds the platform's four images (make images), tagged IMAGE_TAG from deploy/versions.env:
#   mlops-dagster (docker/dagster/Dockerfile), mlops-mlflow (docker/mlflow/Dockerfile),
#   mlops-serving (serving/Dockerfile), mlops-dashboard (dashboard/Dockerfile)
# from the real Python base (PYTHON_IMAGE, default python:3.11.13-slim-bookworm) where a registry answers,
# else from the stand-in built from Debian bookworm by docker/base.sh (said in the output).
#
#   docker/build.sh [NAME...]   all four, or only those named (e.g. mlops-serving)
#
# Starts a local dockerd when no engine answers (docker/engine.sh). Every build context is the repository
# root (.dockerignore); builds use the host network (a local dockerd runs without iptables).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=docker/engine.sh
MLOPS_ENGINE_LIB=1 source docker/engine.sh
# shellcheck source=deploy/versions.env
source deploy/versions.env

IMAGES=(
  "mlops-dagster:docker/dagster/Dockerfile"
  "mlops-mlflow:docker/mlflow/Dockerfile"
  "mlops-serving:serving/Dockerfile"
  "mlops-dashboard:dashboard/Dockerfile"
)

log() { printf '==> %s\n' "$*"; }

ensure_engine
started=$SECONDS
mode="$(docker/base.sh)"
if [ "$mode" = standin ]; then
  PYTHON_IMAGE=mlops-standin/python:3.11-bookworm
  log "NOTE: no registry answers: building FROM the local stand-in ${PYTHON_IMAGE} (Debian bookworm's Python 3.11),"
  log "      not python:3.11.13-slim-bookworm. On a machine that can pull it, the real base is used."
else
  PYTHON_IMAGE="${PYTHON_IMAGE:-python:3.11.13-slim-bookworm}"
  log "base: ${PYTHON_IMAGE}"
fi

wanted=("$@")
summary=()
for entry in "${IMAGES[@]}"; do
  name="${entry%%:*}"
  dockerfile="${entry#*:}"
  if [ "${#wanted[@]}" -gt 0 ] && [[ " ${wanted[*]} " != *" ${name} "* ]]; then
    continue
  fi
  t0=$SECONDS
  log "building ${name}:${IMAGE_TAG} from ${dockerfile} (FROM ${PYTHON_IMAGE})"
  docker build --network host --build-arg "PYTHON_IMAGE=${PYTHON_IMAGE}" \
    --label "org.opencontainers.image.base.name=${PYTHON_IMAGE}" \
    -f "$dockerfile" -t "${name}:${IMAGE_TAG}" .
  summary+=("${name}:${IMAGE_TAG} $((SECONDS - t0)) s")
done

log "built FROM ${PYTHON_IMAGE} (${mode}) in $((SECONDS - started)) s:"
printf '    %s\n' "${summary[@]}"
