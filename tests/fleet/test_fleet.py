"""One inventory, two clusters (issue 11, fleets): site.yml converges both in parallel, each with its own kubeconfig
and host_vars, reruns with changed=0 on both, `--limit` converges one only, and a bad value in one cluster's
host_vars stops both before anything is written to either.

Two hermetic clusters on different ports: cluster A is the usual one (.cluster, the CLUSTER_* ports exported, as for
every suite), cluster B its own CLUSTER_DIR (.cluster-fleet-b) on A's ports + FLEET_PORT_OFFSET (default 200), started
without operators or OpenBao. A cheap subset of the stack keeps it quick: the datastores role alone, Redis alone, with
the real bitnami/redis chart of the chart mirror; each cluster gets another persistence size from its host_vars.
Cluster B is stopped and purged at the end; what the test wrote on cluster A is removed.

Not shown here: clusters on other machines (both are local processes; the inventory only changes kubeconfigs),
the other roles in a fleet (the same site.yml play; their per-host inputs are exercised by tests/contract through
inventories/prod's two regions), and forks smaller than the fleet (Ansible's batching, not ours).
"""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
import chart_mirror  # noqa: E402  (tests/ is not a package)

PORT_VARS = ("CLUSTER_ETCD_PORT", "CLUSTER_ETCD_PEER_PORT", "CLUSTER_APISERVER_PORT", "CLUSTER_KCM_PORT",
             "CLUSTER_SCHEDULER_PORT", "CLUSTER_KWOK_PORT", "OPENBAO_PORT", "CLUSTER_OPERATORS_PORT_BASE")
DEFAULT_PORTS = {"CLUSTER_ETCD_PORT": 23790, "CLUSTER_ETCD_PEER_PORT": 23800, "CLUSTER_APISERVER_PORT": 26443,
                 "CLUSTER_KCM_PORT": 20257, "CLUSTER_SCHEDULER_PORT": 20259, "CLUSTER_KWOK_PORT": 20247,
                 "OPENBAO_PORT": 28200, "CLUSTER_OPERATORS_PORT_BASE": 20400}
OFFSET = int(os.environ.get("FLEET_PORT_OFFSET", "200"))
BASE_ENV = dict(os.environ, PATH=f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{os.environ['PATH']}",
                ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
CLUSTERS = {
    "fleet-a": {"dir": ROOT / ".cluster", "ports": {}},
    "fleet-b": {"dir": ROOT / ".cluster-fleet-b",
                "ports": {k: str(int(os.environ.get(k, v)) + OFFSET) for k, v in DEFAULT_PORTS.items()}},
}
# What each cluster's host_vars set: proves each host reads its own.
REDIS_SIZE = {"fleet-a": "2Gi", "fleet-b": "3Gi"}
NAMESPACE = "fleet-data"
RELEASE = "tensafe-redis"


def sh(*cmd, env=None, check=True, timeout=900):
    return subprocess.run(cmd, cwd=ROOT, env=env or BASE_ENV, capture_output=True, text=True, check=check,
                          timeout=timeout)


def kubectl(cluster, *args, check=True):
    return sh("kubectl", "--kubeconfig", str(CLUSTERS[cluster]["dir"] / "kubeconfig"), *args, check=check)


def helm_releases(cluster):
    out = sh("helm", "--kubeconfig", str(CLUSTERS[cluster]["dir"] / "kubeconfig"), "list", "-A", "-a", "-o", "json")
    return {(r["namespace"], r["name"]): r for r in json.loads(out.stdout)}


def namespaces(cluster):
    out = kubectl(cluster, "get", "namespaces", "-o", "json")
    return {item["metadata"]["name"] for item in json.loads(out.stdout)["items"]}


def inventory(path, namespace, bad_host_vars=None):
    """A fleet inventory: both clusters as hosts of tensafe_control, each with its kubeconfig in host_vars."""
    shutil.rmtree(path, ignore_errors=True)
    (path / "group_vars/all").mkdir(parents=True)
    (path / "host_vars").mkdir()
    (path / "hosts.yml").write_text(yaml.safe_dump({"tensafe_control": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "hosts": {name: None for name in CLUSTERS}}}))
    (path / "group_vars/all/fleet.yml").write_text(yaml.safe_dump({
        **{f"tensafe_{c}_enabled": False for c in ("prerequisites", "observability", "vault", "app")},
        "datastores_namespace": namespace,
        "datastores_postgresql_enabled": False,
        "datastores_redis_mode": "in-cluster",
        "datastores_redis_architecture": "standalone",
        "datastores_redis_replicas": 0,
        **chart_mirror.archive_vars(),
    }))
    for name, cluster in CLUSTERS.items():
        host_vars = {"tensafe_kubeconfig": str(cluster["dir"] / "kubeconfig"),
                     "datastores_redis_persistence_size": REDIS_SIZE[name]}
        host_vars.update((bad_host_vars or {}).get(name, {}))
        (path / "host_vars" / f"{name}.yml").write_text(yaml.safe_dump(host_vars))
    return path


