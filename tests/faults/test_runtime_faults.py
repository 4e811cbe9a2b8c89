"""Runtime faults on the hermetic cluster (issue 13, item 5): Vault sealed, Vault unreachable, a CRD the app needs
deleted, GPU capacity taken by other pods.

Each test makes the fault on the real thing (the cluster's OpenBao sealed through its API with the root token, a
closed port and a port that never answers, CRDs deleted with kubectl, kwok pods outside TenSafe holding GPUs), runs the
playbook a user would run, and asserts what the user sees (the message names the address / CRD / numbers and the
variable to change), that the run wrote nothing to the cluster (the API server's audit log: no request but GET/LIST
from the run's clients), and then what a rerun does once the fault is gone. The Vault runs are at -vvv and their
output must hold no token, no unseal key and no JWT. Every test leaves the cluster (and OpenBao) as it found it.

Cost: 9 playbook runs (5 stop before any write, 3 converge a role, 1 reruns the GPU preflight); measured
11m29s on 2 cores shared with four other test suites; 4m08s when the machine was less busy (sealed 89 s, the other
four 159 s): `time pytest -q tests/faults/test_runtime_faults.py`.
"""
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))
import run_stats  # noqa: E402  (hack/ is not a package)

sys.path.insert(0, str(ROOT / "tests"))
from stack_as_found import AsFound  # noqa: E402  (tests/ is not a package)

CLUSTER = ROOT / ".cluster"
KUBECONFIG = CLUSTER / "kubeconfig"
ENV = dict(os.environ, PATH=f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{os.environ['PATH']}",
           ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), KUBECONFIG=str(KUBECONFIG),
           ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
ENV.pop("TENSAFE_LOCAL_GPUS", None)
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*")
# What the vault role writes to OpenBao with inventories/local; removed afterwards when it was not there before.
VAULT_PATHS = ["secret/metadata/tensafe", "sys/policies/acl/tensafe", "sys/auth/kubernetes"]
# The vault role reads the datastores' URLs from their Secret; a run of the vault role alone is given them.
FAKE_URLS = {"vault_database_url": "postgresql://tensafe:faults-db-password-0123456789@postgresql.tensafe:5432/tensafe",
             "vault_redis_url": "redis://:faults-redis-password-0123456789@redis.tensafe:6379/0"}


def sh(*cmd, check=True, env=None, **kwargs):
    return subprocess.run(cmd, cwd=ROOT, env=env or ENV, capture_output=True, text=True, check=check, **kwargs)


def kubectl_json(*args):
    return json.loads(sh("kubectl", *args, "-o", "json").stdout)


class Run:
    def __init__(self, rc, output, requests, seconds):
        self.rc, self.output, self.requests, self.seconds = rc, output, requests, seconds
        self.writes = [f"{r['verb']} {r['uri']} ({r['agent']})" for r in requests if r["verb"] not in run_stats.READ_VERBS]

    def __repr__(self):  # pytest prints fixture values and locals: never the output (it may hold what a test hunts)
        return f"<run rc={self.rc} {self.seconds:.0f}s {len(self.requests)} API requests, {len(self.writes)} writes>"


def playbook(name, *args, extra=None, gpus=None, tasks_file=None):
    """ansible-playbook playbooks/<name> -i inventories/local; the API requests it made (audit log) with it.
    tasks_file: record each task's seconds there (hack/callback_plugins/task_count.py)."""
    env = dict(ENV, TENSAFE_LOCAL_GPUS=str(gpus)) if gpus is not None else dict(ENV)
    if tasks_file:
        env.update(run_stats.callback_env(tasks_file))
    mark = run_stats.AuditMark()
    start = time.monotonic()
    result = sh("ansible-playbook", f"playbooks/{name}", "-i", "inventories/local", *args,
                *(["-e", json.dumps(extra)] if extra else []), check=False, env=env, timeout=900)
    seconds = time.monotonic() - start
    time.sleep(0.5)  # the audit log is written as the requests complete
    run = Run(result.returncode, result.stdout + result.stderr, mark.requests() or [], seconds)
    recap = re.findall(r"^localhost\s+:.*$", result.stdout, re.M)
    print(f"playbooks/{name} {' '.join(args)}: {run!r} {recap}")
    return run


