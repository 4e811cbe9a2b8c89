#!/usr/bin/env bash
# Smoke test of a running hermetic cluster (hack/cluster-up.sh):
#  1. a GPU Deployment (nodeSelector nvidia.com/gpu.present, GPU toleration,
#     nvidia.com/gpu: 1) is scheduled onto gpu-1/gpu-2 and becomes Ready (kwok);
#  2. a pod asking for 5 GPUs stays Pending with "Insufficient nvidia.com/gpu";
#  3. a StatefulSet with a 500Gi volumeClaimTemplate gets a Bound PVC and a Ready pod;
#  4. `helm install --wait` of a trivial chart succeeds;
#  5. Pod Security `enforce: restricted` rejects a privileged pod;
#  6. OpenBao answers with the root token and can review a ServiceAccount token
#     against the apiserver (kubernetes auth).
# Everything happens in namespaces smoke-*, deleted at the end.
set -euo pipefail
# shellcheck source=hack/cluster/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
export KUBECONFIG="${KUBECONFIG_ADMIN}"
export PATH="${BIN_DIR}:${PATH}" CLUSTER_APISERVER_PORT
NS=smoke-gpu
pass=0 fail=0
ok() { echo "PASS: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
TMP="$(mktemp -d)"
cleanup() {
  helm uninstall smoke -n smoke-helm >/dev/null 2>&1 || true
  kubectl delete ns smoke-gpu smoke-sts smoke-helm smoke-psa --wait=false >/dev/null 2>&1 || true
  rm -rf "${TMP}"
}
trap cleanup EXIT

kubectl create ns "${NS}" >/dev/null
cat <<EOF | kubectl apply -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: {name: gpu-one, namespace: ${NS}}
spec:
  replicas: 1
  selector: {matchLabels: {app: gpu-one}}
  template:
    metadata: {labels: {app: gpu-one}}
    spec:
      nodeSelector: {nvidia.com/gpu.present: "true"}
      tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
      containers:
      - name: main
        image: registry.example/never-pulled:1
        resources: {limits: {nvidia.com/gpu: 1}}
---
apiVersion: v1
kind: Pod
metadata: {name: gpu-five, namespace: ${NS}}
spec:
  nodeSelector: {nvidia.com/gpu.present: "true"}
  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
  containers:
  - name: main
    image: registry.example/never-pulled:1
    resources: {limits: {nvidia.com/gpu: 5}}
EOF
if kubectl -n "${NS}" rollout status deploy/gpu-one --timeout=60s >/dev/null; then
  node="$(kubectl -n "${NS}" get pod -l app=gpu-one -o jsonpath='{.items[0].spec.nodeName}')"
  case "${node}" in gpu-*) ok "GPU deployment Ready on ${node}" ;; *) bad "GPU pod on ${node}" ;; esac
else
  bad "GPU deployment not Ready"
fi
msg=""
for _ in $(seq 1 50); do
  msg="$(kubectl -n "${NS}" get events --field-selector involvedObject.name=gpu-five,reason=FailedScheduling -o jsonpath='{.items[*].message}')"
  [ -n "${msg}" ] && break
  sleep 0.2
done
phase="$(kubectl -n "${NS}" get pod gpu-five -o jsonpath='{.status.phase}')"
if [ "${phase}" = Pending ] && grep -q 'Insufficient nvidia.com/gpu' <<<"${msg}"; then
  ok "5-GPU pod Pending: ${msg}"
else
  bad "5-GPU pod phase=${phase} events=${msg}"
fi

kubectl create ns smoke-sts >/dev/null
cat <<EOF | kubectl apply -f - >/dev/null
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: smoke-sts}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: db
        image: registry.example/never-pulled:1
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 500Gi}}
EOF
if kubectl -n smoke-sts rollout status sts/db --timeout=60s >/dev/null &&
   [ "$(kubectl -n smoke-sts get pvc data-db-0 -o jsonpath='{.status.phase}')" = Bound ]; then
  ok "StatefulSet Ready with PVC data-db-0 Bound to $(kubectl -n smoke-sts get pvc data-db-0 -o jsonpath='{.spec.volumeName}')"
else
  bad "StatefulSet/PVC: $(kubectl -n smoke-sts get pvc,pod 2>&1 | tr '\n' ' ')"
fi

