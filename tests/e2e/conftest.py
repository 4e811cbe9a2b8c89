"""The stack end to end on the hermetic cluster, with a real Prometheus server (bin/prometheus) as a host process.

One session converges playbooks/site.yml (tests/e2e/stack.yml on inventories/local: KEDA, kube-prometheus-stack with
the TenSafe alerts, the vault role against the cluster's OpenBao, the app with KEDA autoscaling). The Prometheus
scrapes `Synthetic`, a small exporter in this process whose series the tests set, evaluates the rule files the real
Prometheus Operator generated from the role's PrometheusRule (the prometheus-<name>-rulefiles-N ConfigMaps), and
answers the KEDA operator (a host process) at the URL the app's ScaledObject names.
"""
import ctypes
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
import chart_mirror  # noqa: E402  (tests/ is not a package)
import stack_as_found  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
CLUSTER = pathlib.Path(os.environ.get("CLUSTER_DIR", ROOT / ".cluster"))
KUBECONFIG = CLUSTER / "kubeconfig"
PROMETHEUS = ROOT / "bin" / "prometheus"
ENV = dict(os.environ, PATH=f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{os.environ['PATH']}",
           ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), KUBECONFIG=str(KUBECONFIG),
           ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
STACK = yaml.safe_load((HERE / "stack.yml").read_text())
APP_NAMESPACE = "tensafe"  # inventories/local's app_tensafe_release_namespace
APP = "tensafe"
MONITORING = "monitoring"
# What kube-prometheus-stack's Prometheus is called; the operator names its rule ConfigMaps after it.
PROMETHEUS_CR = "kube-prometheus-stack-prometheus"
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def pytest_collection_modifyitems(items):
    """Autoscaling first, then the runs of site.yml (the app role's GPU preflight needs the app at its minimum), then the
    alerts: their bad series scale the app out too (its ScaledObject reads the same Prometheus)."""
    first = [item for name in ("test_autoscaling.py", "test_rotation.py", "test_certificates.py")
             for item in items if item.path == HERE / name]
    rest = [item for item in items if item not in first]
    at = next((n for n, item in enumerate(rest) if item.path.parent == HERE), len(rest))
    items[:] = rest[:at] + first + rest[at:]


def sh(*cmd, check=True, timeout=300):
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, check=check, timeout=timeout)


def kubectl_json(*args):
    return json.loads(sh("kubectl", *args, "-o", "json").stdout)