def failure(run):
    """The message of the failed task (ansible-core 2.19+: '[ERROR]: Task failed: ...'), or the output's tail."""
    found = re.findall(r"^\[ERROR\]: Task failed: (.*?)(?:\nOrigin:|\Z)", run.output, re.M | re.S)
    message = " ".join((found[-1] if found else run.output[-3000:]).split())
    print(f"  the user sees: {message}")
    return message


class StackAsFound(AsFound):
    """AsFound (tests/stack_as_found.py) for the stack's namespaces, and the OpenBao paths the vault role writes."""

    def __init__(self):
        super().__init__(sh, {"tensafe", "vault", "keda", "monitoring", "datastores", "nvidia-device-plugin"})

    def __enter__(self):
        self.vault_absent = [path for path in VAULT_PATHS if bao(path) is None]
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        for path in self.vault_absent:
            bao(path, method="DELETE")


def openbao():
    """(address, root token, unseal key) of the cluster's OpenBao dev server (the key is in its start-up log)."""
    addr = (CLUSTER / "openbao/addr").read_text().strip()
    token = (CLUSTER / "openbao/token").read_text().strip()
    keys = re.findall(r"^Unseal Key: (\S+)$", (CLUSTER / "logs/openbao.log").read_text(), re.M)
    return addr, token, keys[-1] if keys else None


