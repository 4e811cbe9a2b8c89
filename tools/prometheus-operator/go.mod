// Prometheus Operator (the version kube-prometheus-stack 88.3.0 ships), built
// by hack/build-tools.sh only when asked (`make operators`,
// BUILD_TOOLS_ONLY=prometheus-operator).
//
// Not built in this module: the upstream go.mod replaces pkg/client and
// pkg/apis/monitoring with local directories that its module zip leaves out,
// so the build copies the upstream module, puts those two modules (same
// version) at the replaced paths and builds inside it. The require lines pin
// the versions, go.sum the zips' hashes (checked against what the proxy
// served); together they key the binary cache.
module tensafe.k8s/tools/prometheus-operator

go 1.26.0

require (
	github.com/prometheus-operator/prometheus-operator v0.93.0
	github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring v0.93.0
	github.com/prometheus-operator/prometheus-operator/pkg/client v0.93.0
)
