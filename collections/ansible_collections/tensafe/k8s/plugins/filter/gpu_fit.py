# Copyright (c) 2026 TenSafe platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Fit the app's GPU pods onto the nodes the way the scheduler would, from one read of the nodes and one of the pods."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re

from ansible.errors import AnsibleFilterError

UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
INSTANCE_LABEL = "app.kubernetes.io/instance"


def _int(value, what):
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise AnsibleFilterError("gpu_fit: %s must be an integer, got %r" % (what, value))


def _quantity(value):
    """An extended resource quantity (always whole units); anything else counts as 0."""
    if value is None:
        return 0
    match = re.match(r"^\s*([0-9]+)\s*$", str(value))
    if match:
        return int(match.group(1))
    match = re.match(r"^\s*([0-9]+)k\s*$", str(value))
    return int(match.group(1)) * 1000 if match else 0


def _tolerates(tolerations, taint):
    """The scheduler's rule: an empty key with Exists matches every taint, an empty effect every effect."""
    for tol in tolerations or []:
        if (tol.get("effect") or "") not in ("", taint.get("effect")):
            continue
        if (tol.get("operator") or "Equal") == "Exists":
            if (tol.get("key") or "") in ("", taint.get("key")):
                return True
        elif (tol.get("key") or "") == taint.get("key") and str(tol.get("value") or "") == str(taint.get("value") or ""):
            return True
    return False


def _container_gpus(container, resource):
    res = container.get("resources") or {}
    requests = res.get("requests") or {}
    limits = res.get("limits") or {}
    # Extended resources cannot be overcommitted: a limit alone is also the request.
    return _quantity(requests.get(resource, limits.get(resource)))


def pod_gpus(pod, resource="nvidia.com/gpu"):
    """The pod's effective request of the resource, as the scheduler computes it (init containers, sidecars, overhead)."""
    spec = pod.get("spec") or {}
    total = sum(_container_gpus(c, resource) for c in spec.get("containers") or [])
    sidecars = 0
    init_peak = 0
    for init in spec.get("initContainers") or []:
        gpus = _container_gpus(init, resource)
        if init.get("restartPolicy") == "Always":
            sidecars += gpus
            init_peak = max(init_peak, sidecars)
        else:
            init_peak = max(init_peak, sidecars + gpus)
    return max(total + sidecars, init_peak) + _quantity((spec.get("overhead") or {}).get(resource))


def _active(pod):
    """Scheduled or running on a node, and not finished: it holds its resources (also while terminating)."""
    return bool((pod.get("spec") or {}).get("nodeName")) and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _resolve(value, replicas, round_up, what):
    text = str(value).strip()
    if text.endswith("%"):
        pct = _int(text[:-1], what)
        amount = pct * replicas / 100.0
        return int(math.ceil(amount)) if round_up else int(math.floor(amount))
    return _int(text, what)


def _pod_ref(pod):
    meta = pod.get("metadata") or {}
    return "%s/%s" % (meta.get("namespace", ""), meta.get("name", ""))


