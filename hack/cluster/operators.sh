# shellcheck shell=bash
# The operators of the hermetic cluster as host processes (sourced by hack/cluster-up.sh, which
# defines start_component, wait_for, gen_cert, write_kubeconfig, kubectl and the health checks).
# See docs/hermetic-cluster.md, "Operators".
#
# CLUSTER_OPERATORS="keda prometheus-operator cert-manager external-secrets" names the ones to run (the default; "" runs none). Each runs
#   - as its own user, hermetic:operator:<name>: a client certificate of the cluster CA, bound to
#     cluster-admin by the ClusterRoleBinding hermetic:operator:<name>, in pki/operator-<name>.kubeconfig;
#   - with a serving certificate for <service>.<namespace>.svc from a small CA of its own
#     (operators/<name>/certs/), and a route of the cluster network for the Services the apiserver calls;
#   - with pid file pids/<component>.pid and log logs/<component>.log like the control plane.
#
# KEDA (namespace CLUSTER_KEDA_NAMESPACE=keda, names as the kedacore/keda chart creates them):
#   keda-operator            ScaledObjects -> HPAs; the gRPC metrics service for the metrics API server
#   keda-metrics-apiserver   v1beta1.external.metrics.k8s.io, route <ns>/keda-operator-metrics-apiserver:443
#   keda-admission-webhooks  ValidatingWebhookConfiguration keda-admission, route <ns>/keda-admission-webhooks:443
# Certificates: the chart leaves caBundle empty and the operator's own cert rotation (--enable-cert-rotation,
# as the chart runs it) fills it from the Secret kedaorg-certs. We seed that Secret with our CA and certificate,
# made the way the rotator checks them (CA "KEDA", RSA/PKCS#1, server cert for keda-operator and the
# other Services, server+client auth), so the rotator keeps them and patches the APIService and the webhooks'
# caBundle itself, exactly as on a real cluster; the three processes read the same files (--cert-dir) a
# kubelet would have mounted from that Secret.
#
# Prometheus Operator (the kube-prometheus-stack chart's operator Service CLUSTER_PROMETHEUS_OPERATOR_SERVICE,
# default monitoring/kube-prometheus-stack-operator): turns Prometheus objects into StatefulSets and their
# generated configuration Secrets; serves HTTPS with a certificate for that Service, routed at :443.
#
# External Secrets (external-secrets v0.16.2): the controller alone (ExternalSecrets, SecretStores,
# ClusterSecretStores); the apiserver never calls it, so no route, no serving certificate, and neither its
# webhook nor its cert-controller (see docs/hermetic-cluster.md). It reaches OpenBao at its loopback address.
#
# Ports: CLUSTER_OPERATORS_PORT_BASE (20400) + 0..6, and + 10 for External Secrets; see operator_port below.

OPERATORS_DIR="${CLUSTER_DIR}/operators"
KEDA_NS="${CLUSTER_KEDA_NAMESPACE:-keda}"
KEDA_CERT_DIR="${OPERATORS_DIR}/keda/certs"
KEDA_SECRET=kedaorg-certs
PROM_OP_SERVICE="${CLUSTER_PROMETHEUS_OPERATOR_SERVICE:-monitoring/kube-prometheus-stack-operator}"
PROM_OP_CERT_DIR="${OPERATORS_DIR}/prometheus-operator/certs"
# The operator enables its Prometheus/Alertmanager/... controllers only for CRDs installed when it starts: apply
# the ones of the chart it comes with first (helm skips CRDs that exist when the chart is installed later).
PROM_OP_CRDS_CHART="${CLUSTER_PROMETHEUS_OPERATOR_CRDS_CHART:-${ROOT}/../shared/charts/kube-prometheus-stack-88.3.0.tgz}"

