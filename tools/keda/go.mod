// KEDA (operator, metrics API server, admission webhooks), built by
// hack/build-tools.sh only when asked (`make operators`, BUILD_TOOLS_ONLY=keda).
//
// Not built in this module: KEDA's go.mod replaces client-go/controller-runtime
// and more, and replace directives apply only in the main module, so the build
// runs inside a copy of the upstream module itself. This file pins the version
// (the require line) and go.sum pins the module zip's hash, which the build
// checks against what the proxy served; together they key the binary cache.
module tensafe.k8s/tools/keda

go 1.26.0

require github.com/kedacore/keda/v2 v2.20.2
