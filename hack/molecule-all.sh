#!/usr/bin/env bash
# Every molecule scenario (`make molecule`), in dependency order, then (hermetic, all scenarios) the site.yml
# pytest suite tests/check_mode, then a summary table; exits 1 if any failed.
#
# Usage: hack/molecule-all.sh [scenario...]    (default: every molecule/<name>/ except shared)
# Environment:
#   MOLECULE_CLUSTER=hermetic|kind  default: hermetic when CI is set or no Docker engine answers, else kind.
#     hermetic: the cluster is brought up once before the first scenario and stopped at the end only if this
#     script started it (a running dev cluster is left running). kind: each scenario creates and deletes its own.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
export PATH="${ROOT}/bin:${ROOT}/.venv/bin:${PATH}"

ORDER=(prerequisites datastores vault app observability)

if [ -z "${MOLECULE_CLUSTER:-}" ]; then
  if [ -n "${CI:-}" ] || ! docker info >/dev/null 2>&1; then MOLECULE_CLUSTER=hermetic; else MOLECULE_CLUSTER=kind; fi
fi
case "${MOLECULE_CLUSTER}" in
  hermetic | kind) export MOLECULE_CLUSTER ;;
  *) echo "molecule-all: MOLECULE_CLUSTER must be hermetic or kind, got '${MOLECULE_CLUSTER}'" >&2; exit 2 ;;
esac

# The scenarios: arguments, else ORDER's that exist followed by any other scenario directory (sorted).
scenarios=()
if (($#)); then
  for s in "$@"; do
    [ -f "molecule/${s}/molecule.yml" ] || { echo "molecule-all: no scenario molecule/${s}/molecule.yml" >&2; exit 2; }
    scenarios+=("${s}")
  done
else
  for s in "${ORDER[@]}"; do
    [ -f "molecule/${s}/molecule.yml" ] && scenarios+=("${s}")
  done
  for f in molecule/*/molecule.yml; do
    [ -e "${f}" ] || continue
    s="$(basename "$(dirname "${f}")")"
    [ "${s}" = shared ] && continue
    [[ " ${ORDER[*]} " == *" ${s} "* ]] || scenarios+=("${s}")
  done
fi
((${#scenarios[@]})) || { echo "molecule-all: no scenario under molecule/" >&2; exit 2; }

started_cluster=0
# shellcheck disable=SC2317  # run by the EXIT trap
stop_cluster() {
  if [ "${started_cluster}" = 1 ]; then
    echo "molecule-all: stopping the hermetic cluster this script started"
    hack/cluster-down.sh || true
  fi
}
trap stop_cluster EXIT

if [ "${MOLECULE_CLUSTER}" = hermetic ]; then
  if [ -s .cluster/kubeconfig ] && kubectl --kubeconfig .cluster/kubeconfig --request-timeout=5s get --raw /readyz >/dev/null 2>&1; then
    echo "molecule-all: the hermetic cluster is already up: it stays up"
  else
    started_cluster=1
    hack/cluster-up.sh
  fi
fi

# Each scenario's output is kept so that a failure's cause is printed again next to the summary (CI keeps the tail).
log_dir="$(mktemp -d "${TMPDIR:-/tmp}/molecule-all.XXXXXX")"
names=() results=() seconds=()
failed=0
for s in "${scenarios[@]}"; do
  echo "=== molecule test -s ${s} (MOLECULE_CLUSTER=${MOLECULE_CLUSTER})"
  t0=${SECONDS}
  if molecule test -s "${s}" 2>&1 | tee "${log_dir}/${s}.log"; then result=passed; else result=FAILED; failed=1; fi
  names+=("${s}") results+=("${result}") seconds+=($((SECONDS - t0)))
done

# site.yml across roles with inventories/local (check mode after a rename, -e numbers): pytest on the same cluster.
if [ "${MOLECULE_CLUSTER}" = hermetic ] && (($# == 0)); then
  echo "=== pytest tests/check_mode (site.yml, inventories/local)"
  t0=${SECONDS}
  if pytest -q tests/check_mode; then result=passed; else result=FAILED; failed=1; fi
  names+=("site.yml") results+=("${result}") seconds+=($((SECONDS - t0)))
fi

for i in "${!names[@]}"; do
  [ "${results[$i]}" = FAILED ] && [ -f "${log_dir}/${names[$i]}.log" ] || continue
  echo
  echo "=== why molecule test -s ${names[$i]} failed: its failed tasks, then its last lines (${log_dir}/${names[$i]}.log)"
  grep -E -A 25 '^(fatal|failed): |Idempotence test failed|ERROR' "${log_dir}/${names[$i]}.log" | head -n 120 || true
  echo "--- last lines"
  tail -n 30 "${log_dir}/${names[$i]}.log"
done

echo
printf '%-16s %-8s %8s\n' scenario result seconds
printf '%-16s %-8s %8s\n' -------- ------ -------
for i in "${!names[@]}"; do
  printf '%-16s %-8s %8s\n' "${names[$i]}" "${results[$i]}" "${seconds[$i]}"
done
printf '%-16s %-8s %8s\n' "(${MOLECULE_CLUSTER})" "$([ "${failed}" = 0 ] && echo passed || echo FAILED)" "${SECONDS}"
exit "${failed}"