# operator_port <what>: the loopback port of one listener
operator_port() {
  local b="${CLUSTER_OPERATORS_PORT_BASE}"
  case "$1" in
    keda-operator-health) echo $(( b + 0 )) ;;
    keda-operator-grpc) echo $(( b + 1 )) ;;
    keda-metrics-apiserver) echo $(( b + 2 )) ;;      # HTTPS, the APIService's backend
    keda-metrics-apiserver-metrics) echo $(( b + 3 )) ;;
    keda-admission-webhooks) echo $(( b + 4 )) ;;     # HTTPS, the webhooks' backend
    keda-admission-webhooks-health) echo $(( b + 5 )) ;;
    prometheus-operator) echo $(( b + 6 )) ;;         # HTTPS: /healthz, /metrics, admission
    cert-manager-controller) echo $(( b + 12 )) ;;    # HTTP /healthz
    external-secrets-metrics) echo $(( b + 10 )) ;;   # HTTP /metrics, its only listener (also the health check)
  esac
}

operator_components() { # operator_components <operator>
  case "$1" in
    keda) echo keda-operator keda-metrics-apiserver keda-admission-webhooks ;;
    prometheus-operator) echo prometheus-operator ;;
    cert-manager) echo cert-manager-controller ;;
    external-secrets) echo external-secrets ;;
    *) return 1 ;;
  esac
}

operator_healthy() { # operator_healthy <component>
  case "$1" in
    keda-operator) curl -fsS --max-time 2 "http://${CLUSTER_HOST}:$(operator_port keda-operator-health)/healthz" >/dev/null 2>&1 ;;
    keda-metrics-apiserver) curl -fsSk --max-time 2 "https://${CLUSTER_HOST}:$(operator_port keda-metrics-apiserver)/healthz" >/dev/null 2>&1 ;;
    keda-admission-webhooks) curl -fsS --max-time 2 "http://${CLUSTER_HOST}:$(operator_port keda-admission-webhooks-health)/healthz" >/dev/null 2>&1 ;;
    prometheus-operator) curl -fsSk --max-time 2 "https://${CLUSTER_HOST}:$(operator_port prometheus-operator)/healthz" >/dev/null 2>&1 ;;
    cert-manager-controller) curl -fsS --max-time 2 "http://${CLUSTER_HOST}:$(operator_port cert-manager-controller)/healthz" >/dev/null 2>&1 ;;
    # No health endpoint in its controller: the metrics server answers once the manager runs.
    external-secrets) curl -fsS --max-time 2 -o /dev/null "http://${CLUSTER_HOST}:$(operator_port external-secrets-metrics)/metrics" 2>/dev/null ;;
  esac
}

