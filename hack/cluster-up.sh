#!/usr/bin/env bash
# Start the hermetic test cluster: a real Kubernetes v1.34 control plane
# (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) on 127.0.0.1,
# kwok faking 5 nodes (3 CPU, 2 GPU) and the pods on them, a default
# StorageClass with pre-created PersistentVolumes, the shared CRDs, an
# OpenBao dev server, and the cluster network (the apiserver's egress proxy to
# the host processes that serve APIServices and webhooks, see
# hack/cluster/cluster-network.py). No containers run. See docs/hermetic-cluster.md.
#
# Idempotent: when the cluster in $CLUSTER_DIR is already up and healthy it
# exits 0 at once; components that died are restarted; data (etcd, PKI) is kept
# between cluster-down and cluster-up unless cluster-down --purge.
#
# Environment (defaults in hack/cluster/common.sh):
#   CLUSTER_DIR=.cluster     state dir (kubeconfig, pki/, logs/, pids/, etcd/, openbao/)
#   BIN_DIR=bin              where hack/build-tools.sh put the binaries
#   CLUSTER_APISERVER_PORT=26443 CLUSTER_ETCD_PORT=23790 CLUSTER_ETCD_PEER_PORT=23800
#   CLUSTER_KCM_PORT=20257 CLUSTER_SCHEDULER_PORT=20259 CLUSTER_KWOK_PORT=20247
#   OPENBAO=1 OPENBAO_PORT=28200 OPENBAO_BIN=.venv/bin/bao
#   CLUSTER_NETWORK=1        the cluster network proxy (0: not started, every call into the cluster fails)
#   CLUSTER_OPERATORS="keda prometheus-operator cert-manager external-secrets"  operators run as host processes ("" for none; make operators
#                            builds them; hack/cluster/operators.sh), CLUSTER_OPERATORS_PORT_BASE=20400
#   CRDS_DIR=../shared/crds  CRDs applied server-side (CRDS=0 to skip)
#   PV_COUNT=30 PV_SIZE=1Ti  pre-created PersistentVolumes of StorageClass "standard"
#   CLUSTER_UP_TIMEOUT=120   seconds to wait for each step
set -euo pipefail
# shellcheck source=hack/cluster/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster/common.sh"
# shellcheck source=hack/cluster/operators.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster/operators.sh"

T0_MS=$(date +%s%3N)
CRDS="${CRDS:-1}"
CRDS_DIR="${CRDS_DIR:-${ROOT}/../shared/crds}"
# KEDA's CRDs come from the KEDA chart the roles install (its spec differs from the KEDA repository's bases), so the
# prerequisites role finds them equal; ../shared/crds/keda-* is used only without the chart.
KEDA_CRDS_CHART="${CLUSTER_KEDA_CRDS_CHART:-${CHART_MIRROR:-${ROOT}/../shared/charts}/keda-2.20.2.tgz}"
PV_COUNT="${PV_COUNT:-30}"
PV_SIZE="${PV_SIZE:-1Ti}"
TIMEOUT="${CLUSTER_UP_TIMEOUT:-120}"
OPENBAO_BIN="${OPENBAO_BIN:-${ROOT}/.venv/bin/bao}"
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1
POD_CIDR=10.244.0.0/16
SA_ISSUER=https://kubernetes.default.svc.cluster.local
CFG_DIR="${ROOT}/hack/cluster"

for t in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok; do
  [ -x "${BIN_DIR}/${t}" ] || die "${BIN_DIR}/${t} missing: run 'make tools' (hack/build-tools.sh) first"
done
command -v openssl >/dev/null || die "openssl is required (apt-get install openssl)"
command -v curl >/dev/null || die "curl is required (apt-get install curl)"
if [ "${OPENBAO}" = 1 ] && [ ! -x "${OPENBAO_BIN}" ]; then
  die "OpenBao CLI not found at ${OPENBAO_BIN}: install the Python venv ('make setup', i.e. pip install -r requirements.txt into .venv), set OPENBAO_BIN, or run with OPENBAO=0 to skip OpenBao"
fi
if [ "${CLUSTER_NETWORK}" = 1 ] && ! command -v "${CLUSTER_NETWORK_PYTHON}" >/dev/null; then
  die "${CLUSTER_NETWORK_PYTHON} not found: the cluster network proxy needs Python 3 (set CLUSTER_NETWORK_PYTHON, or CLUSTER_NETWORK=0 to run without it)"
fi
if [ "${#NETWORK_SOCKET}" -gt 107 ]; then
  die "the cluster network socket path ${NETWORK_SOCKET} is longer than a Unix socket allows (107): use a shorter CLUSTER_DIR"