def gpu_fit(nodes, pods=None, resource="nvidia.com/gpu", per_pod=1, node_selector=None, tolerations=None, groups=None):
    """Place the app's pods on the nodes; see gpu_fit.yml for the inputs and the result."""
    per_pod = _int(per_pod, "per_pod")
    node_selector = node_selector or {}
    tolerations = tolerations or []
    groups = groups or []
    if per_pod < 1:
        raise AnsibleFilterError("gpu_fit: per_pod must be at least 1, got %r" % per_pod)

    own = {}
    for group in groups:
        own[(group.get("namespace"), group.get("release"))] = group.get("name") or group.get("release")

    def owner(pod):
        meta = pod.get("metadata") or {}
        return own.get((meta.get("namespace"), (meta.get("labels") or {}).get(INSTANCE_LABEL)))

    running = {}
    by_node = {}
    for pod in pods or []:
        if not _active(pod):
            continue
        group = owner(pod)
        if group is not None:
            running[group] = running.get(group, 0) + 1
        by_node.setdefault(pod["spec"]["nodeName"], []).append((pod, group))

    out_nodes = []
    for node in nodes or []:
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        labels = meta.get("labels") or {}
        name = meta.get("name", "")
        reasons = []
        missing = ["%s=%s" % (k, v) for k, v in sorted(node_selector.items()) if labels.get(k) != str(v)]
        if missing:
            reasons.append("nodeSelector %s not matched" % ",".join(missing))
        ready = [c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"]
        if (ready or ["Unknown"])[0] != "True":
            reasons.append("not Ready")
        if spec.get("unschedulable") and not _tolerates(tolerations, UNSCHEDULABLE_TAINT):
            reasons.append("cordoned")
        for taint in spec.get("taints") or []:
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(tolerations, taint):
                value = ("=%s" % taint["value"]) if taint.get("value") else ""
                reasons.append("taint %s%s:%s not tolerated" % (taint.get("key"), value, taint.get("effect")))
        allocatable = _quantity((status.get("allocatable") or {}).get(resource))
        if allocatable == 0:
            reasons.append("no allocatable %s" % resource)
        used = 0
        own_gpus = 0
        holders = []
        for pod, group in by_node.get(name, []):
            gpus = pod_gpus(pod, resource)
            if not gpus:
                continue
            if group is not None:
                own_gpus += gpus
            else:
                used += gpus
                holders.append((gpus, _pod_ref(pod)))
        free = max(allocatable - used, 0)
        usable = not reasons
        out_nodes.append({
            "name": name, "allocatable": allocatable, "used": used, "own": own_gpus, "free": free,
            "holders": ["%s %d" % (ref, gpus) for gpus, ref in sorted(holders, key=lambda h: (-h[0], h[1]))],
            "reasons": reasons, "usable": usable, "slots": free // per_pod if usable else 0, "placed": 0,
        })

    # What to place: each group's replicas, then the surge pod a rolling update with maxUnavailable 0 needs beside
    # the running pods (the old pods are only removed once a new one is Ready).
    demand = []
    out_groups = []
    peak_pods = 0
    for group in groups:
        gname = group.get("name") or group.get("release")
        replicas = _int(group.get("replicas", 0), "replicas of %s" % gname)
        current = running.get(gname, 0)
        if group.get("autoscaled"):
            replicas = max(replicas, current)
        surge_needed = 0
        surge = unavailable = None
        if group.get("rolls", True) and current > 0 and replicas > 0:
            surge = _resolve(group.get("max_surge", 1), replicas, True, "max_surge of %s" % gname)
            unavailable = _resolve(group.get("max_unavailable", 0), replicas, False, "max_unavailable of %s" % gname)
            if surge == 0 and unavailable == 0:
                unavailable = 1  # what the Deployment controller does
            surge_needed = 1 if unavailable == 0 else 0
        for i in range(replicas):
            demand.append({"pod": "%s replica %d of %d" % (gname, i + 1, replicas), "surge": False})
        for i in range(surge_needed):
            demand.append({"pod": "%s surge pod of the rolling update" % gname, "surge": True})
        max_replicas = group.get("max_replicas")
        peak = max(_int(max_replicas, "max_replicas of %s" % gname), replicas) if group.get("autoscaled") and max_replicas is not None else replicas
        peak_pods += peak + surge_needed
        out_groups.append({
            "name": gname, "namespace": group.get("namespace"), "release": group.get("release"), "replicas": replicas,
            "running": current, "max_surge": surge, "max_unavailable": unavailable, "surge_pods": surge_needed, "peak": peak,
        })

    usable = [n for n in out_nodes if n["usable"]]
    unplaced = []
    for item in demand:
        target = next((n for n in usable if n["slots"] > n["placed"]), None)
        if target is not None:
            target["placed"] += 1
        else:
            unplaced.append(item["pod"])

    largest = max(usable, key=lambda n: n["allocatable"]) if usable else None
    if not unplaced:
        reason = ""
    elif not usable:
        reason = "no node is usable for the app's pods"
    elif per_pod > largest["allocatable"]:
        reason = "each pod asks for %d %s, more than any usable node has (largest: %d on %s)" % (
            per_pod, resource, largest["allocatable"], largest["name"])
    else:
        reason = "no usable node has %d free %s left" % (per_pod, resource)
        if any(u.endswith("surge pod of the rolling update") for u in unplaced) and len(unplaced) == 1:
            reason = ("maxUnavailable is 0, so the rolling update starts a new pod beside the %d running ones before it "
                      "removes one, and no usable node has %d free %s for it: the rollout would wait for the whole Helm "
                      "timeout and roll back" % (sum(g["running"] for g in out_groups if g["surge_pods"]), per_pod, resource))

    capacity_pods = sum(n["slots"] for n in usable)
    demand_pods = len(demand)
    return {
        "resource": resource,
        "per_pod": per_pod,
        "nodes": out_nodes,
        "groups": out_groups,
        "demand_pods": demand_pods,
        "demand_gpus": demand_pods * per_pod,
        "capacity_pods": capacity_pods,
        "free_gpus": sum(n["free"] for n in usable),
        "total_gpus": sum(n["allocatable"] for n in usable),
        "used_gpus": sum(n["used"] for n in usable),
        "placed": demand_pods - len(unplaced),
        "unplaced": unplaced,
        "reason": reason,
        "fits": not unplaced,
        "peak_pods": peak_pods,
        "peak_fits": peak_pods <= capacity_pods,
        "nodes_text": "; ".join(_node_text(n, resource) for n in out_nodes),
    }


def _node_text(node, resource):
    if not node["usable"]:
        return "%s (%d, excluded: %s)" % (node["name"], node["allocatable"], ", ".join(node["reasons"]))
    text = "%s %d free of %d" % (node["name"], node["free"], node["allocatable"])
    details = []
    if node["used"]:
        holders = ", ".join(node["holders"][:3]) + (", ..." if len(node["holders"]) > 3 else "")
        details.append("%d used by other pods: %s" % (node["used"], holders))
    if node["own"]:
        details.append("%d held by the app's pods being replaced" % node["own"])
    return text + (" (%s)" % "; ".join(details) if details else "")


class FilterModule(object):
    def filters(self):
        return {"gpu_fit": gpu_fit}
