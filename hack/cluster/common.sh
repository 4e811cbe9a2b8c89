# shellcheck shell=bash
# shellcheck disable=SC2034  # variables are used by the scripts that source this file
# Shared settings of hack/cluster-up.sh and hack/cluster-down.sh (sourced, not run).
# Every value can be overridden from the environment.

ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
CLUSTER_DIR="${CLUSTER_DIR:-${ROOT}/.cluster}"
case "${CLUSTER_DIR}" in /*) ;; *) CLUSTER_DIR="${ROOT}/${CLUSTER_DIR}" ;; esac
BIN_DIR="${BIN_DIR:-${ROOT}/bin}"
case "${BIN_DIR}" in /*) ;; *) BIN_DIR="${ROOT}/${BIN_DIR}" ;; esac

# Fixed, non-default loopback ports so a real cluster/Vault on the machine is
# not disturbed.
CLUSTER_HOST=127.0.0.1
CLUSTER_ETCD_PORT="${CLUSTER_ETCD_PORT:-23790}"
CLUSTER_ETCD_PEER_PORT="${CLUSTER_ETCD_PEER_PORT:-23800}"
CLUSTER_APISERVER_PORT="${CLUSTER_APISERVER_PORT:-26443}"
CLUSTER_KCM_PORT="${CLUSTER_KCM_PORT:-20257}"
CLUSTER_SCHEDULER_PORT="${CLUSTER_SCHEDULER_PORT:-20259}"
CLUSTER_KWOK_PORT="${CLUSTER_KWOK_PORT:-20247}"
OPENBAO_PORT="${OPENBAO_PORT:-28200}"
OPENBAO="${OPENBAO:-1}"

PKI_DIR="${CLUSTER_DIR}/pki"
LOG_DIR="${CLUSTER_DIR}/logs"
PID_DIR="${CLUSTER_DIR}/pids"
KUBECONFIG_ADMIN="${CLUSTER_DIR}/kubeconfig"
# The cluster network (hack/cluster/cluster-network.py): the apiserver's egress proxy socket and its routes.
CLUSTER_NETWORK="${CLUSTER_NETWORK:-1}"
NETWORK_DIR="${CLUSTER_DIR}/network"
NETWORK_SOCKET="${NETWORK_DIR}/cluster-network.sock"
NETWORK_ROUTES="${NETWORK_DIR}/routes.json"
CLUSTER_NETWORK_PYTHON="${CLUSTER_NETWORK_PYTHON:-python3}"

# Operators run as host processes (hack/cluster/operators.sh). All by default: the roles install the real charts, which
# rely on them (KEDA's metrics APIService, the Prometheus the Prometheus Operator runs, the Ingress certificate
# cert-manager issues), and the vault role's external-secrets delivery relies on External Secrets.
# CLUSTER_OPERATORS="" runs none.
CLUSTER_OPERATORS="${CLUSTER_OPERATORS-keda prometheus-operator cert-manager external-secrets}"
CLUSTER_OPERATORS_PORT_BASE="${CLUSTER_OPERATORS_PORT_BASE:-20400}"   # its listeners use base+0..6, External Secrets +10, cert-manager +12

# Start order; cluster-down stops in reverse (the operators first, whether named or not).
COMPONENTS=(etcd cluster-network kube-apiserver kube-controller-manager kube-scheduler kwok pv-recycler openbao
            keda-operator keda-metrics-apiserver keda-admission-webhooks prometheus-operator cert-manager-controller
            external-secrets)

LOG_T0_MS="$(date +%s%3N)"
log() {
  local ms=$(( $(date +%s%3N) - LOG_T0_MS ))
  printf '[%s +%d.%01ds] %s\n' "$(basename "$0" .sh)" $(( ms / 1000 )) $(( ms % 1000 / 100 )) "$*" >&2
}
die() { log "ERROR: $*"; exit 1; }

# Process start time (clock ticks since boot), used to make sure a PID file
# still refers to the process we started and not to a recycled PID.
proc_starttime() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"                 # drop "pid (comm) "
  # shellcheck disable=SC2086
  set -- ${stat}
  case "$1" in Z|X) return 1 ;; esac  # exited, not yet reaped
  echo "${20}"                        # field 22 overall
}

# component_pid <name>: prints the PID if that component is running, else fails.
component_pid() {
  local name="$1" pid start
  pid="$(cat "${PID_DIR}/${name}.pid" 2>/dev/null)" || return 1
  [ -n "${pid}" ] || return 1
  start="$(cat "${PID_DIR}/${name}.start" 2>/dev/null)" || return 1
  [ "$(proc_starttime "${pid}")" = "${start}" ] || return 1
  echo "${pid}"
}

# signal_component <SIG> <pid>: components are started as leaders of their own
# process group (setsid), so the whole group gets the signal (helpers such as
# pv-recycler's kubectl included); anything else only the PID itself.
signal_component() {
  local sig="$1" pid="$2" stat
  stat="$(cat "/proc/${pid}/stat" 2>/dev/null)" || return 0
  stat="${stat##*) }"
  # shellcheck disable=SC2086
  set -- ${stat}
  if [ "$3" = "${pid}" ]; then           # pgrp == pid
    kill "-${sig}" -- "-${pid}" 2>/dev/null || true
  else
    kill "-${sig}" "${pid}" 2>/dev/null || true
  fi
}
