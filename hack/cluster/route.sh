#!/usr/bin/env bash
# Routes of the hermetic cluster network (hack/cluster/cluster-network.py): which host process serves a Service's
# ClusterIP:port when the kube-apiserver calls it (APIServices, admission webhooks).
#
# Usage: hack/cluster/route.sh add <namespace>/<service>:<service port> <hostport | 127.0.0.1:hostport>
#        hack/cluster/route.sh remove <namespace>/<service>:<service port>
#        hack/cluster/route.sh list
# The port is the Service's port (spec.ports[].port, what the APIService or webhook names), not the targetPort.
# The file is $CLUSTER_DIR/network/routes.json; the running proxy picks changes up at its next connection.
set -euo pipefail
# shellcheck source=hack/cluster/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
case "${1:-}" in
  add | remove | list) ;;
  -h | --help | "") sed -n '2,9p' "$0"; exit 0 ;;
  *) die "unknown action '${1}': add, remove or list" ;;
esac
exec "${CLUSTER_NETWORK_PYTHON}" "${ROOT}/hack/cluster/cluster-network.py" route --routes "${NETWORK_ROUTES}" "$@"