def site(inv, *args):
    return sh("ansible-playbook", "playbooks/site.yml", "-i", str(inv), "--forks", "5", *args, check=False,
              timeout=1800)


def recap(result):
    """host -> {ok: n, changed: n, failed: n, ...} from the PLAY RECAP."""
    found = {}
    for host, counts in re.findall(r"^(fleet-[ab])\s+:\s+(.*)$", result.stdout, re.M):
        found[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
    return found


def redis_size(cluster, namespace):
    out = sh("helm", "--kubeconfig", str(CLUSTERS[cluster]["dir"] / "kubeconfig"), "get", "values", RELEASE,
             "-n", namespace, "-o", "json")
    return json.loads(out.stdout)["master"]["persistence"]["size"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    try:
        chart_mirror.archive_vars()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    for name, cluster in CLUSTERS.items():
        env = dict(BASE_ENV, **cluster["ports"], CLUSTER_DIR=str(cluster["dir"]))
        if name == "fleet-b":  # the second cluster needs no operators and no Vault: only Redis is converged
            env.update(CLUSTER_OPERATORS="", OPENBAO="0")
        result = sh("hack/cluster-up.sh", env=env, check=False)
        assert result.returncode == 0, f"cluster {name} did not start:\n{result.stderr[-3000:]}"
    work = tmp_path_factory.mktemp("fleet")
    before = {name: namespaces(name) for name in CLUSTERS}
    yield work
    for name in CLUSTERS:
        for namespace in sorted(namespaces(name) - before[name]):
            kubeconfig = str(CLUSTERS[name]["dir"] / "kubeconfig")
            sh("helm", "--kubeconfig", kubeconfig, "uninstall", RELEASE, "-n", namespace, check=False)
            kubectl(name, "delete", "namespace", namespace, "--wait=true", "--timeout=120s", check=False)
    env_b = dict(BASE_ENV, **CLUSTERS["fleet-b"]["ports"], CLUSTER_DIR=str(CLUSTERS["fleet-b"]["dir"]))
    sh("hack/cluster-down.sh", "--purge", env=env_b, check=False)


@pytest.fixture(scope="module")
def converged(fleet):
    """Converge both clusters, then rerun: (first run, rerun)."""
    inv = inventory(fleet / "inventory", NAMESPACE)
    first = site(inv)
    (fleet / "converge.log").write_text(first.stdout + first.stderr)
    assert first.returncode == 0, f"converge failed:\n{first.stdout[-6000:]}"
    again = site(inv)
    (fleet / "rerun.log").write_text(again.stdout + again.stderr)
    assert again.returncode == 0, f"rerun failed:\n{again.stdout[-6000:]}"
    return first, again


def test_one_run_converges_every_cluster_with_its_own_host_vars(converged):
    first, _ = converged
    assert set(recap(first)) == set(CLUSTERS), first.stdout[-3000:]
    for name in CLUSTERS:
        release = helm_releases(name).get((NAMESPACE, RELEASE))
        assert release and release["status"] == "deployed", f"{name}: {release}"
        assert redis_size(name, NAMESPACE) == REDIS_SIZE[name], f"{name} did not get its host_vars"


def test_the_clusters_roll_out_at_the_same_time(converged):
    """One Helm task for both clusters (forks), not one cluster's rollout after the other's."""
    first, _ = converged
    installs = re.findall(r"^TASK \[tensafe\.k8s\.common : Install or upgrade Redis\].*\n((?:(?!TASK ).*\n)*)",
                          first.stdout, re.M)
    assert len(installs) == 1, f"{len(installs)} Install tasks for Redis: the clusters rolled out one after the other"
    assert set(re.findall(r"\[(fleet-[ab])\]", installs[0])) == set(CLUSTERS), installs[0]


def test_the_rerun_changes_nothing_on_any_cluster(converged):
    _, again = converged
    counts = recap(again)
    assert set(counts) == set(CLUSTERS), again.stdout[-3000:]
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in counts.values()), counts
    for name in CLUSTERS:
        assert helm_releases(name)[(NAMESPACE, RELEASE)]["revision"] == "1", f"{name}: a rerun made a new revision"


def test_limit_converges_the_selected_cluster_only(fleet):
    inv = inventory(fleet / "inventory-limit", "fleet-limit")
    result = site(inv, "--limit", "fleet-a")
    assert result.returncode == 0, result.stdout[-6000:]
    assert set(recap(result)) == {"fleet-a"}, result.stdout[-3000:]
    assert ("fleet-limit", RELEASE) in helm_releases("fleet-a")
    assert "fleet-limit" not in namespaces("fleet-b")
    assert not [key for key in helm_releases("fleet-b") if key[0] == "fleet-limit"]


# A bad value in one cluster's host_vars, caught at each stage before the first write: the role's own checks
# (tensafe.k8s.datastores validate: not a Kubernetes quantity), the argument specs (not a whole number), and the
# cluster check (cluster B's kubeconfig names a port where nothing listens).
BAD = {
    "role-validate": ({"datastores_redis_persistence_size": "lots"}, "datastores_redis_persistence_size"),
    "argument-spec": ({"datastores_redis_replicas": "several"}, "datastores_redis_replicas"),
    "cluster-check": ({"tensafe_api_timeout": 3, "tensafe_kubeconfig": "UNREACHABLE"}, "127.0.0.1:1"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_value_in_one_cluster_stops_every_cluster_before_any_write(fleet, case):
    bad, named = BAD[case]
    if bad.get("tensafe_kubeconfig") == "UNREACHABLE":
        config = yaml.safe_load((CLUSTERS["fleet-b"]["dir"] / "kubeconfig").read_text())
        config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
        unreachable = fleet / "unreachable-kubeconfig"
        unreachable.write_text(yaml.safe_dump(config))
        bad = dict(bad, tensafe_kubeconfig=str(unreachable))
    namespace = f"fleet-bad-{case}"
    before = {name: (helm_releases(name), namespaces(name)) for name in CLUSTERS}
    result = site(inventory(fleet / f"inventory-{case}", namespace, {"fleet-b": bad}))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-6000:]
    assert named in output, f"the failure does not name {named}:\n{output[-6000:]}"
    counts = recap(result)
    assert counts.get("fleet-b", {}).get("failed") == 1, counts
    # Cluster A's inputs are fine: it stops because cluster B failed, at the same task, before its lock and writes.
    assert not re.search(r"^TASK \[.*converge lock", output, re.M), output[-6000:]
    for name in CLUSTERS:
        releases, spaces = before[name]
        assert helm_releases(name) == releases, f"{name}: a Helm release record was written"
        assert namespaces(name) == spaces, f"{name}: a namespace was created"
        assert kubectl(name, "get", "lease", "tensafe-converge", "-n", "kube-system", check=False).returncode != 0
