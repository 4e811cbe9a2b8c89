"""playbooks/drift.yml on the hermetic cluster: what the inventory deploys against what runs (issue 11, item 1).

site.yml converges a small real part of the stack: the app role (the bundled chart, autoscaling by HPA, its
NetworkPolicy, ConfigMap and namespace) and the datastores role in external mode against real PostgreSQL and Redis on
loopback (tests/datastores/servers.sh), whose connection Secret the role applies itself. Then drift.yml:
- right after the converge: exit 0, every object in sync, and nothing written (resourceVersions unchanged, and every
  write request in the API server's audit log is a dry run);
- after changes out of band: an image set on the Deployment, a ConfigMap key edited, the NetworkPolicy deleted, a
  Pod Security label of the namespace edited and the connection Secret's DATABASE_URL changed are each reported (the
  Secret by hash: neither value appears in the output at -v nor in the JSON report), the run fails naming them;
  the Deployment scaled out as its HPA would is not reported.
Not shown here: the other roles' releases (their charts run in tests/budget and molecule; drift.yml composes them the
same way), kwok pods (no container runs), a chart's lookup() (helm template renders without the cluster).
"""
import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))
import run_stats  # noqa: E402  (hack/ is not a package)

KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
SERVERS = ROOT / "tests" / "datastores" / "servers.sh"
NAMESPACE = "pytest-drift"
ENV = dict(os.environ, PATH=f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{os.environ['PATH']}",
           ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), KUBECONFIG=str(KUBECONFIG), TENSAFE_LOCAL_GPUS="1",
           ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
CANARY = "drift-canary-Zq81xv"  # the password of the out-of-band DATABASE_URL: must never be printed


def sh(*cmd, check=True, **kwargs):
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, check=check, **kwargs)


def kubectl(*args, check=True):
    return sh(str(ROOT / "bin/kubectl"), *args, check=check)


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stack:
    def __init__(self, inventory, work, servers):
        self.inventory, self.work, self.servers = inventory, work, servers

    def drift(self, name, *extra):
        report = self.work / f"{name}.json"
        mark = run_stats.AuditMark()
        result = sh("ansible-playbook", "playbooks/drift.yml", "-i", str(self.inventory), "-v",
                    "-e", f"tensafe_drift_report={report}", *extra, check=False, timeout=900)
        (self.work / f"{name}.log").write_text(result.stdout + result.stderr)
        result.report = json.loads(report.read_text()) if report.exists() else None
        result.requests = mark.requests()
        return result


def resource_versions():
    """Every object of the namespace (and the namespace itself): kind/name -> resourceVersion."""
    kinds = "deployments,replicasets,configmaps,secrets,services,serviceaccounts,networkpolicies,poddisruptionbudgets," \
            "horizontalpodautoscalers,roles,rolebindings"
    items = json.loads(kubectl("get", kinds, "-n", NAMESPACE, "-o", "json").stdout)["items"]
    items.append(json.loads(kubectl("get", "namespace", NAMESPACE, "-o", "json").stdout))
    return {f"{i['kind']}/{i['metadata']['name']}": i["metadata"]["resourceVersion"] for i in items}


