#!/usr/bin/env bash
# make demo: a local cluster (kind where Docker can pull images, else the hermetic test cluster) and the whole
# stack from inventories/local. With a chart mirror (tests/chart_mirror.py: CHART_MIRROR, ../shared/charts or the
# `make charts` cache) every chart comes from it. Without one, charts that cannot be fetched from here are reported and
# their component is left out (or, for the datastores, replaced by loopback servers used in external mode).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$root/bin:$root/.venv/bin:$PATH" ANSIBLE_CONFIG="$root/ansible.cfg"
mkdir -p .cluster
kubeconfig="$root/.cluster/kubeconfig"
kind_image=${KIND_NODE_IMAGE:-kindest/node:v1.34.0}

cluster=${DEMO_CLUSTER:-auto}
if [ "$cluster" = auto ]; then
  cluster=hermetic
  if command -v kind >/dev/null && docker info >/dev/null 2>&1 && docker pull -q "$kind_image" >/dev/null 2>&1; then cluster=kind; fi
fi
echo "==> cluster: $cluster"
if [ "$cluster" = kind ]; then
  kind get clusters 2>/dev/null | grep -qx tensafe-demo || kind create cluster --name tensafe-demo --image "$kind_image" --kubeconfig "$kubeconfig"
  export TENSAFE_LOCAL_GPUS=0        # kind nodes have no GPUs
else
  hack/cluster-up.sh
  export TENSAFE_LOCAL_GPUS=1        # the hermetic cluster has two fake GPU nodes
fi

echo "==> chart sources"
.venv/bin/python hack/package-chart.py   # the app role installs charts/tensafe packaged into its files/
vars="$root/.cluster/demo-vars.yml"
echo "---" > "$vars"
skipped=()
mirror=$(.venv/bin/python -c 'import sys; sys.path.insert(0, "tests"); import chart_mirror; print(chart_mirror.MIRROR)')
if [ -d "$mirror" ]; then
  echo "    every upstream chart from the chart mirror $mirror"
  .venv/bin/python -c 'import sys, yaml; sys.path.insert(0, "tests"); import chart_mirror; print(yaml.safe_dump(chart_mirror.archive_vars()))' >> "$vars"
fi
while IFS= read -r line; do
  [ -n "$line" ] || continue
  eval "$(python3 -c 'import json,sys,shlex; d=json.loads(sys.argv[1]); print(" ".join(f"{k}={shlex.quote(str(v))}" for k,v in d.items()))' "$line")"
  case "$role/$component" in
    vault/server)
      if [ -s .cluster/openbao/addr ]; then continue; fi   # the hermetic cluster's OpenBao serves as an external Vault
      echo "tensafe_vault_enabled: false" >> "$vars" ;;
    datastores/*)
      grep -q datastores_postgresql_mode "$vars" || cat >> "$vars" <<VARS
# The charts are out of reach: PostgreSQL and Redis from Debian's packages on loopback, in external mode.
datastores_postgresql_mode: external
datastores_redis_mode: external
VARS
      ;;
    observability/prometheus) echo "tensafe_observability_enabled: false" >> "$vars" ;;
    *) echo "${role}_${component}_enabled: false" >> "$vars" ;;
  esac
  case "$repo" in oci://*) pull="helm pull ${repo%/}/$chart --version $version" ;; *) pull="helm pull $chart --repo $repo --version $version" ;; esac
  instead=""; case "$role" in datastores) instead=" — using PostgreSQL/Redis on loopback in external mode instead" ;; esac
  skipped+=("$role/$component: chart $chart $version from $repo is out of reach ($reason)$instead; set $variable to a directory holding $chart-$version.tgz ($pull)")
done < <([ -d "$mirror" ] || python3 hack/chart-sources.py --inventory inventories/local)

if grep -q "datastores_postgresql_mode: external" "$vars"; then
  DATASTORES_TEST_DIR="$root/.cluster/datastores" tests/datastores/servers.sh start >/dev/null
  # shellcheck disable=SC1091
  . "$root/.cluster/datastores/env"
  cat >> "$vars" <<VARS
datastores_postgresql_external_host: $DATASTORES_TEST_PG_HOST
datastores_postgresql_external_port: $DATASTORES_TEST_PG_PORT
datastores_postgresql_external_sslmode: disable
datastores_postgresql_database: $DATASTORES_TEST_PG_DATABASE
datastores_postgresql_username: $DATASTORES_TEST_PG_USER
datastores_postgresql_external_password: $DATASTORES_TEST_PG_PASSWORD
datastores_redis_external_host: $DATASTORES_TEST_REDIS_HOST
datastores_redis_external_port: $DATASTORES_TEST_REDIS_PORT
datastores_redis_external_password: $DATASTORES_TEST_REDIS_PASSWORD
VARS
fi
chmod 600 "$vars"

echo "==> ansible-playbook playbooks/site.yml -i inventories/local"
ansible-playbook playbooks/site.yml -i inventories/local -e "@$vars"

echo
echo "==> deployed on the $cluster cluster"
helm --kubeconfig "$kubeconfig" list -A
kubectl --kubeconfig "$kubeconfig" get pods -A -l app.kubernetes.io/part-of=tensafe -o wide 2>/dev/null || true
if ((${#skipped[@]})); then
  echo
  echo "==> not installed here (no chart source reachable):"
  printf '  - %s\n' "${skipped[@]}"
fi
cat <<EOF_HINT

Look at it:
  export KUBECONFIG=$kubeconfig
  kubectl get pods,svc,ingress -n tensafe
  kubectl get scaledobject,servicemonitor,networkpolicy,pdb -n tensafe
  kubectl get events -n tensafe --sort-by=.lastTimestamp
  helm status tensafe -n tensafe
Rerun to see an idempotent converge (changed=0):
  TENSAFE_LOCAL_GPUS=$TENSAFE_LOCAL_GPUS ansible-playbook playbooks/site.yml -i inventories/local -e @$vars
EOF_HINT
