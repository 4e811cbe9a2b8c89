#!/usr/bin/env bash
# Build the collection tarball, install it into an empty path and prove the installed copy is usable.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build
rm -rf "$out" && mkdir -p "$out"
# The collection ships the chart packaged (charts/tensafe -> roles/app/files/<name>-<version>.tgz).
.venv/bin/python hack/package-chart.py
ansible-galaxy collection build collections/ansible_collections/tensafe/k8s --output-path "$out" --force
tarball=$(ls "$out"/tensafe-k8s-*.tar.gz)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# --no-deps: kubernetes.core and community.hashi_vault come from the ansible package, not Galaxy.
ANSIBLE_COLLECTIONS_PATH="$tmp" ansible-galaxy collection install "$tarball" -p "$tmp" --no-deps --force
installed="$tmp/ansible_collections/tensafe/k8s"
chart=$(basename collections/ansible_collections/tensafe/k8s/roles/app/files/*.tgz)
cmp -s "$installed/roles/app/files/$chart" "collections/ansible_collections/tensafe/k8s/roles/app/files/$chart" || { echo "the tarball lacks the packaged chart roles/app/files/$chart" >&2; exit 1; }
if tar -tzf "$tarball" | grep -E '(^|/)(Chart\.yaml|templates/.*\.tpl)$'; then echo "an unpacked chart leaked into the tarball" >&2; exit 1; fi
if tar -tzf "$tarball" | grep -E '(^|/)tests/(unit|integration|output)/'; then echo "test files leaked into the tarball" >&2; exit 1; fi
for role in $(ls "$installed/roles"); do
  ANSIBLE_COLLECTIONS_PATH="$tmp" ansible-doc -t role "tensafe.k8s.$role" >/dev/null
done
ANSIBLE_COLLECTIONS_PATH="$tmp" ansible-doc -t role tensafe.k8s.app | head -20
echo "built and installed $(basename "$tarball"): $(tar -tzf "$tarball" | wc -l) files, roles: $(ls "$installed/roles" | tr '\n' ' ')"
