#!/usr/bin/env bash
# Build the collection tarball, install it into an empty path and prove the installed copy is usable.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build
rm -rf "$out" && mkdir -p "$out"
ansible-galaxy collection build collections/ansible_collections/tensafe/k8s --output-path "$out" --force
tarball=$(ls "$out"/tensafe-k8s-*.tar.gz)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# --no-deps: kubernetes.core and community.hashi_vault come from the ansible package, not Galaxy.
ANSIBLE_COLLECTIONS_PATH="$tmp" ansible-galaxy collection install "$tarball" -p "$tmp" --no-deps --force
installed="$tmp/ansible_collections/tensafe/k8s"
test -f "$installed/roles/app/files/charts/tensafe/Chart.yaml" || { echo "the tarball lacks the TenSafe chart" >&2; exit 1; }
if tar -tzf "$tarball" | grep -E '(^|/)tests/(unit|integration|output)/'; then echo "test files leaked into the tarball" >&2; exit 1; fi
for role in $(ls "$installed/roles"); do
  ANSIBLE_COLLECTIONS_PATH="$tmp" ansible-doc -t role "tensafe.k8s.$role" >/dev/null
done
ANSIBLE_COLLECTIONS_PATH="$tmp" ansible-doc -t role tensafe.k8s.app | head -20
echo "built and installed $(basename "$tarball"): $(tar -tzf "$tarball" | wc -l) files, roles: $(ls "$installed/roles" | tr '\n' ' ')"
