#!/usr/bin/env bash
# The base images of the platform: the real ones where a registry answers, else stand-ins built here
# from Debian bookworm (debootstrap --variant=minbase + `docker import`). Used by docker/build.sh.
#
#   docker/base.sh            prints the mode it chose: "registry" or "standin" (building the stand-ins if so)
#   docker/base.sh standin    builds the stand-ins whatever answers
#
# Stand-ins (tag mlops-standin/*), each providing what our Dockerfiles and docker-compose.yml expect of
# the real image:
#   mlops-standin/debian:bookworm      debootstrap minbase bookworm, imported        (debian:bookworm-slim)
#   mlops-standin/python:3.11-bookworm Debian's Python 3.11 in a venv first on PATH  (python:3.11.13-slim-bookworm)
#   mlops-standin/postgres:15          Debian's postgresql, the official entrypoint's contract (postgres:16)
#   mlops-standin/s3:moto              moto's S3 server behind a `weed` shim         (chrislusf/seaweedfs)
#   mlops-standin/prometheus:bookworm  Debian's prometheus                           (prom/prometheus)
# Grafana has no stand-in: it runs on a machine where its image can be pulled.
#
# Environment: PYTHON_IMAGE (the real base, default python:3.11.13-slim-bookworm), MLOPS_BASE=registry|standin
# (skip the probe), MLOPS_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=docker/engine.sh
MLOPS_ENGINE_LIB=1 source docker/engine.sh

PYTHON_IMAGE="${PYTHON_IMAGE:-python:3.11.13-slim-bookworm}"
MIRROR="${MLOPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_STANDIN=mlops-standin/debian:bookworm
PYTHON_STANDIN=mlops-standin/python:3.11-bookworm

log() { printf '==> %s\n' "$*" >&2; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# The Debian root file system as an image: debootstrap into .docker/, import, delete the directory.
debian_standin() {
  if have_image "$DEBIAN_STANDIN"; then
    log "$DEBIAN_STANDIN exists"
    return
  fi
  command -v debootstrap >/dev/null 2>&1 || {
    echo "debootstrap is not installed (apt-get install debootstrap): it builds the stand-in base" >&2
    exit 1
  }
  [ "$(id -u)" = 0 ] || { echo "debootstrap needs root" >&2; exit 1; }
  local dir="${ENGINE_DIR}/debootstrap-bookworm" started=$SECONDS
  rm -rf "$dir"
  log "debootstrap --variant=minbase bookworm from ${MIRROR} (a few minutes)"
  debootstrap --variant=minbase bookworm "$dir" "$MIRROR" >"${ENGINE_DIR}/debootstrap.log" 2>&1 || {
    tail -n 20 "${ENGINE_DIR}/debootstrap.log" >&2
    exit 1
  }
  rm -rf "${dir:?}"/var/cache/apt/archives/*.deb "${dir:?}"/var/lib/apt/lists/*
  # This host's own CA certificates (a TLS-intercepting egress proxy, say) go along, so that pip and uv in
  # the builds reach PyPI as the host does; the python stand-in adds them to the system store.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    log "the stand-in trusts this host's extra CA certificates: $(cd /usr/local/share/ca-certificates && echo ./*.crt)"
    mkdir -p "${dir}/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "${dir}/usr/local/share/ca-certificates/"
  fi
  log "docker import -> ${DEBIAN_STANDIN}"
  tar -C "$dir" --numeric-owner -c . | docker import --change 'CMD ["bash"]' - "$DEBIAN_STANDIN" >/dev/null
  rm -rf "$dir"
  log "debian stand-in: $((SECONDS - started)) s"
}

standin_image() {
  local tag="$1" dir="$2" started=$SECONDS
  if have_image "$tag" && [ "${MLOPS_REBUILD_STANDINS:-0}" != 1 ]; then
    log "$tag exists"
    return
  fi
  log "building stand-in ${tag} from ${dir}"
  # Context: the repository root (.dockerignore), for the lock file and the stand-ins' own scripts.
  docker build --network host --build-arg "DEBIAN_IMAGE=${DEBIAN_STANDIN}" \
    --build-arg "PYTHON_IMAGE=${PYTHON_STANDIN}" -f "${dir}/Dockerfile" -t "$tag" . >&2
  log "${tag}: $((SECONDS - started)) s"
}

build_standins() {
  debian_standin
  standin_image "$PYTHON_STANDIN" docker/standin/python
  standin_image mlops-standin/postgres:15 docker/standin/postgres
  standin_image mlops-standin/s3:moto docker/standin/s3
  standin_image mlops-standin/prometheus:bookworm docker/standin/prometheus
}

# "registry" when the real Python base is here or can be pulled, else "standin".
choose_mode() {
  if [ -n "${MLOPS_BASE:-}" ]; then
    echo "$MLOPS_BASE"
  elif have_image "$PYTHON_IMAGE" || docker pull "$PYTHON_IMAGE" >/dev/null 2>&1; then
    echo registry
  else
    echo standin
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ensure_engine
  mode="${1:-$(choose_mode)}"
  case "$mode" in
    registry) log "base: ${PYTHON_IMAGE} (a registry answers)" ;;
    standin)
      log "base: no registry answers for ${PYTHON_IMAGE}: building stand-ins from Debian bookworm"
      build_standins
      ;;
    *)
      echo "usage: $0 [registry|standin]" >&2
      exit 2
      ;;
  esac
  echo "$mode"
fi
