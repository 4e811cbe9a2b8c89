"""The gpu_fit filter places the app's GPU pods on the nodes as the scheduler would (issue 15, defect 2).

The hermetic cluster's GPU nodes: gpu-1 and gpu-2, 4 nvidia.com/gpu each, tainted nvidia.com/gpu:NoSchedule.
"""
import importlib.util
import pathlib

import pytest
from ansible.errors import AnsibleFilterError

PLUGIN = pathlib.Path(__file__).resolve().parents[2] / "collections/ansible_collections/tensafe/k8s/plugins/filter/gpu_fit.py"
spec = importlib.util.spec_from_file_location("gpu_fit", PLUGIN)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
gpu_fit = module.gpu_fit
pod_gpus = module.pod_gpus

GPU = "nvidia.com/gpu"
SELECTOR = {"nvidia.com/gpu.present": "true"}
TOLERATIONS = [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]


def node(name, gpus=4, ready="True", taints=({"key": GPU, "effect": "NoSchedule"},), labels=None, cordoned=False):
    return {
        "metadata": {"name": name, "labels": dict(SELECTOR if labels is None else labels)},
        "spec": {"taints": list(taints), **({"unschedulable": True} if cordoned else {})},
        "status": {"allocatable": {GPU: str(gpus), "cpu": "32"}, "conditions": [{"type": "Ready", "status": ready}]},
    }


def pod(name, node_name, gpus, namespace="other", release=None, phase="Running"):
    labels = {"app.kubernetes.io/instance": release} if release else {}
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"nodeName": node_name, "containers": [{"name": "c", "resources": {"limits": {GPU: gpus}}}]},
        "status": {"phase": phase},
    }


def app(replicas, **kw):
    return dict({"name": "tensafe", "namespace": "tensafe", "release": "tensafe", "replicas": replicas,
                 "max_surge": 1, "max_unavailable": 0}, **kw)


def fit(nodes, pods=(), per_pod=1, groups=None, selector=SELECTOR, tolerations=TOLERATIONS):
    return gpu_fit(nodes, pods=list(pods), resource=GPU, per_pod=per_pod, node_selector=selector,
                   tolerations=tolerations, groups=groups if groups is not None else [app(2)])


NODES = [node("gpu-1"), node("gpu-2")]


def test_enough_and_exactly_enough():
    assert fit(NODES, groups=[app(2)])["fits"]
    result = fit(NODES, per_pod=2, groups=[app(4)])
    assert result["fits"] and result["capacity_pods"] == 4 and result["demand_gpus"] == 8


def test_five_per_pod_on_nodes_of_four_does_not_fit():
    """8 GPUs in total are more than the 5 one pod asks for, but no single node has 5."""
    result = fit(NODES, per_pod=5, groups=[app(1)])
    assert not result["fits"]
    assert result["capacity_pods"] == 0 and result["total_gpus"] == 8
    assert result["unplaced"] == ["tensafe replica 1 of 1"]
    assert "more than any usable node has (largest: 4 on gpu-1)" in result["reason"]


def test_seven_of_eight_in_use_leaves_room_for_one_pod():
    others = [pod("a", "gpu-1", 4), pod("b", "gpu-2", 2), pod("c", "gpu-2", 1)]
    result = fit(NODES, others, groups=[app(2)])
    assert not result["fits"]
    assert result["free_gpus"] == 1 and result["used_gpus"] == 7 and result["placed"] == 1
    assert result["unplaced"] == ["tensafe replica 2 of 2"]
    assert "gpu-1 0 free of 4 (4 used by other pods: other/a 4)" in result["nodes_text"]
    assert "gpu-2 1 free of 4 (3 used by other pods: other/b 2, other/c 1)" in result["nodes_text"]


def test_finished_and_unbound_pods_hold_nothing():
    others = [pod("done", "gpu-1", 4, phase="Succeeded"), pod("failed", "gpu-1", 4, phase="Failed"), pod("pending", "", 4)]
    result = fit(NODES, others, groups=[app(8)])
    assert result["fits"]
    assert [n["used"] for n in result["nodes"]] == [0, 0]


def test_the_apps_own_pods_are_replaced_not_counted():
    """The app's running pods free their GPUs for their replacements; another namespace's pods do not."""
    own = [pod("tensafe-%d" % i, "gpu-1" if i < 4 else "gpu-2", 1, namespace="tensafe", release="tensafe") for i in range(6)]
    result = fit(NODES, own, groups=[app(6, max_surge=0, max_unavailable=1)])
    assert result["fits"] and result["groups"][0]["running"] == 6
    assert result["nodes"][0]["own"] == 4 and result["nodes"][0]["free"] == 4
    stranger = [pod("x", "gpu-1", 4, namespace="elsewhere", release="tensafe")]
    assert fit(NODES, stranger, groups=[app(8, max_surge=0, max_unavailable=1)])["placed"] == 4


def test_surge_pod_of_a_full_fleet_does_not_fit():
    """8 replicas of 1 GPU fill both nodes: with maxUnavailable 0 the rolling update's surge pod can never start."""
    own = [pod("tensafe-%d" % i, "gpu-1" if i < 4 else "gpu-2", 1, namespace="tensafe", release="tensafe") for i in range(8)]
    result = fit(NODES, own, groups=[app(8, max_surge=1, max_unavailable=0)])
    assert not result["fits"]
    assert result["demand_pods"] == 9 and result["groups"][0]["surge_pods"] == 1
    assert result["unplaced"] == ["tensafe surge pod of the rolling update"]
    assert "maxUnavailable is 0" in result["reason"] and "Helm timeout" in result["reason"]