def settled_resource_versions(quiet=7, timeout=90):
    """resource_versions() once nothing in the namespace has been written for `quiet` seconds: right after a converge
    the controllers still write (the HPA's first status, within one 5 s HPA sync of hack/cluster-up.sh)."""
    deadline, last = time.monotonic() + timeout, resource_versions()
    while True:
        time.sleep(quiet)
        now = resource_versions()
        if now == last:
            return now
        assert time.monotonic() < deadline, f"the namespace kept changing for {timeout}s: " + ", ".join(
            sorted(k for k in now if now[k] != last.get(k)))
        last = now


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    sh("hack/cluster-up.sh", timeout=900)
    if not run_stats.AUDIT_LOG.exists():
        pytest.fail(f"{run_stats.AUDIT_LOG} missing: restart the cluster (hack/cluster-down.sh && hack/cluster-up.sh)")
    # Not under pytest's 0700 tmp dir: as root, PostgreSQL runs as the postgres user and must reach its data dir.
    servers_dir = pathlib.Path(tempfile.mkdtemp(prefix="tensafe-drift-"))
    servers_dir.chmod(0o711)
    servers_env = dict(ENV, DATASTORES_TEST_DIR=str(servers_dir / "run"), DATASTORES_TEST_PG_PORT=str(free_port()),
                       DATASTORES_TEST_REDIS_PORT=str(free_port()))
    work = tmp_path_factory.mktemp("drift")
    inventory = work / "inventory"
    try:
        started = subprocess.run([str(SERVERS), "start"], env=servers_env, capture_output=True, text=True, timeout=180)
        assert started.returncode == 0, started.stdout + started.stderr
        servers = dict(line.split("=", 1) for line in (servers_dir / "run/env").read_text().splitlines() if "=" in line)
        shutil.copytree(ROOT / "inventories/local", inventory)
        (inventory / "group_vars/all/drift.yml").write_text(yaml.safe_dump({
            "tensafe_kubeconfig": str(KUBECONFIG),
            "tensafe_prerequisites_enabled": False, "tensafe_observability_enabled": False,
            "tensafe_vault_enabled": False,
            "app_tensafe_release_namespace": NAMESPACE,
            "app_autoscaling_mode": "hpa", "app_autoscaling_min_replicas": 1, "app_autoscaling_max_replicas": 4,
            "datastores_namespace": NAMESPACE,
            "datastores_postgresql_mode": "external",
            "datastores_postgresql_external_host": servers["DATASTORES_TEST_PG_HOST"],
            "datastores_postgresql_external_port": int(servers["DATASTORES_TEST_PG_PORT"]),
            "datastores_postgresql_username": servers["DATASTORES_TEST_PG_USER"],
            "datastores_postgresql_database": servers["DATASTORES_TEST_PG_DATABASE"],
            "datastores_postgresql_external_password": servers["DATASTORES_TEST_PG_PASSWORD"],
            "datastores_postgresql_external_sslmode": "disable",
            "datastores_redis_mode": "external",
            "datastores_redis_external_host": servers["DATASTORES_TEST_REDIS_HOST"],
            "datastores_redis_external_port": int(servers["DATASTORES_TEST_REDIS_PORT"]),
            "datastores_redis_external_password": servers["DATASTORES_TEST_REDIS_PASSWORD"],
        }))
        converge = sh("ansible-playbook", "playbooks/site.yml", "-i", str(inventory), check=False, timeout=1800)
        (work / "converge.log").write_text(converge.stdout + converge.stderr)
        assert converge.returncode == 0, f"site.yml converge failed (log {work}):\n{converge.stdout[-5000:]}"
        yield Stack(inventory, work, servers)
    finally:
        sh("helm", "uninstall", "tensafe", "-n", NAMESPACE, "--wait", check=False)
        kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=180s", check=False)
        subprocess.run([str(SERVERS), "stop"], env=servers_env, capture_output=True, timeout=120)
        shutil.rmtree(servers_dir, ignore_errors=True)


# Written by their controllers while a rollout or the HPA's status moves on, whatever drift.yml does.
CONTROLLED = ("Deployment/", "ReplicaSet/", "HorizontalPodAutoscaler/")


def assert_read_only(run, before, settled=True):
    """No object changed (the controlled ones only when the cluster was settled), and every write the API server saw
    from the run was a dry run."""
    after = resource_versions()
    if not settled:
        before, after = ({k: v for k, v in d.items() if not k.startswith(CONTROLLED)} for d in (before, after))
    assert after == before, "drift.yml changed objects of the namespace"
    assert run.requests, "the audit log saw no request of the run"
    # The objects of the plan: the namespace and what is in it (the audit log also holds other runs on the cluster).
    ours = [r for r in run.requests if f"/namespaces/{NAMESPACE}" in r["uri"]]
    assert any("dryRun=All" in r["uri"] for r in ours), "the audit log saw no dry run of the run"
    writes = [f"{r['verb']} {r['uri']}" for r in ours
              if r["verb"] not in run_stats.READ_VERBS | {"watch"} and "dryRun=All" not in r["uri"]]
    assert not writes, "drift.yml wrote to the cluster:\n" + "\n".join(writes)