def wait_for(predicate, what, timeout, interval=1.0, explain=None):
    """predicate() until truthy; on timeout fail with `what` and explain() (the state that was not reached)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + (f"\n{explain()}" if explain else ""))
        time.sleep(interval)


def die_with_parent():
    """In the child before exec: SIGTERM when the test process dies, even by SIGKILL (Linux PR_SET_PDEATHSIG)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class Synthetic:
    """TenSafe's series as the app and dcgm-exporter would expose them, for one pod in the app's namespace.

    The latency histogram's counters grow by `latency_per_second` observations per second, all of `latency_seconds`.
    The chart's and the alerts' queries take rate(...[5m]): `feed` makes Prometheus forget the histogram's past, so
    a new latency is what p95 says two scrapes later instead of after minutes of mixing with the old one."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latency_seconds, self.latency_per_second, self.queue_depth, self.gpu_percent = 0.02, 10, 0, 50
        self.buckets = dict.fromkeys((*LATENCY_BUCKETS, float("inf")), 0.0)
        self.count = self.sum = 0.0
        self.last = time.monotonic()

    def set(self, **values):
        with self.lock:
            self._advance()  # the counters grow at the old rate up to now
            self.__dict__.update(values)

    def _advance(self):
        now = time.monotonic()
        n = self.latency_per_second * (now - self.last)
        self.last = now
        for le in self.buckets:
            if self.latency_seconds <= le:
                self.buckets[le] += n
        self.count += n
        self.sum += n * self.latency_seconds

    def exposition(self):
        with self.lock:
            self._advance()
            labels = f'namespace="{APP_NAMESPACE}",pod="{APP}-synthetic"'
            lines = ["# TYPE tensafe_inference_latency_seconds histogram"]
            for le, value in self.buckets.items():
                lines.append(f'tensafe_inference_latency_seconds_bucket{{{labels},le="{"+Inf" if le == float("inf") else le}"}} {value}')
            lines += [f"tensafe_inference_latency_seconds_sum{{{labels}}} {self.sum}",
                      f"tensafe_inference_latency_seconds_count{{{labels}}} {self.count}",
                      "# TYPE tensafe_job_queue_depth gauge", f"tensafe_job_queue_depth{{{labels}}} {self.queue_depth}",
                      "# TYPE nvidia_gpu_utilization gauge",
                      f'nvidia_gpu_utilization{{{labels},gpu="0"}} {self.gpu_percent}']
            return "\n".join(lines) + "\n"


class HostPrometheus:
    def __init__(self, url, rules_dir):
        self.url, self.rules_dir = url, rules_dir

    def query(self, promql):
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}",
                                    timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def alerts(self, *names):
        """alertname -> alertstate of the ALERTS series among names."""
        pattern = "|".join(names)
        return {r["metric"]["alertname"]: r["metric"]["alertstate"]
                for r in self.query(f'ALERTS{{alertname=~"{pattern}"}}')}

    def forget(self, selector):
        """Delete the stored samples of these series up to now (the TSDB admin API)."""
        query = urllib.parse.urlencode({"match[]": selector})
        request = urllib.request.Request(f"{self.url}/api/v1/admin/tsdb/delete_series?{query}", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 204, response.status

    def rule_groups(self):
        with urllib.request.urlopen(f"{self.url}/api/v1/rules", timeout=10) as response:
            return json.load(response)["data"]["groups"]

    def reload(self):
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200


def feed(prometheus, synthetic, **values):
    """Serve these values from now on; the latency histogram starts afresh (see Synthetic)."""
    synthetic.set(**values)
    prometheus.forget('{__name__=~"tensafe_inference_latency_seconds_.*"}')


@pytest.fixture(scope="session")
def cluster():
    """The hermetic cluster of this checkout with its operators (started when it is not running). Export the same
    CLUSTER_* ports as for the hack/cluster-up.sh that started it (docs/hermetic-cluster.md)."""
    for binary in ("prometheus", "keda-operator", "prometheus-operator"):
        if not (ROOT / "bin" / binary).exists():
            pytest.skip(f"bin/{binary} is not built: `make tools operators`")
    sh("hack/cluster-up.sh", timeout=900)
    return KUBECONFIG


@pytest.fixture(scope="session")
def synthetic():
    series = Synthetic()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server API)
            body = series.exposition().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    series.port = server.server_address[1]
    yield series
    server.shutdown()


@pytest.fixture(scope="session")
def prometheus(synthetic, tmp_path_factory):
    """bin/prometheus on a loopback port: scrapes the synthetic exporter every second, evaluates the rule files in
    rules_dir every second (empty until the operator's rule files are copied in and reloaded)."""
    work = tmp_path_factory.mktemp("prometheus")
    rules_dir = work / "rules"
    rules_dir.mkdir()
    config = work / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [f"{rules_dir}/*.yaml"],
        "scrape_configs": [{"job_name": "tensafe-synthetic", "honor_labels": True,
                            "static_configs": [{"targets": [f"127.0.0.1:{synthetic.port}"]}]}],
    }))
    # Next to the operators' ports (docs/hermetic-cluster.md), so that clusters on other ports do not collide.
    port = int(os.environ.get("CLUSTER_OPERATORS_PORT_BASE") or 20400) + 21
    log = open(work / "prometheus.log", "w")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(
        ["nice", "-n", "19", str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle", "--web.enable-admin-api", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    server = HostPrometheus(f"http://127.0.0.1:{port}", rules_dir)
    try:
        def ready():
            assert process.poll() is None, f"prometheus exited:\n{(work / 'prometheus.log').read_text()[-3000:]}"
            try:
                return bool(server.query('up{job="tensafe-synthetic"} == 1'))
            except OSError:
                return False
        wait_for(ready, "the host Prometheus to scrape the synthetic exporter", timeout=60)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


class AsFoundWithStores(stack_as_found.AsFound):
    """Also the ClusterSecretStore the vault role creates in external-secrets delivery (test_rotation)."""
    CLUSTER_KINDS = (*stack_as_found.AsFound.CLUSTER_KINDS, "clustersecretstores.external-secrets.io")


@pytest.fixture(scope="session")
def stack(cluster, prometheus, tmp_path_factory):
    """site.yml converged with tests/e2e/stack.yml; the app's ScaledObject queries the host Prometheus. Returns the host
    Prometheus with `site(*args)` (site.yml again, these extra arguments last) and the first converge's output. The
    cluster is left as found (the molecule scenarios after this suite install their own KEDA)."""
    with AsFoundWithStores(sh, stack_as_found.stack_namespaces()):
        # An aborted earlier run can leave the app scaled out, which the app role's GPU preflight rightly refuses to roll.
        sh("helm", "uninstall", APP, "-n", APP_NAMESPACE, "--wait", "--ignore-not-found", timeout=300)
        varfile = tmp_path_factory.mktemp("stack") / "vars.json"
        varfile.write_text(json.dumps({**chart_mirror.archive_vars(), "app_keda_prometheus_url": prometheus.url}))

        def site(*args):
            start = time.monotonic()
            run = subprocess.run(["ansible-playbook", "playbooks/site.yml", "-i", "inventories/local",
                                  "-e", f"@{HERE / 'stack.yml'}", "-e", f"@{varfile}", *args],
                                 cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=1200)
            print(f"site.yml {' '.join(args)} rc={run.returncode} {time.monotonic() - start:.0f}s")
            assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
            return run.stdout

        prometheus.site = site
        prometheus.converge_output = site()
        yield prometheus


@pytest.fixture
def app_at_minimum(stack, synthetic):
    """Quiet series, and the app back at its minimum: the app role's GPU preflight rightly refuses to roll an app the
    autoscaler has scaled out beyond the GPUs (for the tests that run site.yml again)."""
    feed(stack, synthetic, latency_seconds=0.02, queue_depth=0, gpu_percent=5)
    minimum = STACK["app_autoscaling_min_replicas"]

    def at_minimum():
        pods = [p for p in kubectl_json("get", "pods", "-n", APP_NAMESPACE, "-l", f"app.kubernetes.io/instance={APP}")["items"]
                if not p["metadata"].get("deletionTimestamp")]
        return kubectl_json("get", "deployment", APP, "-n", APP_NAMESPACE)["spec"].get("replicas") == minimum == len(pods)
    wait_for(at_minimum, f"{APP} at its minimum of {minimum} replica(s) on quiet series", timeout=180, interval=2)


@pytest.fixture(scope="session")
def operator_rules(stack):
    """The rule files the real Prometheus Operator generated (every key of its prometheus-<name>-rulefiles-N
    ConfigMaps), copied into the host Prometheus's rule_files and loaded. Returns their names."""
    def generated():
        maps = [cm for cm in kubectl_json("get", "configmaps", "-n", MONITORING)["items"]
                if cm["metadata"]["name"].startswith(f"prometheus-{PROMETHEUS_CR}-rulefiles-")]
        files = {key: text for cm in maps for key, text in cm.get("data", {}).items()}
        return files if any("tensafe-alerts" in key for key in files) else None
    files = wait_for(generated, f"the operator's prometheus-{PROMETHEUS_CR}-rulefiles-N ConfigMap to hold the "
                     "role's tensafe-alerts rule file", timeout=120,
                     explain=lambda: sh("kubectl", "get", "configmaps,prometheusrules", "-n", MONITORING).stdout)
    for key, text in files.items():
        (stack.rules_dir / (key if key.endswith(".yaml") else f"{key}.yaml")).write_text(text)
    stack.reload()
    return sorted(files)
