#!/usr/bin/env bash
# A Docker engine for the compose platform (README "Deployment", compose): the one that answers, or a
# local dockerd started here when none does (as root, with no registry needed).
#
#   docker/engine.sh start    use the engine that answers ($DOCKER_HOST or the default socket), else start
#                             dockerd with its data under .docker/ (MLOPS_DOCKER_DIR); prints the
#                             DOCKER_HOST line to eval: eval "$(docker/engine.sh start)"
#   docker/engine.sh stop     stop the dockerd this script started (and only that one)
#   docker/engine.sh status   says which engine answers
#
# Other scripts source it (MLOPS_ENGINE_LIB=1) for ensure_engine, which exports DOCKER_HOST.
# The local dockerd runs with --iptables=false: containers reach each other on user-defined networks and
# published ports work, but they may have no outbound network; images are built with --network host.
set -euo pipefail

ENGINE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENGINE_DIR="${MLOPS_DOCKER_DIR:-${ENGINE_ROOT}/.docker}"
# A unix socket path must stay short (108 bytes): it lives in /tmp, named after the data directory.
ENGINE_SOCK="/tmp/mlops-docker-$(printf '%s' "$ENGINE_DIR" | cksum | cut -d ' ' -f 1).sock"
ENGINE_PIDFILE="${ENGINE_DIR}/dockerd.pid"
ENGINE_LOG="${ENGINE_DIR}/dockerd.log"

engine_log() { printf '==> %s\n' "$*" >&2; }

engine_answers() { docker info >/dev/null 2>&1; }

# Exports DOCKER_HOST for an engine that answers; starts a local dockerd when none does. Returns 1 with
# the reason on stderr when no engine can be had (no docker CLI, no dockerd, not root).
ensure_engine() {
  command -v docker >/dev/null 2>&1 || { echo "no docker CLI installed (apt-get install docker.io)" >&2; return 1; }
  if engine_answers; then
    return 0
  fi
  if [ -S "$ENGINE_SOCK" ] && DOCKER_HOST="unix://${ENGINE_SOCK}" engine_answers; then
    export DOCKER_HOST="unix://${ENGINE_SOCK}"
    return 0
  fi
  command -v dockerd >/dev/null 2>&1 || {
    echo "no Docker engine answers and dockerd is not installed (apt-get install docker.io)" >&2
    return 1
  }
  [ "$(id -u)" = 0 ] || { echo "no Docker engine answers, and starting dockerd needs root" >&2; return 1; }
  mkdir -p "${ENGINE_DIR}/data" "${ENGINE_DIR}/exec"
  engine_log "no Docker engine answers: starting dockerd (data ${ENGINE_DIR}/data, socket ${ENGINE_SOCK}, log ${ENGINE_LOG})"
  rm -f "$ENGINE_SOCK"
  # setsid: the engine outlives the make target that started it; `docker/engine.sh stop` ends it.
  setsid dockerd --data-root "${ENGINE_DIR}/data" --exec-root "${ENGINE_DIR}/exec" \
    --pidfile "$ENGINE_PIDFILE" --host "unix://${ENGINE_SOCK}" \
    --iptables=false --ip6tables=false >>"$ENGINE_LOG" 2>&1 </dev/null &
  local waited=0
  until [ -S "$ENGINE_SOCK" ] && DOCKER_HOST="unix://${ENGINE_SOCK}" engine_answers; do
    sleep 1
    waited=$((waited + 1))
    if [ "$waited" -ge 60 ]; then
      echo "dockerd did not answer within 60 s; its log (${ENGINE_LOG}):" >&2
      tail -n 20 "$ENGINE_LOG" >&2
      return 1
    fi
  done
  export DOCKER_HOST="unix://${ENGINE_SOCK}"
}

engine_stop() {
  local pid
  if [ ! -f "$ENGINE_PIDFILE" ]; then
    engine_log "no dockerd started by this script (${ENGINE_PIDFILE} is missing)"
    return 0
  fi
  pid="$(cat "$ENGINE_PIDFILE")"
  if kill -0 "$pid" 2>/dev/null; then
    engine_log "stopping dockerd (pid ${pid})"
    kill "$pid"
    for _ in $(seq 1 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
  fi
  rm -f "$ENGINE_PIDFILE" "$ENGINE_SOCK"
  # What dockerd leaves mounted (its default network namespace) would keep .docker/ from being deleted.
  local mounted
  mounted="$(awk -v dir="$ENGINE_DIR/" 'index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r)"
  if [ -n "$mounted" ]; then
    printf '%s\n' "$mounted" | xargs -r -n 1 umount -l
  fi
}

if [ "${MLOPS_ENGINE_LIB:-0}" != 1 ]; then
  case "${1:-start}" in
    start)
      ensure_engine
      printf 'export DOCKER_HOST=%s\n' "${DOCKER_HOST:-unix:///var/run/docker.sock}"
      ;;
    stop) engine_stop ;;
    status)
      if ! engine_answers && [ -S "$ENGINE_SOCK" ]; then
        export DOCKER_HOST="unix://${ENGINE_SOCK}"
      fi
      if engine_answers; then
        echo "engine: ${DOCKER_HOST:-the default socket} ($(docker version --format '{{.Server.Version}}'))"
      else
        echo "no Docker engine answers"
        exit 1
      fi
      ;;
    *)
      echo "usage: $0 start|stop|status" >&2
      exit 2
      ;;
  esac
fi
