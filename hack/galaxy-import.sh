#!/usr/bin/env bash
# galaxy-importer, what Galaxy runs on every upload, on the tarball of `make build`: fails on any ERROR or WARNING.
# It runs from .venv-galaxy (requirements-galaxy.txt), whose ansible package brings the collection's dependencies
# (kubernetes.core, community.hashi_vault, ...) for its ansible-doc and ansible-lint runs; no Galaxy access.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tarball=$(ls build/tensafe-k8s-*.tar.gz 2>/dev/null) || { echo "galaxy-import: no build/tensafe-k8s-*.tar.gz (make build)" >&2; exit 1; }
out=build/galaxy-import
rm -rf "$out" && mkdir -p "$out/tmp"
log="$out/importer.log"
cd "$out"
# Its own tools first on PATH: the importer calls ansible-doc and ansible-lint by name.
PATH="$root/.venv-galaxy/bin:$PATH" GALAXY_IMPORTER_CONFIG="$root/tests/galaxy/galaxy-importer.cfg" \
  GALAXY_IMPORTER_TMP_ROOT_DIR="$PWD/tmp" GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP="$PWD/tmp/ansible" \
  "$root/.venv-galaxy/bin/python" -m galaxy_importer.main "$root/$tarball" > importer.log 2>&1 && rc=0 || rc=$?
cd "$root"
cat "$log"
errors=$(grep -c '^ERROR' "$log" || true)
warnings=$(grep -c '^WARNING' "$log" || true)
echo "galaxy-import: $(basename "$tarball"): exit $rc, $errors errors, $warnings warnings (log: $log)"
if [ "$rc" != 0 ] || [ "$errors" != 0 ] || [ "$warnings" != 0 ] || ! grep -q 'Importer processing completed successfully' "$log"; then
  echo "galaxy-import: FAILED — Galaxy would reject or flag this upload" >&2
  exit 1
fi