fi
for op in ${CLUSTER_OPERATORS}; do
  operator_components "${op}" >/dev/null || die "CLUSTER_OPERATORS: unknown operator '${op}' (known: keda prometheus-operator cert-manager external-secrets)"
  case "${op}" in
    keda) need_bins keda keda-operator keda-adapter keda-webhooks ;;
    prometheus-operator) need_bins prometheus-operator prometheus-operator ;;
    cert-manager) need_bins cert-manager cert-manager-controller ;;
    external-secrets) need_bins external-secrets external-secrets ;;
  esac
done
if [ "${CRDS}" = 1 ] && [ ! -d "${CRDS_DIR}" ]; then
  die "CRD dir ${CRDS_DIR} not found: set CRDS_DIR, or CRDS=0 to skip the CRDs"
fi

mkdir -p "${CLUSTER_DIR}" "${PKI_DIR}" "${LOG_DIR}" "${PID_DIR}"
# One cluster-up at a time per CLUSTER_DIR (engineers share one cluster).
exec 9>"${CLUSTER_DIR}/.lock"
flock -w "${TIMEOUT}" 9 || die "another cluster-up holds ${CLUSTER_DIR}/.lock"

kubectl() { "${BIN_DIR}/kubectl" --kubeconfig "${KUBECONFIG_ADMIN}" "$@"; }
API_URL="https://${CLUSTER_HOST}:${CLUSTER_APISERVER_PORT}"
ETCD_URL="http://${CLUSTER_HOST}:${CLUSTER_ETCD_PORT}"
BAO_URL="http://${CLUSTER_HOST}:${OPENBAO_PORT}"

# ---------------------------------------------------------------- health checks
etcd_healthy() { curl -fsS --max-time 2 "${ETCD_URL}/health" 2>/dev/null | grep -q '"health":"true"'; }
apiserver_ready() {
  curl -fsS --max-time 3 --cacert "${PKI_DIR}/ca.crt" --cert "${PKI_DIR}/admin.crt" \
    --key "${PKI_DIR}/admin.key" "${API_URL}/readyz" >/dev/null 2>&1
}
https_healthz() { curl -fsSk --max-time 2 "https://${CLUSTER_HOST}:$1/healthz" >/dev/null 2>&1; }
kcm_healthy() { https_healthz "${CLUSTER_KCM_PORT}"; }
scheduler_healthy() { https_healthz "${CLUSTER_SCHEDULER_PORT}"; }
kwok_healthy() { curl -fsS --max-time 2 "http://${CLUSTER_HOST}:${CLUSTER_KWOK_PORT}/healthz" >/dev/null 2>&1; }
openbao_healthy() { curl -fsS --max-time 2 "${BAO_URL}/v1/sys/health" >/dev/null 2>&1; }
cluster_network_healthy() { curl -fsS --max-time 2 --unix-socket "${NETWORK_SOCKET}" http://cluster-network/healthz >/dev/null 2>&1; }

component_healthy() {
  local name="$1"
  component_pid "${name}" >/dev/null || return 1
  case "${name}" in
    etcd) etcd_healthy ;;
    kube-apiserver) apiserver_ready ;;
    kube-controller-manager) kcm_healthy ;;
    kube-scheduler) scheduler_healthy ;;
    kwok) kwok_healthy ;;
    pv-recycler) true ;;
    cluster-network) cluster_network_healthy ;;
    openbao) openbao_healthy && [ -s "${CLUSTER_DIR}/openbao/token" ] ;;
    *) operator_healthy "${name}" ;;
  esac
}

wanted_components() {
  local c wanted_ops=" " op
  for op in ${CLUSTER_OPERATORS}; do wanted_ops+="$(operator_components "${op}") "; done
  for c in "${COMPONENTS[@]}"; do
    case "${c}" in
      keda-*|prometheus-operator|cert-manager-controller|external-secrets) [[ "${wanted_ops}" == *" ${c} "* ]] || continue ;;
    esac
    if [ "${c}" = openbao ] && [ "${OPENBAO}" != 1 ]; then continue; fi
    if [ "${c}" = cluster-network ] && [ "${CLUSTER_NETWORK}" != 1 ]; then continue; fi
    echo "${c}"
  done
}

# Hash of everything the object setup applies; a change re-runs the setup.
setup_hash() {
  {
    cat "${CFG_DIR}/nodes.yaml" "${CFG_DIR}/storage.yaml" "${BASH_SOURCE[0]}"
    echo "pv ${PV_COUNT} ${PV_SIZE} crds=${CRDS}"
    if [ "${CRDS}" = 1 ]; then
      crd_files | tr '\n' '\0' | xargs -0 -r cat
      [ ! -f "${KEDA_CRDS_CHART}" ] || sha256sum "${KEDA_CRDS_CHART}"
    fi
  } | sha256sum | cut -d' ' -f1
}