def bao(path, method="GET", body=None, auth=True):
    addr, token, _ = openbao()
    request = urllib.request.Request(f"{addr}/v1/{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"X-Vault-Token": token} if auth else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return json.loads(raw) if raw else {}
    except urllib.error.HTTPError as error:
        if error.code in (400, 404):  # absent (sys/auth/<path> answers 400 for a mount that does not exist)
            return None
        raise


def assert_no_secret(run, secrets):
    leaks = [name for name, value in secrets.items() if value and value in run.output]
    leaks += ["a JWT" for _ in JWT.finditer(run.output)]
    assert not leaks, f"the -vvv output printed: {', '.join(leaks)}"


@pytest.fixture(scope="module", autouse=True)
def cluster():
    sh("hack/cluster-up.sh")


@pytest.fixture()
def as_found():
    """Entered before the fault is made (OpenBao is read while unsealed), left after it is gone."""
    with StackAsFound() as found:
        yield found


# --- Vault ------------------------------------------------------------------------------------------------------------

@pytest.fixture()
def sealed_openbao(as_found):
    addr, token, key = openbao()
    assert key, "no unseal key in .cluster/logs/openbao.log: cannot restore a sealed OpenBao"
    assert not bao("sys/seal-status", auth=False)["sealed"]
    bao("sys/seal", method="PUT")
    try:
        assert bao("sys/seal-status", auth=False)["sealed"], "control: OpenBao did not seal"
        yield addr
    finally:
        bao("sys/unseal", method="PUT", body={"key": key}, auth=False)
        assert not bao("sys/seal-status", auth=False)["sealed"], "OpenBao stayed sealed"


def test_vault_sealed_stops_site_before_any_write_and_a_rerun_converges(sealed_openbao):
    addr, token, key = openbao()
    run = playbook("site.yml", "-vvv")
    message = failure(run)
    assert run.rc != 0, "site.yml went on with a sealed Vault"
    assert f"Vault at vault_addr {addr} is sealed" in message, message
    assert "bao operator unseal" in message and "vault_server" in message, message
    assert run.writes == [], f"site.yml wrote before it stopped: {run.writes}"
    assert_no_secret(run, {"the root token (vault_token)": token, "the unseal key": key})

    # The fault gone: the same Vault unsealed, the vault role converges (alone: its datastores' URLs given).
    bao("sys/unseal", method="PUT", body={"key": key}, auth=False)
    rerun = playbook("site.yml", "--tags", "vault", extra=FAKE_URLS)
    assert rerun.rc == 0, f"the rerun after unsealing failed: {failure(rerun)}"
    assert bao("secret/metadata/tensafe") is not None, "the rerun did not write the app's secrets to OpenBao"


def silent_port():
    """A port that accepts connections (the kernel's backlog) and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    return server


def closed_port():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


@pytest.mark.parametrize("fault", ["refused", "never answers"])
def test_vault_unreachable_stops_site_before_any_write(fault, tmp_path):
    _, token, key = openbao()
    server = silent_port() if fault == "never answers" else None
    port = server.getsockname()[1] if server else closed_port()
    addr = f"http://127.0.0.1:{port}"
    tasks_file = tmp_path / "tasks.json"
    try:
        run = playbook("site.yml", "-vvv", extra={"vault_addr": addr}, tasks_file=tasks_file)
    finally:
        if server:
            server.close()
    message = failure(run)
    assert run.rc != 0
    expected = "connection refused" if fault == "refused" else "timed out after 10s"
    assert f"Vault at vault_addr {addr} is unreachable ({expected}" in message, message
    assert run.writes == [], f"site.yml wrote before it stopped: {run.writes}"
    assert_no_secret(run, {"the root token (vault_token)": token, "the unseal key": key})
    if fault == "never answers":
        # The request's own time (the whole run's depends on the machine's load): 10 s, not uri's default 30 s.
        asked = [t["seconds"] for t in run_stats.load_tasks(tasks_file) if "Ask the external Vault" in t["task"]]
        assert asked and asked[0] < 25, f"a Vault that never answers held the request {asked}s"


# --- A CRD the app needs ----------------------------------------------------------------------------------------------

@pytest.fixture()
def deleted_crds(tmp_path):
    """Delete two CRDs the roles need; restore() puts back exactly the ones found (the cluster's CRDs come from the
    charts, e.g. KEDA's, which differ from ../shared/crds: a restore from there would leave other CRDs behind)."""
    names = ["scaledobjects.keda.sh", "servicemonitors.monitoring.coreos.com"]
    found = json.loads(sh("kubectl", "get", "crd", *names, "-o", "json").stdout)["items"]
    for crd in found:
        crd.pop("status", None)
        crd["metadata"] = {key: crd["metadata"][key] for key in ("name", "labels", "annotations") if key in crd["metadata"]}
    saved = tmp_path / "crds.json"
    saved.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": found}))
    sh("kubectl", "delete", "crd", *names, "--ignore-not-found", "--wait=true")

    def restore():
        sh("kubectl", "apply", "--server-side", "--force-conflicts", "--field-manager", "hermetic-cluster-up", "-f",
           str(saved))
        sh("kubectl", "wait", "--for", "condition=Established", "--timeout=60s", *[f"crd/{n}" for n in names])
    try:
        yield restore
    finally:
        restore()


def test_missing_crds_are_named_before_any_write_and_a_rerun_converges(as_found, deleted_crds):
    features = {"app_autoscaling_mode": "keda", "app_service_monitor_enabled": True}
    run = playbook("app.yml", extra=features)
    message = failure(run)
    assert run.rc != 0
    for expected in ["CRD scaledobjects.keda.sh (keda.sh/v1alpha1) is missing, needed by app_autoscaling_mode: keda",
                     "prerequisites_keda_enabled", "set app_autoscaling_mode to hpa or none",
                     "CRD servicemonitors.monitoring.coreos.com (monitoring.coreos.com/v1) is missing",
                     "observability_prometheus_mode: install", "set app_service_monitor_enabled: false"]:
        assert expected in message, message
    assert run.writes == [], f"the app role wrote before it stopped: {run.writes}"

    deleted_crds()  # the fault gone: the CRDs are back
    rerun = playbook("app.yml", extra=features)
    assert rerun.rc == 0, f"the rerun with the CRDs back failed: {failure(rerun)}"
    kinds = {item["kind"] for item in kubectl_json("get", "scaledobjects,servicemonitors", "-n", "tensafe")["items"]}
    assert kinds == {"ScaledObject", "ServiceMonitor"}, kinds


# --- GPU capacity -----------------------------------------------------------------------------------------------------

HOG_NAMESPACE = "faults-gpu-hog"


def hog(node, gpus):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"hog-{node}", "namespace": HOG_NAMESPACE, "labels": {"app": "gpu-hog"}},
            "spec": {"nodeName": node,
                     "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                     "containers": [{"name": "train", "image": "example.invalid/train:1",
                                     "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]}}


@pytest.fixture()
def gpu_hogs(tmp_path):
    """Pods outside TenSafe holding 3 of the 4 GPUs of gpu-1 and of gpu-2 (6 of 8); removed by calling the fixture."""
    manifest = tmp_path / "hogs.yaml"
    manifest.write_text(yaml.safe_dump_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": HOG_NAMESPACE}}]
                                           + [hog("gpu-1", 3), hog("gpu-2", 3)]))
    sh("kubectl", "apply", "-f", str(manifest))
    sh("kubectl", "wait", "--for", "condition=Ready", "--timeout=60s", "-n", HOG_NAMESPACE, "pod", "-l", "app=gpu-hog")

    def remove():
        sh("kubectl", "delete", "pod", "-n", HOG_NAMESPACE, "-l", "app=gpu-hog", "--ignore-not-found", "--wait=true")
    try:
        yield remove
    finally:
        sh("kubectl", "delete", "namespace", HOG_NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=120s")


def test_gpus_held_by_other_pods_refuse_the_app_before_any_write(as_found, gpu_hogs):
    # 2 replicas x 2 GPUs (+ no surge pod on a first install): 4 of the 8 GPUs; the others hold 6 and leave 1 + 1.
    workload = {"app_replicas": 2}
    run = playbook("app.yml", extra=workload, gpus=2)
    message = failure(run)
    assert run.rc != 0
    for expected in ["Not enough GPUs: the app needs 4 nvidia.com/gpu (2 replicas x 2 nvidia.com/gpu per pod)",
                     "8 allocatable, 6 requested by other pods (not this release's), 2 free",
                     f"gpu-1 1 free of 4 (3 used by other pods: {HOG_NAMESPACE}/hog-gpu-1 3)",
                     "app_replicas", "app_gpus_per_pod"]:
        assert expected in message, message
    assert run.writes == [], f"the app role wrote before it stopped: {run.writes}"

    gpu_hogs()  # the other pods gone: the app converges
    rerun = playbook("app.yml", extra=workload, gpus=2)
    assert rerun.rc == 0, f"the rerun without the other pods failed: {failure(rerun)}"
    pods = kubectl_json("get", "pods", "-n", "tensafe", "-l", "app.kubernetes.io/instance=tensafe")["items"]
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]

    # A rerun of the converged app: its own 4 GPUs are not "used by others" (else 4 free < 3 pods x 2, refused).
    again = playbook("app.yml", "--tags", "app_preflight", extra=workload, gpus=2)
    assert again.rc == 0, f"the GPU check refused the converged app's rerun: {failure(again)}"
    report = " ".join(again.output.split()).replace("''", "'")
    print(f"  the rerun reports: {report[report.find('nvidia.com/gpu per node'):][:400]}")
    assert re.search(r"gpu-\d 4 free of 4 \(\d held by the app's pods being replaced\)", report), report[-3000:]
    assert "3 of them fit (8 free of 8 on the usable nodes)" in report, report[-3000:]
