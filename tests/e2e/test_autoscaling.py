"""Issue 10, item 1: KEDA and the HPA scale TenSafe on the real Prometheus's answers, within the GPUs there are.

The app's ScaledObject (three Prometheus triggers: p95 latency, queue depth, GPU utilization) is served by the real
KEDA operator and metrics adapter; the real kube-controller-manager's HPA (5 s sync, 30 s scale-down stabilization,
hack/cluster-up.sh) scales the Deployment; the real kube-scheduler places the pods on the fake GPU nodes (4 GPUs
each, 2 per pod: 4 pods fit). Scaling decisions come only from the synthetic series the host Prometheus scrapes.
"""
import json
import re
import time

from conftest import APP, APP_NAMESPACE, HERE, STACK, feed, kubectl_json, sh, wait_for

MIN = STACK["app_autoscaling_min_replicas"]
MAX = STACK["app_autoscaling_max_replicas"]
GPU_NODES = {"gpu-1", "gpu-2"}
FITTING = 4  # 2 GPU nodes x 4 GPUs / 2 per pod


def pods():
    return [p for p in kubectl_json("get", "pods", "-n", APP_NAMESPACE, "-l", f"app.kubernetes.io/instance={APP}")["items"]
            if not p["metadata"].get("deletionTimestamp")]


def hpa():
    return kubectl_json("get", "hpa", f"keda-hpa-{APP}", "-n", APP_NAMESPACE)


def state():
    """What the autoscaler and the scheduler did: for a failure message."""
    h = hpa()
    so = kubectl_json("get", "scaledobject", APP, "-n", APP_NAMESPACE)
    return json.dumps({
        "hpa": {"desired": h["status"].get("desiredReplicas"), "current": h["status"].get("currentReplicas"),
                "metrics": h["status"].get("currentMetrics"),
                "conditions": [(c["type"], c["status"], c.get("message")) for c in h["status"].get("conditions", [])]},
        "scaledobject": [(c["type"], c["status"], c.get("message")) for c in so["status"].get("conditions", [])],
        "pods": [(p["metadata"]["name"], p["status"]["phase"], p["spec"].get("nodeName")) for p in pods()],
    }, indent=1)


def quantity(text):
    """A Kubernetes quantity as the HPA reports metric values ("23750m", "20", "2k") -> float."""
    suffixes = {"m": 1e-3, "k": 1e3, "M": 1e6}
    return float(text[:-1]) * suffixes[text[-1]] if text[-1] in suffixes else float(text)


def trigger_values():
    """External metric name -> the value the HPA last read through KEDA (s0 latency, s1 queue, s2 GPU)."""
    return {m["external"]["metric"]["name"]: quantity(m["external"]["current"].get("value")
                                                      or m["external"]["current"]["averageValue"])
            for m in hpa()["status"].get("currentMetrics") or [] if m.get("type") == "External"}


def replicas():
    return kubectl_json("get", "deployment", APP, "-n", APP_NAMESPACE)["spec"].get("replicas")


def test_keda_scales_on_the_real_prometheus_within_the_gpus(stack, synthetic):
    # Quiet: 20 ms, nothing queued, GPUs 12% busy. The HPA reads all three triggers from Prometheus and keeps the minimum.
    feed(stack, synthetic, latency_seconds=0.02, queue_depth=0, gpu_percent=12)
    # The values are the Prometheus answers to the chart's queries: p95 23.75 ms (the 25 ms bucket), 12% GPU.
    def quiet():
        values = trigger_values()
        return (len(values) == 3 and 20 < values.get("s0-prometheus", 0) < 25 and values.get("s2-prometheus") == 12
                and replicas() == MIN)
    wait_for(quiet, f"the HPA to read p95 ~23.75 ms and 12% GPU from the three triggers and hold {MIN} replica(s)",
             timeout=180, interval=2, explain=state)

    # Load: p95 400 ms (threshold 100), 250 queued (100 per replica), GPUs 90% (threshold 30).
    feed(stack, synthetic, latency_seconds=0.4, queue_depth=250, gpu_percent=90)
    start = time.monotonic()
    wait_for(lambda: replicas() == MAX, f"KEDA and the HPA to scale {APP} to {MAX}", timeout=120, interval=2,
             explain=state)
    print(f"scaled {MIN} -> {MAX} in {time.monotonic() - start:.0f}s")

    # The scheduler fills the GPU nodes and leaves the rest Pending for want of GPUs.
    def placed():
        current = pods()
        running = [p for p in current if p["spec"].get("nodeName")]
        return len(current) == MAX and len(running) == FITTING and current
    current = wait_for(placed, f"{FITTING} pods on GPU nodes and {MAX - FITTING} Pending", timeout=60, explain=state)
    nodes = [p["spec"]["nodeName"] for p in current if p["spec"].get("nodeName")]
    assert set(nodes) <= GPU_NODES and all(nodes.count(n) == 2 for n in GPU_NODES), nodes
    # The app role's GPU preflight said so before the converge wrote anything: its arithmetic is the scheduler's.
    said = re.search(r"would run (\d+) pods needing (\d+) nvidia.com/gpu, but only (\d+) pods fit on the schedulable "
                     r"nodes \((\d+) free\)", " ".join(stack.converge_output.split()))
    assert said, "the GPU preflight did not warn that the autoscaler's maximum exceeds the GPUs"
    assert [int(n) for n in said.groups()] == [MAX, MAX * 2, len(nodes), len(GPU_NODES) * 4], (said.group(0), nodes)
    pending = {p["metadata"]["name"] for p in current if not p["spec"].get("nodeName")}
    assert {p["status"]["phase"] for p in current if p["metadata"]["name"] in pending} == {"Pending"}, state()

    def unschedulable_for_gpus():
        events = kubectl_json("get", "events", "-n", APP_NAMESPACE, "--field-selector", "reason=FailedScheduling")
        named = {e["involvedObject"]["name"] for e in events["items"] if "Insufficient nvidia.com/gpu" in e["message"]}
        return pending <= named
    wait_for(unschedulable_for_gpus, f"FailedScheduling 'Insufficient nvidia.com/gpu' for {sorted(pending)}",
             timeout=60, explain=lambda: sh("kubectl", "get", "events", "-n", APP_NAMESPACE).stdout[-3000:])

    # playbooks/diagnose.yml names the cause.
    diagnose = sh("ansible-playbook", "playbooks/diagnose.yml", "-i", "inventories/local", "-e", f"@{HERE / 'stack.yml'}",
                  check=False, timeout=300)
    out = " ".join((diagnose.stdout + diagnose.stderr).split())
    assert diagnose.returncode != 0 and "Insufficient nvidia.com/gpu" in out and "Hint: the pods need 2 nvidia.com/gpu" in out, out[-3000:]

    # Load gone: 20 ms, nothing queued, GPUs 5%. Back to the minimum once the scale-down stabilization passed.
    feed(stack, synthetic, latency_seconds=0.02, queue_depth=0, gpu_percent=5)
    start = time.monotonic()
    wait_for(lambda: replicas() == MIN and len(pods()) == MIN, f"{APP} back at {MIN} replica(s)", timeout=180,
             interval=2, explain=state)
    elapsed = time.monotonic() - start
    print(f"scaled {MAX} -> {MIN} in {elapsed:.0f}s")
    assert elapsed >= 20, "scaled down before the 30 s stabilization window: the HPA behaviour is not the one tested"
