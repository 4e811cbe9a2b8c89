// External Secrets Operator (controller; the webhook and cert-controller are subcommands
// of the same binary), built by hack/build-tools.sh only when asked (`make operators`,
// BUILD_TOOLS_ONLY=external-secrets).
//
// Built inside a copy of the upstream module, like tools/keda: its go.mod replaces
// Masterminds/sprig, and replace directives apply only in the main module. This file pins
// the version (the require line) and go.sum the module zip's hash, which the build checks
// against what the proxy served; together they key the binary cache.
module tensafe.k8s/tools/external-secrets

go 1.26.0

require github.com/external-secrets/external-secrets v0.16.2
