#!/usr/bin/env bash
# Regenerate the k8s.io staging-module `replace` directives of tools/kubernetes/go.mod
# from the upstream k8s.io/kubernetes go.mod (never hand-typed).
#
# k8s.io/kubernetes requires its staging modules (k8s.io/api, client-go, ...) at
# v0.0.0 and replaces them with ./staging/src/... paths that do not exist outside
# its own repository. As a dependency it therefore needs one
#   replace k8s.io/<mod> => k8s.io/<mod> v0.<minor>.<patch>
# per staging module. The upstream `godebug` lines are copied too, so the binaries
# get the same GODEBUG defaults as an upstream build.
#
# Usage: tools/kubernetes/gen-replaces.sh [K8S_VERSION]   (default: version in go.mod)
set -euo pipefail
cd "$(dirname "$0")"
export PATH="/usr/local/go/bin:${PATH}"
export GOFLAGS=-mod=mod

K8S_VERSION="${1:-$(go mod edit -json | python3 -c 'import json,sys; print(next(r["Version"] for r in json.load(sys.stdin)["Require"] if r["Path"]=="k8s.io/kubernetes"))')}"
STAGING_VERSION="v0.${K8S_VERSION#v1.}"   # v1.34.4 -> v0.34.4

upstream_mod="$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
echo "upstream go.mod: ${upstream_mod}" >&2

# Collect upstream "k8s.io/x => ./staging/src/k8s.io/x" replaces.
mapfile -t staging < <(go mod edit -json "${upstream_mod}" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    new = r["New"]["Path"]
    if new.startswith("./staging/"):
        print(r["Old"]["Path"])
')
[ "${#staging[@]}" -gt 0 ] || { echo "no staging replaces found in ${upstream_mod}" >&2; exit 1; }

# Drop our old k8s.io replaces, then add the generated ones.
for old in $(go mod edit -json | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    if r["Old"]["Path"].startswith("k8s.io/"): print(r["Old"]["Path"])
'); do
  go mod edit -dropreplace="${old}"
done
args=()
for m in "${staging[@]}"; do args+=("-replace=${m}=${m}@${STAGING_VERSION}"); done
go mod edit "${args[@]}"

# Mirror upstream godebug defaults (e.g. "godebug default=go1.24").
for gd in $(go mod edit -json | python3 -c '
import json, sys
for g in json.load(sys.stdin).get("GoDebug") or []: print(g["Key"])
'); do go mod edit -dropgodebug="${gd}"; done
for kv in $(go mod edit -json "${upstream_mod}" | python3 -c '
import json, sys
for g in json.load(sys.stdin).get("GoDebug") or []: print(g["Key"] + "=" + g["Value"])
'); do go mod edit -godebug="${kv}"; done

echo "generated ${#staging[@]} replaces => ${STAGING_VERSION}" >&2