# The CRD files of CRDS_DIR to apply (KEDA's only when its chart is absent).
crd_files() {
  find "${CRDS_DIR}" -mindepth 2 -maxdepth 2 -name '*.yaml' | sort \
    | if [ -f "${KEDA_CRDS_CHART}" ]; then grep -v '/keda-v[^/]*/'; else cat; fi
}

print_summary() {
  echo "---------------------------------------------------------------------------"
  kubectl version 2>/dev/null | grep -v Kustomize || true
  kubectl get nodes -L node.kubernetes.io/instance-type -L nvidia.com/gpu.present 2>/dev/null || true
  echo "KUBECONFIG=${KUBECONFIG_ADMIN}"
  echo "CA cert:    ${PKI_DIR}/ca.crt    API server: ${API_URL}"
  if [ "${OPENBAO}" = 1 ]; then
    echo "OpenBao:    $(cat "${CLUSTER_DIR}/openbao/addr")  token file: ${CLUSTER_DIR}/openbao/token"
  fi
  if [ "${CLUSTER_NETWORK}" = 1 ]; then
    echo "Network:    ${NETWORK_SOCKET}  routes: ${NETWORK_ROUTES} (hack/cluster/route.sh)"
  fi
  echo "env:        source ${CLUSTER_DIR}/env"
  local ms=$(( $(date +%s%3N) - T0_MS ))
  printf 'cluster-up: %s in %d.%01ds\n' "$1" $(( ms / 1000 )) $(( ms % 1000 / 100 ))
}

# ------------------------------------------------------------ quick path: up already
all_healthy=1
for c in $(wanted_components); do
  component_healthy "${c}" || { all_healthy=0; break; }
done
if [ "${CLUSTER_NETWORK}" = 1 ] && [ "$(cat "${PID_DIR}/cluster-network.hash" 2>/dev/null)" \
  != "$(sha256sum "${CFG_DIR}/cluster-network.py" | cut -d' ' -f1)" ]; then
  all_healthy=0
fi
# KEDA's cert Secret goes with its namespace (a test's teardown): seeding it again needs the full path.
if [ "${all_healthy}" = 1 ] && [[ " ${CLUSTER_OPERATORS} " == *" keda "* ]] \
  && ! kubectl -n "${KEDA_NS}" get secret "${KEDA_SECRET}" -o name >/dev/null 2>&1; then
  all_healthy=0
fi
if [ "${all_healthy}" = 1 ] && [ "$(cat "${CLUSTER_DIR}/.setup-hash" 2>/dev/null)" = "$(setup_hash)" ]; then
  log "cluster in ${CLUSTER_DIR} is already up and healthy"
  print_summary "already running"
  exit 0
fi

# ------------------------------------------------------------------------- PKI
# TLS keys are ECDSA P-256 (fast to make); the ServiceAccount signing key is RSA.
gen_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
gen_ca() { # gen_ca <name> <common-name>: a self-signed CA, <name>.key and <name>.crt
  gen_key "${PKI_DIR}/$1.key"
  openssl req -x509 -new -key "${PKI_DIR}/$1.key" -sha256 -days 3650 \
    -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" \
    -out "${PKI_DIR}/$1.crt" 2>/dev/null
  chmod 0600 "${PKI_DIR}/$1.key"
}
gen_cert() { # gen_cert <name> <subject> <ext-section-body>
  local name="$1" subj="$2" ext="$3"
  [ -s "${PKI_DIR}/${name}.crt" ] && return 0
  gen_key "${PKI_DIR}/${name}.key"
  openssl req -new -key "${PKI_DIR}/${name}.key" -subj "${subj}" -out "${PKI_DIR}/${name}.csr" 2>/dev/null
  printf '%s\n' "${ext}" > "${PKI_DIR}/${name}.ext"
  openssl x509 -req -in "${PKI_DIR}/${name}.csr" -CA "${PKI_DIR}/ca.crt" -CAkey "${PKI_DIR}/ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "${PKI_DIR}/${name}.ext" -out "${PKI_DIR}/${name}.crt" 2>/dev/null
  rm -f "${PKI_DIR}/${name}.csr" "${PKI_DIR}/${name}.ext"
  chmod 0600 "${PKI_DIR}/${name}.key"
}