# A small CA and one server certificate (RSA, PKCS#1 keys: what KEDA's cert rotator can parse) in <dir>:
# ca.crt ca.key tls.crt tls.key. Kept while the CA and the certificate's names stay the same.
# operator_pki <dir> <ca CN> <ca O> <server CN> <comma-separated DNS names>
operator_pki() {
  local dir="$1" ca_cn="$2" ca_o="$3" cn="$4" names="$5" san="" n
  for n in ${names//,/ }; do san+="DNS:${n},"; done
  san+="DNS:localhost,IP:127.0.0.1"
  if [ -s "${dir}/tls.crt" ] && [ "$(cat "${dir}/.names" 2>/dev/null)" = "${ca_cn}/${ca_o}/${cn}/${san}" ]; then
    return 0
  fi
  mkdir -p "${dir}"; chmod 0700 "${dir}"
  (
    umask 077
    openssl genrsa -traditional -out "${dir}/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "${dir}/ca.key" -sha256 -days 3650 -subj "/O=${ca_o}/CN=${ca_cn}" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" \
      -addext "subjectAltName=DNS:${ca_cn}" -out "${dir}/ca.crt" 2>/dev/null
    openssl genrsa -traditional -out "${dir}/tls.key" 2048 2>/dev/null
    openssl req -new -key "${dir}/tls.key" -subj "/CN=${cn}" -out "${dir}/tls.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=${san}" > "${dir}/tls.ext"
    openssl x509 -req -in "${dir}/tls.csr" -CA "${dir}/ca.crt" -CAkey "${dir}/ca.key" -CAcreateserial \
      -days 3650 -sha256 -extfile "${dir}/tls.ext" -out "${dir}/tls.crt" 2>/dev/null
  )
  rm -f "${dir}/tls.csr" "${dir}/tls.ext" "${dir}/ca.srl"
  echo "${ca_cn}/${ca_o}/${cn}/${san}" > "${dir}/.names"
}

# svc_names <service> <namespace>: the names a Service answers to in the cluster
svc_names() { echo "$1,$1.$2,$1.$2.svc,$1.$2.svc.cluster.local"; }

# operator_identity <operator>: client certificate, kubeconfig and cluster-admin binding of hermetic:operator:<name>
operator_identity() {
  local op="$1"
  gen_cert "operator-${op}" "/CN=hermetic:operator:${op}" "${CLIENT_EXT}"
  write_kubeconfig "${PKI_DIR}/operator-${op}.kubeconfig" "operator-${op}" "hermetic:operator:${op}"
  kubectl apply --server-side --force-conflicts --field-manager=hermetic-cluster-up -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: hermetic:operator:${op}
  labels: {hermetic.tensafe.io/operator: "${op}"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "hermetic:operator:${op}"}
EOF
}

need_bins() { # need_bins <operator> <binary...>
  local op="$1" b; shift
  for b in "$@"; do
    [ -x "${BIN_DIR}/${b}" ] || die "${BIN_DIR}/${b} missing for CLUSTER_OPERATORS=${op}: run 'make operators' (BUILD_TOOLS_ONLY=${op} hack/build-tools.sh) first"
  done
}

start_keda() {
  local kc="${PKI_DIR}/operator-keda.kubeconfig" names c
  need_bins keda keda-operator keda-adapter keda-webhooks
  operator_identity keda
  names="$(svc_names keda-operator "${KEDA_NS}"),$(svc_names keda-operator-metrics-apiserver "${KEDA_NS}"),$(svc_names keda-admission-webhooks "${KEDA_NS}")"
  operator_pki "${KEDA_CERT_DIR}" KEDA KEDAORG keda-operator "${names}"
  # The namespace (the chart installs into it; helm --create-namespace and the role accept an existing one) and the
  # cert Secret the operator's rotator reads: ours, so it keeps it and injects our CA into the caBundles.
  kubectl create namespace "${KEDA_NS}" --dry-run=client -o yaml \
    | kubectl apply --server-side --field-manager=hermetic-cluster-up -f - >/dev/null
  kubectl -n "${KEDA_NS}" create secret generic "${KEDA_SECRET}" --dry-run=client -o yaml \
      --from-file=ca.crt="${KEDA_CERT_DIR}/ca.crt" --from-file=ca.key="${KEDA_CERT_DIR}/ca.key" \
      --from-file=tls.crt="${KEDA_CERT_DIR}/tls.crt" --from-file=tls.key="${KEDA_CERT_DIR}/tls.key" \
    | kubectl label --local -f - -o yaml app=keda-operator app.kubernetes.io/name=keda-operator \
      app.kubernetes.io/part-of=keda hermetic.tensafe.io/seeded-by=cluster-up \
    | kubectl apply --server-side --force-conflicts --field-manager=hermetic-cluster-up -f - >/dev/null
  if [ "${CLUSTER_NETWORK}" = 1 ]; then
    "${ROOT}/hack/cluster/route.sh" add "${KEDA_NS}/keda-operator-metrics-apiserver:443" "$(operator_port keda-metrics-apiserver)" >/dev/null
    "${ROOT}/hack/cluster/route.sh" add "${KEDA_NS}/keda-admission-webhooks:443" "$(operator_port keda-admission-webhooks)" >/dev/null
  fi
  local envs=(env KUBECONFIG="${kc}" WATCH_NAMESPACE="" POD_NAMESPACE="${KEDA_NS}" KEDA_CLUSTER_OBJECT_NAMESPACE="${KEDA_NS}"
              OPERATOR_NAME=keda-operator KEDA_HTTP_DEFAULT_TIMEOUT=3000 KEDA_SERVICE_MIN_TLS_VERSION=TLS12)
  local zap=(--zap-log-level=info --zap-encoder=console --zap-time-encoding=rfc3339)
  for c in $(operator_components keda); do restart_if_unhealthy "${c}"; done
  # The flags of the chart's Deployments, with loopback listeners and the certificates in KEDA_CERT_DIR.
  POD_NAME=keda-operator-hermetic start_component keda-operator "$(operator_port keda-operator-health)" "${envs[@]}" \
    "${BIN_DIR}/keda-operator" --kubeconfig="${kc}" --leader-elect=false --disable-compression=true "${zap[@]}" \
    --metrics-bind-address=0 --health-probe-bind-address="${CLUSTER_HOST}:$(operator_port keda-operator-health)" \
    --metrics-service-bind-address="${CLUSTER_HOST}:$(operator_port keda-operator-grpc)" \
    --enable-webhook-patching=true --cert-dir="${KEDA_CERT_DIR}" --enable-cert-rotation=true \
    --cert-secret-name="${KEDA_SECRET}" --operator-service-name=keda-operator \
    --metrics-server-service-name=keda-operator-metrics-apiserver --webhooks-service-name=keda-admission-webhooks \
    --k8s-cluster-name=kubernetes-default --k8s-cluster-domain=cluster.local --enable-prometheus-metrics=false \
    --ca-dir="${KEDA_CERT_DIR}"
  start_component keda-metrics-apiserver "$(operator_port keda-metrics-apiserver)" "${envs[@]}" \
    "${BIN_DIR}/keda-adapter" --kubeconfig="${kc}" --lister-kubeconfig="${kc}" \
    --authentication-kubeconfig="${kc}" --authorization-kubeconfig="${kc}" \
    --bind-address="${CLUSTER_HOST}" --secure-port="$(operator_port keda-metrics-apiserver)" \
    --port="$(operator_port keda-metrics-apiserver-metrics)" --disable-compression=true \
    --metrics-service-address="${CLUSTER_HOST}:$(operator_port keda-operator-grpc)" \
    --metrics-service-grpc-authority="keda-operator.${KEDA_NS}.svc.cluster.local" \
    --client-ca-file="${KEDA_CERT_DIR}/ca.crt" --tls-cert-file="${KEDA_CERT_DIR}/tls.crt" \
    --tls-private-key-file="${KEDA_CERT_DIR}/tls.key" --cert-dir="${KEDA_CERT_DIR}" "${zap[@]}"
  POD_NAME=keda-admission-webhooks-hermetic start_component keda-admission-webhooks "$(operator_port keda-admission-webhooks)" \
    "${envs[@]}" "${BIN_DIR}/keda-webhooks" --kubeconfig="${kc}" "${zap[@]}" --cert-dir="${KEDA_CERT_DIR}" \
    --port="$(operator_port keda-admission-webhooks)" \
    --health-probe-bind-address="${CLUSTER_HOST}:$(operator_port keda-admission-webhooks-health)" --metrics-bind-address=0
}

start_prometheus_operator() {
  local ns="${PROM_OP_SERVICE%%/*}" svc="${PROM_OP_SERVICE#*/}"
  need_bins prometheus-operator prometheus-operator
  operator_identity prometheus-operator
  operator_pki "${PROM_OP_CERT_DIR}" hermetic-prometheus-operator-ca hermetic prometheus-operator "$(svc_names "${svc}" "${ns}")"
  if [ "${CLUSTER_NETWORK}" = 1 ]; then
    "${ROOT}/hack/cluster/route.sh" add "${ns}/${svc}:443" "$(operator_port prometheus-operator)" >/dev/null
  fi
  if [ -f "${PROM_OP_CRDS_CHART}" ]; then
    local tmp; tmp="$(mktemp -d)"
    tar -xzf "${PROM_OP_CRDS_CHART}" -C "${tmp}" --wildcards '*/charts/crds/crds/*.yaml'
    kubectl apply --server-side --force-conflicts --field-manager=hermetic-cluster-up-operators \
      -f "${tmp}"/*/charts/crds/crds/ >/dev/null
    kubectl wait --for=condition=Established --timeout="${TIMEOUT}s" -f "${tmp}"/*/charts/crds/crds/ >/dev/null
    rm -rf "${tmp}"
  else
    log "WARNING: ${PROM_OP_CRDS_CHART} not found: the Prometheus Operator runs only the controllers whose CRDs exist now"
  fi
  restart_if_unhealthy prometheus-operator
  # No kubeconfig flag: the operator takes the apiserver address and the client certificate of the same user.
  start_component prometheus-operator "$(operator_port prometheus-operator)" "${BIN_DIR}/prometheus-operator" \
    --apiserver="${API_URL}" --ca-file="${PKI_DIR}/ca.crt" \
    --cert-file="${PKI_DIR}/operator-prometheus-operator.crt" --key-file="${PKI_DIR}/operator-prometheus-operator.key" \
    --web.listen-address="${CLUSTER_HOST}:$(operator_port prometheus-operator)" --web.enable-tls=true \
    --web.cert-file="${PROM_OP_CERT_DIR}/tls.crt" --web.key-file="${PROM_OP_CERT_DIR}/tls.key" \
    --log-format=logfmt --log-level=info
}

# pinned_module_dir <tools/<name> dir> <module>: the directory of the module, at the version that tools/<name>/go.mod
# requires, in the Go module cache (where the operator's build put it; else go mod download fetches it). Run from /
# (no go.mod there). Prints nothing when the download fails.
pinned_module_dir() {
  local go v
  go="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
  v="$(awk -v m="$2" '($1 == m) { print $2; exit } ($1 == "require" && $2 == m) { print $3; exit }' "$1/go.mod")"
  (cd / && GOFLAGS="" GOTOOLCHAIN=local "${go}" mod download -json "$2@${v}" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
}

# cert-manager v1.21.2's controllers (tools/cert-manager: certificates, SelfSigned/CA issuers, approver, Ingress shim;
# no webhook: nothing here needs its defaulting or conversion). Its CRDs come from the pinned module itself
# (deploy/crds in the module cache: `go mod download`, no copy in this repository). The ClusterIssuer
# CERT_MANAGER_ISSUER (self-signed) is the one inventories/local names for the app's Ingress.
CERT_MANAGER_NS="${CLUSTER_CERT_MANAGER_NAMESPACE:-cert-manager}"
CERT_MANAGER_ISSUER="${CLUSTER_CERT_MANAGER_ISSUER:-hermetic-selfsigned}"
start_cert_manager() {
  local dir
  need_bins cert-manager cert-manager-controller
  operator_identity cert-manager
  dir="$(pinned_module_dir "${ROOT}/tools/cert-manager" github.com/cert-manager/cert-manager)"
  [ -d "${dir}/deploy/crds" ] || die "cert-manager CRDs not found in the module cache (${dir:-go mod download failed}/deploy/crds)"
  kubectl apply --server-side --force-conflicts --field-manager=hermetic-cluster-up-operators -f "${dir}/deploy/crds/" >/dev/null
  kubectl wait --for=condition=Established --timeout="${TIMEOUT}s" -f "${dir}/deploy/crds/" >/dev/null
  kubectl create namespace "${CERT_MANAGER_NS}" --dry-run=client -o yaml \
    | kubectl apply --server-side --field-manager=hermetic-cluster-up -f - >/dev/null
  restart_if_unhealthy cert-manager-controller
  start_component cert-manager-controller "$(operator_port cert-manager-controller)" "${BIN_DIR}/cert-manager-controller" \
    --kubeconfig="${PKI_DIR}/operator-cert-manager.kubeconfig" --cluster-resource-namespace="${CERT_MANAGER_NS}" \
    --health-listen-address="${CLUSTER_HOST}:$(operator_port cert-manager-controller)"
  kubectl apply --server-side --force-conflicts --field-manager=hermetic-cluster-up -f - >/dev/null <<EOF
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata:
  name: ${CERT_MANAGER_ISSUER}
  labels: {hermetic.tensafe.io/operator: cert-manager}
spec:
  selfSigned: {}
EOF
}

# The GeneratorState CRD of the pinned External Secrets module: its controller watches GeneratorStates unconditionally
# (no flag turns that reconciler off) and ../shared/crds has only ExternalSecret, SecretStore and ClusterSecretStore.
eso_module_crd() { # eso_module_crd <file under config/crds/bases>
  local dir
  dir="$(pinned_module_dir "${ROOT}/tools/external-secrets" github.com/external-secrets/external-secrets)"
  [ -f "${dir}/config/crds/bases/$1" ] || die "external-secrets: $1 not found in the pinned module github.com/external-secrets/external-secrets (${dir:-go mod download failed})"
  echo "${dir}/config/crds/bases/$1"
}

start_external_secrets() {
  local kc="${PKI_DIR}/operator-external-secrets.kubeconfig" crd
  need_bins external-secrets external-secrets
  operator_identity external-secrets
  kubectl get crd externalsecrets.external-secrets.io clustersecretstores.external-secrets.io secretstores.external-secrets.io \
    -o name >/dev/null 2>&1 || die "external-secrets: its CRDs (../shared/crds/external-secrets-*) are not installed: run with CRDS=1"
  crd="$(eso_module_crd generators.external-secrets.io_generatorstates.yaml)"
  kubectl apply --server-side --force-conflicts --field-manager=hermetic-cluster-up-operators -f "${crd}" >/dev/null
  kubectl wait --for=condition=Established --timeout="${TIMEOUT}s" -f "${crd}" >/dev/null
  restart_if_unhealthy external-secrets
  # The chart's controller flags, minus the reconcilers whose CRDs are not installed (PushSecret,
  # ClusterExternalSecret, ClusterPushSecret). The kubeconfig comes from KUBECONFIG (controller-runtime's default).
  start_component external-secrets "$(operator_port external-secrets-metrics)" env KUBECONFIG="${kc}" \
    "${BIN_DIR}/external-secrets" --enable-leader-election=false --concurrent=1 \
    --metrics-addr="${CLUSTER_HOST}:$(operator_port external-secrets-metrics)" \
    --enable-push-secret-reconciler=false --enable-cluster-push-secret-reconciler=false \
    --enable-cluster-external-secret-reconciler=false --loglevel=info --zap-time-encoding=rfc3339
}

start_operators() {
  local op c
  for op in ${CLUSTER_OPERATORS}; do
    case "${op}" in
      keda) start_keda ;;
      prometheus-operator) start_prometheus_operator ;;
      cert-manager) start_cert_manager ;;
      external-secrets) start_external_secrets ;;
    esac
  done
  for op in ${CLUSTER_OPERATORS}; do
    for c in $(operator_components "${op}"); do wait_for "${c}" "operator_health_${c//-/_}"; done
  done
}
# wait_for takes a function name
operator_health_keda_operator() { operator_healthy keda-operator; }
operator_health_keda_metrics_apiserver() { operator_healthy keda-metrics-apiserver; }
operator_health_keda_admission_webhooks() { operator_healthy keda-admission-webhooks; }
operator_health_prometheus_operator() { operator_healthy prometheus-operator; }
operator_health_cert_manager_controller() { operator_healthy cert-manager-controller; }
operator_health_external_secrets() { operator_healthy external-secrets; }