def by_name(report, kind, name):
    found = [o for o in report["objects"] if o["kind"] == kind and o["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {found}"
    return found[0]


def test_no_drift_after_a_converge(stack):
    before = settled_resource_versions()
    run = stack.drift("clean")
    assert run.returncode == 0, run.stdout[-4000:]
    assert run.report["drifted"] is False, run.report["drifted_objects"]
    kinds = {(o["component"], o["kind"]) for o in run.report["objects"]}
    # The app's release (its NetworkPolicy, ConfigMap, HPA), its namespace and the Secret the datastores role applies.
    assert {("app", "Deployment"), ("app", "NetworkPolicy"), ("app", "ConfigMap"), ("app", "HorizontalPodAutoscaler"),
            ("app", "Namespace"), ("datastores", "Secret")} <= kinds, kinds
    assert "app: " in run.stdout and "datastores: " in run.stdout
    assert_read_only(run, before)


def test_changes_out_of_band_are_reported(stack):
    secret = json.loads(kubectl("get", "secret", "tensafe-datastores", "-n", NAMESPACE, "-o", "json").stdout)
    live_url = base64.b64decode(secret["data"]["DATABASE_URL"]).decode()
    new_url = f"postgresql://tensafe:{CANARY}@db.example.org:5432/tensafe"
    kubectl("set", "image", "deployment/tensafe", "-n", NAMESPACE, "tensafe=registry.example.org/tensafe:9.9.9")
    kubectl("patch", "configmap", "tensafe", "-n", NAMESPACE, "--type", "merge", "-p", '{"data": {"TS_LOG_LEVEL": "debug"}}')
    kubectl("delete", "networkpolicy", "tensafe", "-n", NAMESPACE)
    kubectl("label", "namespace", NAMESPACE, "--overwrite", "pod-security.kubernetes.io/enforce=privileged")
    kubectl("patch", "secret", "tensafe-datastores", "-n", NAMESPACE, "--type", "merge",
            "-p", json.dumps({"data": {"DATABASE_URL": base64.b64encode(new_url.encode()).decode()}}))
    # What the HPA does on a scale-out: the Deployment's scale subresource.
    kubectl("scale", "deployment/tensafe", "-n", NAMESPACE, "--replicas=3")
    before = resource_versions()

    run = stack.drift("changed")

    assert run.returncode != 0, run.stdout[-4000:]
    report = run.report
    deployment = by_name(report, "Deployment", "tensafe")
    assert deployment["state"] == "drifted"
    assert [f["path"] for f in deployment["fields"]] == ["spec.template.spec.containers[0].image"], deployment
    assert deployment["fields"][0]["live"] == "registry.example.org/tensafe:9.9.9"
    assert "spec.replicas" not in json.dumps(report), "the HPA's scale-out was reported"

    configmap = by_name(report, "ConfigMap", "tensafe")
    assert configmap["fields"] == [{"path": "data.TS_LOG_LEVEL", "live": "debug", "desired": "info"}], configmap
    assert by_name(report, "NetworkPolicy", "tensafe")["state"] == "missing"
    assert by_name(report, "NetworkPolicy", "tensafe-test")["state"] == "in-sync"
    namespace = by_name(report, "Namespace", NAMESPACE)
    assert [f["path"] for f in namespace["fields"]] == ["metadata.labels.pod-security.kubernetes.io/enforce"], namespace

    secret_entry = by_name(report, "Secret", "tensafe-datastores")
    assert secret_entry["state"] == "drifted" and secret_entry["compared_by_hash"]
    assert [f["path"] for f in secret_entry["fields"]] == ["data.DATABASE_URL"], secret_entry
    field = secret_entry["fields"][0]
    assert field["live"].startswith("sha256:") and field["desired"].startswith("sha256:") and field["live"] != field["desired"]

    for name in ("Deployment pytest-drift/tensafe", "ConfigMap pytest-drift/tensafe", "NetworkPolicy pytest-drift/tensafe",
                 f"Namespace {NAMESPACE}", "Secret pytest-drift/tensafe-datastores"):
        assert name in run.stdout, f"{name} not named in the output"
    assert len(report["drifted_objects"]) == 5, report["drifted_objects"]

    output = run.stdout + run.stderr + json.dumps(report)
    password = stack.servers["DATASTORES_TEST_PG_PASSWORD"]
    for value in (CANARY, new_url, live_url, password, base64.b64encode(new_url.encode()).decode(),
                  secret["data"]["DATABASE_URL"]):
        assert value not in output, "a secret value was printed or written"
    assert_read_only(run, before, settled=False)  # the new image rolls out meanwhile
