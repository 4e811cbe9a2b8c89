#!/usr/bin/env bash
# Stop the hermetic test cluster started by hack/cluster-up.sh.
#
# Only the processes recorded in $CLUSTER_DIR/pids/ are signalled (PID and
# start time must both match, so a recycled PID is never hit): SIGTERM, wait up
# to CLUSTER_STOP_TIMEOUT seconds (default 20), then SIGKILL.
#
# Usage: hack/cluster-down.sh [--purge]
#   --purge / CLUSTER_PURGE=1  also delete $CLUSTER_DIR (etcd data, PKI, logs).
#   Without it the data is kept and the next cluster-up is a warm start.
set -euo pipefail
# shellcheck source=hack/cluster/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster/common.sh"

PURGE="${CLUSTER_PURGE:-0}"
for a in "$@"; do
  case "${a}" in
    --purge) PURGE=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "unknown argument: ${a}" ;;
  esac
done
STOP_TIMEOUT="${CLUSTER_STOP_TIMEOUT:-20}"

stop_component() {
  local name="$1" pid i
  if ! pid="$(component_pid "${name}")"; then
    rm -f "${PID_DIR}/${name}.pid" "${PID_DIR}/${name}.start"
    return 0
  fi
  log "stopping ${name} (pid ${pid})"
  signal_component TERM "${pid}"
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    component_pid "${name}" >/dev/null || break
    sleep 0.1
  done
  if component_pid "${name}" >/dev/null; then
    log "${name} did not stop in ${STOP_TIMEOUT}s, sending SIGKILL"
    signal_component KILL "${pid}"
    for ((i = 0; i < 50; i++)); do
      component_pid "${name}" >/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "${PID_DIR}/${name}.pid" "${PID_DIR}/${name}.start"
}

if [ -d "${PID_DIR}" ]; then
  for ((idx = ${#COMPONENTS[@]} - 1; idx >= 0; idx--)); do
    stop_component "${COMPONENTS[idx]}"
  done
fi

if [ "${PURGE}" = 1 ]; then
  # Refuse to remove anything that does not look like a cluster dir.
  if [ -d "${CLUSTER_DIR}" ]; then
    [ -e "${CLUSTER_DIR}/pki" ] || [ -e "${CLUSTER_DIR}/etcd" ] || [ -e "${CLUSTER_DIR}/pids" ] \
      || die "${CLUSTER_DIR} does not look like a cluster dir; not purging"
    log "purging ${CLUSTER_DIR}"
    rm -rf "${CLUSTER_DIR}"
  fi
else
  rm -f "${CLUSTER_DIR}/openbao/addr" "${CLUSTER_DIR}/openbao/token" 2>/dev/null || true
fi
log "cluster stopped"