if [ ! -s "${PKI_DIR}/ca.crt" ]; then
  log "generating PKI in ${PKI_DIR}"
  # A half-written PKI is useless: start over.
  rm -f "${PKI_DIR}"/*.crt "${PKI_DIR}"/*.key "${PKI_DIR}"/*.pub "${PKI_DIR}"/*.srl
  gen_ca ca hermetic-kubernetes-ca
fi
CLIENT_EXT=$'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth'
gen_cert apiserver "/CN=kube-apiserver" \
  "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:${SERVICE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
gen_cert apiserver-kubelet-client "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client" "${CLIENT_EXT}"
gen_cert admin "/O=system:masters/CN=kubernetes-admin" "${CLIENT_EXT}"
gen_cert kube-controller-manager "/CN=system:kube-controller-manager" "${CLIENT_EXT}"
gen_cert kube-scheduler "/CN=system:kube-scheduler" "${CLIENT_EXT}"
# kwok writes node and pod status, node leases and deletes pods: give it admin.
gen_cert kwok "/O=system:masters/CN=kwok-controller" "${CLIENT_EXT}"
# Front-proxy (aggregation layer) CA and client, as kubeadm sets them up.
if [ ! -s "${PKI_DIR}/front-proxy-ca.crt" ]; then
  gen_ca front-proxy-ca hermetic-front-proxy-ca
  rm -f "${PKI_DIR}/front-proxy-client.crt"
fi
if [ ! -s "${PKI_DIR}/front-proxy-client.crt" ]; then
  gen_key "${PKI_DIR}/front-proxy-client.key"
  openssl req -new -key "${PKI_DIR}/front-proxy-client.key" -subj "/CN=front-proxy-client" \
    -out "${PKI_DIR}/front-proxy-client.csr" 2>/dev/null
  printf '%s\n' "${CLIENT_EXT}" > "${PKI_DIR}/front-proxy-client.ext"
  openssl x509 -req -in "${PKI_DIR}/front-proxy-client.csr" -CA "${PKI_DIR}/front-proxy-ca.crt" \
    -CAkey "${PKI_DIR}/front-proxy-ca.key" -CAcreateserial -days 3650 -sha256 \
    -extfile "${PKI_DIR}/front-proxy-client.ext" -out "${PKI_DIR}/front-proxy-client.crt" 2>/dev/null
  rm -f "${PKI_DIR}/front-proxy-client.csr" "${PKI_DIR}/front-proxy-client.ext"
  chmod 0600 "${PKI_DIR}/front-proxy-client.key"
fi
if [ ! -s "${PKI_DIR}/sa.key" ] || [ ! -s "${PKI_DIR}/sa.pub" ]; then
  openssl genrsa -out "${PKI_DIR}/sa.key" 2048 2>/dev/null
  openssl rsa -in "${PKI_DIR}/sa.key" -pubout -out "${PKI_DIR}/sa.pub" 2>/dev/null
  chmod 0600 "${PKI_DIR}/sa.key"
fi

write_kubeconfig() { # write_kubeconfig <file> <cert name> <user>
  local f="$1" cert="$2" user="$3"
  (
    umask 077
    cat > "${f}.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: hermetic
  cluster:
    server: ${API_URL}
    certificate-authority-data: $(base64 -w0 < "${PKI_DIR}/ca.crt")
users:
- name: ${user}
  user:
    client-certificate-data: $(base64 -w0 < "${PKI_DIR}/${cert}.crt")
    client-key-data: $(base64 -w0 < "${PKI_DIR}/${cert}.key")
contexts:
- name: ${user}@hermetic
  context:
    cluster: hermetic
    user: ${user}
current-context: ${user}@hermetic
preferences: {}
EOF
  )
  # Replace only on change (other engineers' tools may be reading it).
  if cmp -s "${f}.tmp" "${f}"; then rm -f "${f}.tmp"; else mv -f "${f}.tmp" "${f}"; fi
}
write_kubeconfig "${KUBECONFIG_ADMIN}" admin kubernetes-admin
write_kubeconfig "${PKI_DIR}/kube-controller-manager.kubeconfig" kube-controller-manager system:kube-controller-manager
write_kubeconfig "${PKI_DIR}/kube-scheduler.kubeconfig" kube-scheduler system:kube-scheduler
write_kubeconfig "${PKI_DIR}/kwok.kubeconfig" kwok kwok-controller

# ------------------------------------------------------------------- processes
port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# start_component <name> <port> <cmd...>: started in its own session so it
# outlives the calling shell (without the lock fd 9); PID and start time go to pids/.
start_component() {
  local name="$1" port="$2"; shift 2
  if component_pid "${name}" >/dev/null; then return 0; fi
  if [ -n "${port}" ] && port_busy "${port}"; then
    die "port ${port} for ${name} is in use by another process (not started by ${CLUSTER_DIR}); set the port env var"
  fi
  local logf="${LOG_DIR}/${name}.log" pidf="${PID_DIR}/${name}.pid" i
  [ -f "${logf}" ] && mv -f "${logf}" "${logf}.1"
  rm -f "${pidf}" "${PID_DIR}/${name}.start"
  log "starting ${name}"
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "${pidf}" "$@" >"${logf}" 2>&1 </dev/null 9>&- &
  for ((i = 0; i < 100; i++)); do [ -s "${pidf}" ] && break; sleep 0.05; done
  [ -s "${pidf}" ] || die "${name} did not start (see ${logf})"
  if ! proc_starttime "$(cat "${pidf}")" > "${PID_DIR}/${name}.start"; then
    sleep 0.2; tail -n 30 "${logf}" >&2 || true
    die "${name} exited at once (log: ${logf})"
  fi
}

# wait_for <name> <check-fn>
wait_for() {
  local name="$1" check="$2" deadline=$(( $(date +%s) + TIMEOUT ))
  until "${check}"; do
    if ! component_pid "${name}" >/dev/null; then
      tail -n 30 "${LOG_DIR}/${name}.log" >&2 || true
      die "${name} exited (log: ${LOG_DIR}/${name}.log; to start from scratch: hack/cluster-down.sh --purge)"
    fi
    [ "$(date +%s)" -lt "${deadline}" ] || die "${name} not healthy after ${TIMEOUT}s (log: ${LOG_DIR}/${name}.log)"
    sleep 0.2
  done
}

# A component that runs but is unhealthy (e.g. left over from a crash) is restarted.
restart_if_unhealthy() {
  local name="$1" pid i
  if pid="$(component_pid "${name}")" && ! component_healthy "${name}"; then
    # It may just be starting or busy (the cluster is shared): be patient
    # before killing it.
    local healthy=0
    for ((i = 0; i < 30; i++)); do
      sleep 0.5
      if component_healthy "${name}"; then healthy=1; break; fi
      component_pid "${name}" >/dev/null || break
    done
    if [ "${healthy}" = 0 ] && component_pid "${name}" >/dev/null; then
      log "${name} (pid ${pid}) is running but unhealthy: restarting it"
      signal_component TERM "${pid}"
      for ((i = 0; i < 100; i++)); do component_pid "${name}" >/dev/null || break; sleep 0.1; done
      # SIGKILL only if the PID still is that process (never a recycled PID).
      if component_pid "${name}" >/dev/null; then signal_component KILL "${pid}"; sleep 0.5; fi
    fi
  fi
}

# Network safety: the apiserver reaches "the cluster" (webhooks and APIServices
# behind Services, kubelet logs/exec, the pod/service proxy) only through this
# egress selector: HTTP CONNECT over the Unix socket of the cluster network
# proxy, which connects a Service's ClusterIP:port to the loopback port of the
# host process that serves it (network/routes.json) and refuses everything
# else. Without the proxy (CLUSTER_NETWORK=0) the socket does not exist and
# every such call fails at once. Nothing is ever sent off the machine.
mkdir -p "${NETWORK_DIR}"
chmod 0700 "${NETWORK_DIR}"
[ -e "${NETWORK_ROUTES}" ] || echo '{}' > "${NETWORK_ROUTES}"
cat > "${CLUSTER_DIR}/egress-selector.yaml.tmp" <<EOF
apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: ${NETWORK_SOCKET}
- name: controlplane
  connection:
    proxyProtocol: Direct
- name: etcd
  connection:
    proxyProtocol: Direct
EOF
if cmp -s "${CLUSTER_DIR}/egress-selector.yaml.tmp" "${CLUSTER_DIR}/egress-selector.yaml"; then
  rm -f "${CLUSTER_DIR}/egress-selector.yaml.tmp"
else
  mv -f "${CLUSTER_DIR}/egress-selector.yaml.tmp" "${CLUSTER_DIR}/egress-selector.yaml"
  # The apiserver reads it only at start: one started with another file restarts.
  if pid="$(component_pid kube-apiserver)"; then
    log "egress selector changed: restarting kube-apiserver (pid ${pid})"
    signal_component TERM "${pid}"
    for ((i = 0; i < 200; i++)); do component_pid kube-apiserver >/dev/null || break; sleep 0.1; done
    if component_pid kube-apiserver >/dev/null; then signal_component KILL "${pid}"; sleep 0.5; fi
  fi
fi
rm -f "${CLUSTER_DIR}/no-cluster-network.sock"

# Audit log of what the admin kubeconfig (the playbooks, helm, kubectl) asks, at Metadata level: the budget
# test (tests/budget) counts the API reads of a no-op rerun in it. Controllers, scheduler and kwok are not logged.
cat > "${CLUSTER_DIR}/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  verbs: [watch]
- level: Metadata
  users: [kubernetes-admin]
- level: None
EOF

mkdir -p "${CLUSTER_DIR}/etcd"
restart_if_unhealthy etcd
start_component etcd "${CLUSTER_ETCD_PORT}" "${BIN_DIR}/etcd" \
  --name=hermetic \
  --data-dir="${CLUSTER_DIR}/etcd" \
  --listen-client-urls="${ETCD_URL}" \
  --advertise-client-urls="${ETCD_URL}" \
  --listen-peer-urls="http://${CLUSTER_HOST}:${CLUSTER_ETCD_PEER_PORT}" \
  --initial-advertise-peer-urls="http://${CLUSTER_HOST}:${CLUSTER_ETCD_PEER_PORT}" \
  --initial-cluster="hermetic=http://${CLUSTER_HOST}:${CLUSTER_ETCD_PEER_PORT}" \
  --quota-backend-bytes=8589934592 \
  --snapshot-count=10000 \
  --unsafe-no-fsync \
  --log-level=warn
wait_for etcd etcd_healthy

if [ "${CLUSTER_NETWORK}" = 1 ]; then
  restart_if_unhealthy cluster-network
  # A changed proxy script (e.g. after a pull) is restarted: it has no state but its routes file.
  net_hash="$(sha256sum "${CFG_DIR}/cluster-network.py" | cut -d' ' -f1)"
  if pid="$(component_pid cluster-network)" && [ "$(cat "${PID_DIR}/cluster-network.hash" 2>/dev/null)" != "${net_hash}" ]; then
    log "cluster-network.py changed: restarting cluster-network (pid ${pid})"
    signal_component TERM "${pid}"
    for ((i = 0; i < 50; i++)); do component_pid cluster-network >/dev/null || break; sleep 0.1; done
    if component_pid cluster-network >/dev/null; then signal_component KILL "${pid}"; sleep 0.2; fi
  fi
  # It needs the apiserver only when a call comes (to read the Services), so it starts first.
  start_component cluster-network "" "${CLUSTER_NETWORK_PYTHON}" -u "${CFG_DIR}/cluster-network.py" serve \
    --socket="${NETWORK_SOCKET}" --routes="${NETWORK_ROUTES}" --server="${API_URL}" \
    --cacert="${PKI_DIR}/ca.crt" --cert="${PKI_DIR}/admin.crt" --key="${PKI_DIR}/admin.key"
  echo "${net_hash}" > "${PID_DIR}/cluster-network.hash"
fi

restart_if_unhealthy kube-apiserver
start_component kube-apiserver "${CLUSTER_APISERVER_PORT}" "${BIN_DIR}/kube-apiserver" \
  --advertise-address="${CLUSTER_HOST}" \
  --bind-address="${CLUSTER_HOST}" \
  --secure-port="${CLUSTER_APISERVER_PORT}" \
  --etcd-servers="${ETCD_URL}" \
  --tls-cert-file="${PKI_DIR}/apiserver.crt" \
  --tls-private-key-file="${PKI_DIR}/apiserver.key" \
  --client-ca-file="${PKI_DIR}/ca.crt" \
  --kubelet-client-certificate="${PKI_DIR}/apiserver-kubelet-client.crt" \
  --kubelet-client-key="${PKI_DIR}/apiserver-kubelet-client.key" \
  --requestheader-client-ca-file="${PKI_DIR}/front-proxy-ca.crt" \
  --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User \
  --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="${PKI_DIR}/front-proxy-client.crt" \
  --proxy-client-key-file="${PKI_DIR}/front-proxy-client.key" \
  --authorization-mode=Node,RBAC \
  --enable-admission-plugins=NodeRestriction \
  --allow-privileged=true \
  --service-account-issuer="${SA_ISSUER}" \
  --service-account-key-file="${PKI_DIR}/sa.pub" \
  --service-account-signing-key-file="${PKI_DIR}/sa.key" \
  --service-cluster-ip-range="${SERVICE_CIDR}" \
  --endpoint-reconciler-type=none \
  --egress-selector-config-file="${CLUSTER_DIR}/egress-selector.yaml" \
  --audit-policy-file="${CLUSTER_DIR}/audit-policy.yaml" \
  --audit-log-path="${LOG_DIR}/audit.log" \
  --audit-log-maxsize=200 \
  --audit-log-maxbackup=1 \
  --profiling=false
wait_for kube-apiserver apiserver_ready
if [ "${CLUSTER_NETWORK}" = 1 ]; then wait_for cluster-network cluster_network_healthy; fi

restart_if_unhealthy kube-controller-manager
start_component kube-controller-manager "${CLUSTER_KCM_PORT}" "${BIN_DIR}/kube-controller-manager" \
  --kubeconfig="${PKI_DIR}/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig="${PKI_DIR}/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig="${PKI_DIR}/kube-controller-manager.kubeconfig" \
  --bind-address="${CLUSTER_HOST}" \
  --secure-port="${CLUSTER_KCM_PORT}" \
  --controllers='*' \
  --use-service-account-credentials=true \
  --service-account-private-key-file="${PKI_DIR}/sa.key" \
  --root-ca-file="${PKI_DIR}/ca.crt" \
  --cluster-signing-cert-file="${PKI_DIR}/ca.crt" \
  --cluster-signing-key-file="${PKI_DIR}/ca.key" \
  --service-cluster-ip-range="${SERVICE_CIDR}" \
  --cluster-name=hermetic \
  --leader-elect=false \
  --kube-api-qps=100 --kube-api-burst=200 \
  --profiling=false

restart_if_unhealthy kube-scheduler
start_component kube-scheduler "${CLUSTER_SCHEDULER_PORT}" "${BIN_DIR}/kube-scheduler" \
  --kubeconfig="${PKI_DIR}/kube-scheduler.kubeconfig" \
  --authentication-kubeconfig="${PKI_DIR}/kube-scheduler.kubeconfig" \
  --authorization-kubeconfig="${PKI_DIR}/kube-scheduler.kubeconfig" \
  --bind-address="${CLUSTER_HOST}" \
  --secure-port="${CLUSTER_SCHEDULER_PORT}" \
  --leader-elect=false \
  --kube-api-qps=100 --kube-api-burst=200 \
  --profiling=false

restart_if_unhealthy kwok
start_component kwok "${CLUSTER_KWOK_PORT}" "${BIN_DIR}/kwok" \
  --kubeconfig="${PKI_DIR}/kwok.kubeconfig" \
  --config="${CFG_DIR}/kwok-stages.yaml" \
  --manage-all-nodes=false \
  --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-lease-duration-seconds=40 \
  --cidr="${POD_CIDR}" \
  --node-ip="${CLUSTER_HOST}" \
  --server-address="${CLUSTER_HOST}:${CLUSTER_KWOK_PORT}"

start_component pv-recycler "" "${CFG_DIR}/pv-recycler.sh" "${BIN_DIR}/kubectl" "${KUBECONFIG_ADMIN}"

if [ "${OPENBAO}" = 1 ]; then
  restart_if_unhealthy openbao
  if ! component_pid openbao >/dev/null; then
    mkdir -p "${CLUSTER_DIR}/openbao"
    chmod 0700 "${CLUSTER_DIR}/openbao"
    rm -f "${CLUSTER_DIR}/openbao/addr" "${CLUSTER_DIR}/openbao/token"
    # Dev mode: in memory, unsealed, fresh random root token on every start.
    BAO_TOKEN="$(openssl rand -hex 24)"
    (umask 077; printf '%s\n' "${BAO_TOKEN}" > "${CLUSTER_DIR}/openbao/token.tmp")
    # The token is handed over in the environment, not on the command line.
    BAO_DEV_ROOT_TOKEN_ID="${BAO_TOKEN}" HOME="${CLUSTER_DIR}/openbao" \
      start_component openbao "${OPENBAO_PORT}" "${OPENBAO_BIN}" server -dev \
        -dev-listen-address="${CLUSTER_HOST}:${OPENBAO_PORT}" -dev-no-store-token -log-level=warn
    unset BAO_TOKEN
    wait_for openbao openbao_healthy
    mv -f "${CLUSTER_DIR}/openbao/token.tmp" "${CLUSTER_DIR}/openbao/token"
    (umask 077; printf '%s\n' "${BAO_URL}" > "${CLUSTER_DIR}/openbao/addr")
  fi
fi

wait_for kube-controller-manager kcm_healthy
wait_for kube-scheduler scheduler_healthy
wait_for kwok kwok_healthy

# ---------------------------------------------------------------- cluster objects
want_hash="$(setup_hash)"
if [ "$(cat "${CLUSTER_DIR}/.setup-hash" 2>/dev/null)" != "${want_hash}" ]; then
  log "applying nodes, StorageClass, PersistentVolumes and CRDs"
  mkdir -p "${CLUSTER_DIR}/volumes"
  {
    for ((i = 1; i <= PV_COUNT; i++)); do
      n="$(printf 'pv-%02d' "${i}")"
      mkdir -p "${CLUSTER_DIR}/volumes/${n}"
      cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: hermetic-${n}
  labels:
    hermetic.tensafe.io/pv: "true"
spec:
  storageClassName: standard
  capacity:
    storage: ${PV_SIZE}
  accessModes: [ReadWriteOnce, ReadOnlyMany, ReadWriteMany]
  persistentVolumeReclaimPolicy: Retain
  volumeMode: Filesystem
  hostPath:
    path: ${CLUSTER_DIR}/volumes/${n}
    type: DirectoryOrCreate
EOF
    done
  } > "${CLUSTER_DIR}/pvs.yaml"
  # Server-side apply: one request per object (client-side apply is ~10x slower).
  kubectl apply --server-side --force-conflicts --field-manager=hermetic-cluster-up \
    -f "${CFG_DIR}/nodes.yaml" -f "${CFG_DIR}/storage.yaml" -f "${CLUSTER_DIR}/pvs.yaml" >/dev/null
  if [ "${CRDS}" = 1 ]; then
    mapfile -t crd_files < <(crd_files)
    if [ -f "${KEDA_CRDS_CHART}" ]; then
      "${BIN_DIR}/helm" template keda "${KEDA_CRDS_CHART}" --set crds.install=true > "${CLUSTER_DIR}/keda-crds.yaml.all"
      "${ROOT}/.venv/bin/python" -c 'import sys, yaml; docs = [d for d in yaml.safe_load_all(sys.stdin) if d and d.get("kind") == "CustomResourceDefinition"]; print(yaml.safe_dump_all(docs))' \
        < "${CLUSTER_DIR}/keda-crds.yaml.all" > "${CLUSTER_DIR}/keda-crds.yaml"
      rm -f "${CLUSTER_DIR}/keda-crds.yaml.all"
      crd_files+=("${CLUSTER_DIR}/keda-crds.yaml")
    fi
    if [ "${#crd_files[@]}" -gt 0 ]; then
      args=()
      for f in "${crd_files[@]}"; do args+=(-f "${f}"); done
      kubectl apply --server-side --force-conflicts --field-manager=hermetic-cluster-up "${args[@]}" >/dev/null
      kubectl wait --for=condition=Established --timeout="${TIMEOUT}s" "${args[@]}" >/dev/null
      log "${#crd_files[@]} CRDs from ${CRDS_DIR} Established"
    fi
  fi
  echo "${want_hash}" > "${CLUSTER_DIR}/.setup-hash"
fi

kubectl wait --for=condition=Ready node --all --timeout="${TIMEOUT}s" >/dev/null \
  || die "nodes not Ready (kwok log: ${LOG_DIR}/kwok.log)"
deadline=$(( $(date +%s) + TIMEOUT ))
until kubectl -n default get serviceaccount default >/dev/null 2>&1; do
  [ "$(date +%s)" -lt "${deadline}" ] || die "default ServiceAccount not created (log: ${LOG_DIR}/kube-controller-manager.log)"
  sleep 0.2
done

if [ -n "${CLUSTER_OPERATORS}" ]; then
  start_operators
  log "operators running: ${CLUSTER_OPERATORS} (logs: ${LOG_DIR}/<component>.log)"
fi

cat > "${CLUSTER_DIR}/env" <<EOF
# Source me: . ${CLUSTER_DIR}/env   (written by hack/cluster-up.sh)
export HERMETIC_CLUSTER_DIR="${CLUSTER_DIR}"
export KUBECONFIG="${KUBECONFIG_ADMIN}"
export K8S_AUTH_KUBECONFIG="${KUBECONFIG_ADMIN}"
export KUBE_CA_CERT="${PKI_DIR}/ca.crt"
export KUBE_API_SERVER="${API_URL}"
export PATH="${BIN_DIR}:\${PATH}"
EOF
if [ "${OPENBAO}" = 1 ]; then
  cat >> "${CLUSTER_DIR}/env" <<EOF
export VAULT_ADDR="${BAO_URL}"
export BAO_ADDR="${BAO_URL}"
export OPENBAO_TOKEN_FILE="${CLUSTER_DIR}/openbao/token"
export VAULT_TOKEN="\$(cat "${CLUSTER_DIR}/openbao/token" 2>/dev/null)"
export BAO_TOKEN="\${VAULT_TOKEN}"
EOF
fi

print_summary "up"
