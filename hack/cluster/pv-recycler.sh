#!/usr/bin/env bash
# Keeps the pre-created PersistentVolumes of the hermetic cluster reusable: a
# PV labelled hermetic.tensafe.io/pv=true that becomes Released (its claim was
# deleted) gets its claimRef removed, so the PV controller makes it Available
# again. Real clusters would provision a fresh volume; nothing is stored in
# these anyway. One `kubectl get --watch` (no polling); re-established when the
# server ends the watch.
# Started by hack/cluster-up.sh as the leader of its own process group;
# hack/cluster-down.sh signals the whole group.
# Usage: pv-recycler.sh <kubectl> <kubeconfig>
set -uo pipefail
KUBECTL="$1" KUBECONFIG_FILE="$2"
trap 'exit 0' TERM INT
k() { "${KUBECTL}" --kubeconfig "${KUBECONFIG_FILE}" "$@"; }
while :; do
  k get pv -l hermetic.tensafe.io/pv=true --watch \
      -o jsonpath='{.metadata.name} {.status.phase}{"\n"}' 2>/dev/null |
    while read -r name phase; do
      [ "${phase}" = Released ] || continue
      if k patch pv "${name}" --type=json -p='[{"op":"remove","path":"/spec/claimRef"}]' >/dev/null 2>&1; then
        echo "$(date -u +%FT%TZ) recycled ${name}"
      fi
    done
  sleep 2 & wait $!
done