mkdir -p "${TMP}/chart/templates"
cat > "${TMP}/chart/Chart.yaml" <<EOF
apiVersion: v2
name: smoke
version: 0.1.0
EOF
cat > "${TMP}/chart/templates/deploy.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: {{ .Release.Name }}-web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.example/never-pulled:1}]
---
apiVersion: v1
kind: Service
metadata: {name: {{ .Release.Name }}-web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
EOF
if helm install smoke "${TMP}/chart" -n smoke-helm --create-namespace --wait --timeout 60s >/dev/null; then
  ok "helm install --wait"
else
  bad "helm install --wait"
fi

kubectl create ns smoke-psa >/dev/null
kubectl label ns smoke-psa pod-security.kubernetes.io/enforce=restricted >/dev/null
if out="$(kubectl -n smoke-psa run priv --image=registry.example/x:1 \
    --overrides='{"spec":{"containers":[{"name":"priv","image":"registry.example/x:1","securityContext":{"privileged":true}}]}}' 2>&1)"; then
  bad "privileged pod admitted in restricted namespace"
elif grep -q 'violates PodSecurity "restricted' <<<"${out}"; then
  ok "PodSecurity restricted enforced"
else
  bad "unexpected error: ${out}"
fi

if [ -s "${CLUSTER_DIR}/openbao/token" ]; then
  addr="$(cat "${CLUSTER_DIR}/openbao/addr")"
  token="$(cat "${CLUSTER_DIR}/openbao/token")"
  if curl -fsS -H "X-Vault-Token: ${token}" "${addr}/v1/auth/token/lookup-self" | grep -q '"policies":\["root"\]'; then
    ok "OpenBao root token works at ${addr}"
  else
    bad "OpenBao token lookup"
  fi
  # TokenReview round trip: a ServiceAccount token is valid for the apiserver.
  sa_token="$(kubectl -n default create token default --duration=10m)"
  review="$(printf '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"%s"}}' "${sa_token}" |
    kubectl create -f - -o jsonpath='{.status.authenticated} {.status.user.username}')"
  if [ "${review}" = "true system:serviceaccount:default:default" ]; then
    ok "TokenReview of a ServiceAccount token: ${review}"
  else
    bad "TokenReview: ${review}"
  fi
  # OpenBao kubernetes auth against this apiserver (mount smoke-k8s, removed after).
  bao() { curl -fsS -H "X-Vault-Token: ${token}" "$@"; }
  kubectl -n smoke-psa create serviceaccount reviewer >/dev/null
  kubectl create clusterrolebinding smoke-reviewer --clusterrole=system:auth-delegator \
    --serviceaccount=smoke-psa:reviewer >/dev/null
  reviewer_jwt="$(kubectl -n smoke-psa create token reviewer --duration=10m)"
  bao -X POST -d '{"type":"kubernetes"}' "${addr}/v1/sys/auth/smoke-k8s" >/dev/null
  python3 - "${CLUSTER_DIR}" "${reviewer_jwt}" > "${TMP}/k8s-config.json" <<'PY'
import json, sys
d = sys.argv[1]
print(json.dumps({"kubernetes_host": "https://127.0.0.1:%s" % __import__("os").environ.get("CLUSTER_APISERVER_PORT", "26443"),
                  "kubernetes_ca_cert": open(d + "/pki/ca.crt").read(),
                  "token_reviewer_jwt": sys.argv[2]}))
PY
  bao -X POST --data @"${TMP}/k8s-config.json" "${addr}/v1/auth/smoke-k8s/config" >/dev/null
  bao -X POST -d '{"bound_service_account_names":["default"],"bound_service_account_namespaces":["default"],"token_policies":["default"],"audience":"https://kubernetes.default.svc.cluster.local"}' \
    "${addr}/v1/auth/smoke-k8s/role/smoke" >/dev/null
  login="$(curl -sS -X POST -d "{\"role\":\"smoke\",\"jwt\":\"${sa_token}\"}" "${addr}/v1/auth/smoke-k8s/login")"
  if grep -q '"service_account_name":"default"' <<<"${login}"; then
    ok "OpenBao kubernetes auth login with a ServiceAccount token"
  else
    bad "OpenBao kubernetes auth login: ${login}"
  fi
  bao -X DELETE "${addr}/v1/sys/auth/smoke-k8s" >/dev/null || true
  kubectl delete clusterrolebinding smoke-reviewer >/dev/null 2>&1 || true
fi

echo "${pass} passed, ${fail} failed"
[ "${fail}" = 0 ]
