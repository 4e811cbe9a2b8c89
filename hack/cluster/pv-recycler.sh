#!/usr/bin/env bash
# Keeps the pre-created PersistentVolumes of the hermetic cluster reusable:
# every PV_RECYCLE_INTERVAL seconds (default 5) a PV labelled
# hermetic.tensafe.io/pv=true that is Released (its claim was deleted) gets its
# claimRef removed, so the PV controller makes it Available again. Real
# clusters would provision a fresh volume; nothing is stored in these anyway.
# Started and stopped by hack/cluster-up.sh / hack/cluster-down.sh.
# Usage: pv-recycler.sh <kubectl> <kubeconfig>
set -uo pipefail
KUBECTL="$1" KUBECONFIG_FILE="$2"
INTERVAL="${PV_RECYCLE_INTERVAL:-5}"
trap 'exit 0' TERM INT
while :; do
  for pv in $("${KUBECTL}" --kubeconfig "${KUBECONFIG_FILE}" get pv -l hermetic.tensafe.io/pv=true \
      -o jsonpath='{range .items[?(@.status.phase=="Released")]}{.metadata.name}{"\n"}{end}' 2>/dev/null); do
    if "${KUBECTL}" --kubeconfig "${KUBECONFIG_FILE}" patch pv "${pv}" --type=json \
        -p='[{"op":"remove","path":"/spec/claimRef"}]' >/dev/null 2>&1; then
      echo "$(date -u +%FT%TZ) recycled ${pv}"
    fi
  done
  sleep "${INTERVAL}" & wait $!
done