@pytest.mark.parametrize("surge,unavailable", [(0, 1), (1, 1), ("0%", "25%"), (0, 0)])
def test_full_fleet_rolls_when_the_strategy_may_remove_a_pod_first(surge, unavailable):
    """maxUnavailable >= 1 (also 25% of 8 = 2, and 0/0 which the controller turns into 1) needs no extra GPU."""
    own = [pod("tensafe-%d" % i, "gpu-1" if i < 4 else "gpu-2", 1, namespace="tensafe", release="tensafe") for i in range(8)]
    result = fit(NODES, own, groups=[app(8, max_surge=surge, max_unavailable=unavailable)])
    assert result["fits"] and result["groups"][0]["surge_pods"] == 0


def test_percentages_round_like_the_deployment_controller():
    """maxUnavailable 10% of 8 rounds down to 0: the surge pod is needed."""
    own = [pod("tensafe-%d" % i, "gpu-1" if i < 4 else "gpu-2", 1, namespace="tensafe", release="tensafe") for i in range(8)]
    result = fit(NODES, own, groups=[app(8, max_surge="25%", max_unavailable="10%")])
    assert not result["fits"] and result["groups"][0]["max_surge"] == 2 and result["groups"][0]["max_unavailable"] == 0


def test_first_install_needs_no_surge():
    assert fit(NODES, groups=[app(8)])["fits"]


def test_taint_not_tolerated_excludes_the_node():
    result = fit(NODES, groups=[app(1)], tolerations=[])
    assert not result["fits"] and result["reason"] == "no node is usable for the app's pods"
    assert result["nodes"][0]["reasons"] == ["taint nvidia.com/gpu:NoSchedule not tolerated"]
    tolerate_all = [{"operator": "Exists"}]
    assert fit(NODES, groups=[app(1)], tolerations=tolerate_all)["fits"]
    no_execute = [node("gpu-1", taints=[{"key": "dedicated", "value": "batch", "effect": "NoExecute"}])]
    assert fit(no_execute, tolerations=TOLERATIONS)["nodes"][0]["reasons"] == ["taint dedicated=batch:NoExecute not tolerated"]
    prefer = [node("gpu-1", taints=[{"key": "x", "effect": "PreferNoSchedule"}])]
    assert fit(prefer, groups=[app(1)])["fits"]
    equal = [{"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoExecute"}]
    assert fit(no_execute, groups=[app(1)], tolerations=equal)["fits"]


def test_node_selector_mismatch_excludes_the_node():
    nodes = [node("gpu-1", labels={"nvidia.com/gpu.present": "true", "pool": "a"}), node("gpu-2")]
    result = fit(nodes, groups=[app(5)], selector={"nvidia.com/gpu.present": "true", "pool": "a"})
    assert not result["fits"] and result["placed"] == 4
    assert result["nodes"][1]["reasons"] == ["nodeSelector pool=a not matched"]


def test_cordoned_and_not_ready_nodes_are_excluded():
    nodes = [node("gpu-1", cordoned=True), node("gpu-2", ready="False")]
    result = fit(nodes, groups=[app(1)])
    assert not result["fits"]
    assert result["nodes"][0]["reasons"] == ["cordoned"]
    assert result["nodes"][1]["reasons"] == ["not Ready"]
    # A pod that tolerates the unschedulable taint is placed on a cordoned node, as by the scheduler.
    assert fit([node("gpu-1", cordoned=True)], groups=[app(1)], tolerations=[{"operator": "Exists"}])["fits"]


def test_node_without_the_resource():
    result = fit([node("cpu-1", gpus=0)], groups=[app(1)])
    assert result["nodes"][0]["reasons"] == ["no allocatable nvidia.com/gpu"]


def test_blue_green_counts_both_colours():
    """The live colour keeps running while green starts: 2 x 3 pods of 2 GPUs need 12 GPUs, the nodes have 8."""
    blue = [pod("tensafe-%d" % i, "gpu-%d" % (i % 2 + 1), 2, namespace="tensafe", release="tensafe") for i in range(3)]
    green = app(3, name="tensafe-green", release="tensafe-green")
    result = fit(NODES, blue, per_pod=2, groups=[green])
    assert not result["fits"] and result["placed"] == 1 and result["free_gpus"] == 2
    both = fit(NODES, blue, per_pod=2, groups=[app(3), dict(green, rolls=False)])
    assert not both["fits"] and both["demand_pods"] == 7 and both["placed"] == 4


def test_autoscaled_demand_is_the_running_count_and_the_peak_is_the_maximum():
    own = [pod("tensafe-%d" % i, "gpu-1", 1, namespace="tensafe", release="tensafe") for i in range(3)]
    result = fit(NODES, own, groups=[app(2, autoscaled=True, max_replicas=20, max_surge=0, max_unavailable=1)])
    assert result["fits"] and result["groups"][0]["replicas"] == 3
    assert result["peak_pods"] == 20 and not result["peak_fits"]


def test_effective_pod_request():
    p = {"spec": {
        "containers": [{"resources": {"requests": {GPU: "1"}, "limits": {GPU: "1"}}}, {"resources": {"limits": {GPU: 2}}}],
        "initContainers": [{"resources": {"limits": {GPU: "4"}}}, {"restartPolicy": "Always", "resources": {"limits": {GPU: "1"}}}],
        "overhead": {GPU: "1"}}}
    # max(containers 3 + sidecar 1, init 4) + overhead 1
    assert pod_gpus(p, GPU) == 5


def test_bad_inputs_fail():
    with pytest.raises(AnsibleFilterError):
        fit(NODES, per_pod=0)
    with pytest.raises(AnsibleFilterError):
        fit(NODES, groups=[app("two")])
