"""Blue-green with a health gate and switch-back (issue 11 item 4), on the hermetic cluster with the bundled chart:
playbooks/blue_green.yml (tasks_from: blue_green) against a live release installed by the same playbook.

What stands in for what (docs/testing.md, "blue-green"):
- the chart's `helm test` pod is a kwok pod: hack/cluster/kwok-stages.yaml completes it Succeeded, or Failed when the
  colour's image tag ends in "-unhealthy" (no curl runs, no /health is fetched);
- Prometheus is a local HTTP server answering the query API with the error rate each test sets (no scrape, no PromQL
  evaluation); it records the queries, so the test sees that the gate asks about the new colour;
- readiness lost after the switch is a colour pod that cannot be scheduled (the test changes the colour's nodeSelector
  out of band while the gate watches).
"""
import http.server
import json
import os
import pathlib
import re
import subprocess
import threading
import time
import urllib.parse
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLUSTER = pathlib.Path(os.environ.get("CLUSTER_DIR", ROOT / ".cluster"))
KUBECONFIG = CLUSTER / "kubeconfig"
PLAYBOOK = ROOT / "playbooks/blue_green.yml"
INVENTORY = ROOT / "tests/blue_green/inventory.yml"
ENV = dict(os.environ, PATH=f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{os.environ['PATH']}",
           ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), KUBECONFIG=str(KUBECONFIG),
           ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
RELEASE = "tensafe"
COLOUR = "tensafe-green"


def sh(*cmd, check=True, timeout=300):
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, check=check, timeout=timeout)


class Run:
    def __init__(self, returncode, out):
        self.rc, self.out = returncode, out
        self.text = re.sub(r"\s+", " ", out)

    def recap(self):
        for line in self.out.splitlines():
            if line.startswith("localhost") and "changed=" in line:
                return {k: int(v) for k, v in (item.split("=") for item in line.split(":", 1)[1].split())}
        raise AssertionError(f"no PLAY RECAP in:\n{self.out[-3000:]}")

    def __repr__(self):
        return f"<run rc={self.rc}:\n{self.out[-5000:]}>"


def extra_vars(namespace, **more):
    return {"tensafe_kubeconfig": str(KUBECONFIG), "app_tensafe_release_namespace": namespace,
            "app_ingress_enabled": True, "app_tensafe_helm_timeout": "60s", "app_verify_timeout": 30,
            "app_blue_green_gate_duration": 4, "app_blue_green_gate_interval": 2,
            "app_blue_green_gate_prometheus_url": "", **more}


def command(namespace, **more):
    return ["ansible-playbook", "-i", str(INVENTORY), str(PLAYBOOK), "-e", json.dumps(extra_vars(namespace, **more))]


def blue_green(namespace, **more):
    done = subprocess.run(command(namespace, **more), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    return Run(done.returncode, done.stdout + done.stderr)


def backend(namespace):
    """The Service the live release's Ingress routes to: where the traffic is."""
    return sh("kubectl", "get", "ingress", RELEASE, "-n", namespace,
              "-o", "jsonpath={.spec.rules[0].http.paths[0].backend.service.name}").stdout


def release_status(name, namespace):
    """Helm's status of a release, or None when it does not exist."""
    found = json.loads(sh("helm", "list", "-a", "-n", namespace, "-o", "json").stdout)
    return next((r["status"] for r in found if r["name"] == name), None)


@pytest.fixture(scope="session")
def cluster():
    sh("hack/cluster-up.sh", timeout=600)
    return KUBECONFIG


@pytest.fixture()
def namespace(cluster):
    name = f"bg-{uuid.uuid4().hex[:6]}"
    sh("kubectl", "create", "namespace", name)
    yield name
    for release in json.loads(sh("helm", "list", "-a", "-n", name, "-o", "json", check=False).stdout or "[]"):
        sh("helm", "uninstall", release["name"], "-n", name, "--no-hooks", check=False)
    sh("kubectl", "delete", "namespace", name, "--ignore-not-found", "--wait=false", check=False)


def live(namespace, **more):
    """The live release, installed with the Ingress on its own Service (action abort converges exactly that)."""
    run = blue_green(namespace, app_blue_green_action="abort", **more)
    assert run.rc == 0, run
    assert backend(namespace) == RELEASE


class FakePrometheus:
    """Prometheus's query API on loopback: /-/ready, and /api/v1/query answering `rate` as the one sample."""

    def __init__(self, rate):
        self.rate, self.queries = rate, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server API)
                url = urllib.parse.urlparse(self.path)
                if url.path == "/-/ready":
                    body = b"Prometheus Server is Ready.\n"
                elif url.path == "/api/v1/query":
                    outer.queries.append(urllib.parse.parse_qs(url.query)["query"][0])
                    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
                        {"metric": {}, "value": [time.time(), str(outer.rate)]}]}}).encode()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture()
def prometheus():
    servers = []

    def start(rate):
        servers.append(FakePrometheus(rate))
        return servers[-1]
    yield start
    for server in servers:
        server.server.shutdown()


def test_gate_passes_and_the_traffic_stays_on_the_new_colour(namespace, prometheus):
    live(namespace)
    fake = prometheus(0.001)
    switch = dict(app_blue_green_image_tag="4.1.0", app_blue_green_gate_prometheus_url=fake.url)
    run = blue_green(namespace, **switch)
    assert run.rc == 0, run
    assert backend(namespace) == COLOUR
    assert "Look 3 of 3: 2 pods Ready, error rate 0.001" in run.text, run
    assert len(fake.queries) == 3 and f'job="{COLOUR}"' in fake.queries[0], fake.queries
    assert release_status(COLOUR, namespace) == "deployed"
    # The rerun (helm test and gate again, both read-only) changes nothing.
    again = blue_green(namespace, **switch)
    assert again.rc == 0 and again.recap()["changed"] == 0, again
    assert backend(namespace) == COLOUR


def test_a_failing_helm_test_keeps_the_traffic_on_the_live_release(namespace):
    live(namespace)
    run = blue_green(namespace, app_blue_green_image_tag="4.1.0-unhealthy")
    assert run.rc != 0, run
    assert backend(namespace) == RELEASE
    assert "the traffic is back on tensafe" in run.text, run
    assert "Failed step: Run the chart's helm test against the colour release" in run.text, run
    assert f"{COLOUR}-test-health failed" in run.text, run  # helm's own reason, from its stderr
    assert release_status(COLOUR, namespace) == "deployed", "the failed colour is kept for inspection"
    phase = sh("kubectl", "get", "pod", f"{COLOUR}-test-health", "-n", namespace, "-o", "jsonpath={.status.phase}").stdout
    assert phase == "Failed", "the failed test pod is left for inspection"


def test_a_colour_never_ready_keeps_the_traffic_and_is_kept_for_inspection(namespace):
    live(namespace)
    run = blue_green(namespace, app_blue_green_image_tag="4.1.0", app_tensafe_helm_timeout="20s",
                     app_blue_green_values_overrides={"nodeSelector": {"bg.tensafe.io/no-such-node": "true"}})
    assert run.rc != 0, run
    assert backend(namespace) == RELEASE
    assert "Blue-green switch to tensafe-green failed, the traffic is back on tensafe" in run.text, run
    assert "Failed step: " in run.text and "FailedScheduling" in run.text, run
    assert release_status(COLOUR, namespace) == "failed", "the failed colour is kept (not rolled back) for inspection"
    assert release_status(RELEASE, namespace) == "deployed"


def test_an_error_rate_over_the_threshold_moves_the_traffic_back_and_removes_the_colour(namespace, prometheus):
    live(namespace)
    fake = prometheus(0.2)
    run = blue_green(namespace, app_blue_green_image_tag="4.1.0", app_blue_green_gate_prometheus_url=fake.url,
                     app_blue_green_failed_color="remove")
    assert run.rc != 0, run
    assert backend(namespace) == RELEASE
    assert "error rate 0.2 above app_blue_green_gate_max_error_rate 0.01" in run.text, run
    assert "tensafe-green was removed" in run.text, run
    assert release_status(COLOUR, namespace) is None
    # The Ingress did route to the colour before the gate failed: the live release has a revision for each move.
    history = json.loads(sh("helm", "history", RELEASE, "-n", namespace, "-o", "json").stdout)
    assert len(history) == 3, history


def test_readiness_lost_after_the_switch_moves_the_traffic_back(namespace):
    live(namespace)
    process = subprocess.Popen(command(namespace, app_blue_green_image_tag="4.1.0", app_blue_green_gate_duration=90,
                                       app_blue_green_gate_interval=2),
                               cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while backend(namespace) != COLOUR:
            assert process.poll() is None and time.monotonic() < deadline, "the switch never moved the traffic"
            time.sleep(1)
        # A new colour pod that no node can take: the Deployment's rollout leaves it Pending, not Ready.
        sh("kubectl", "patch", "deployment", COLOUR, "-n", namespace, "--type=merge", "-p",
           json.dumps({"spec": {"template": {"spec": {"nodeSelector": {"bg.tensafe.io/no-such-node": "true"}}}}}))
        out, _ = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
    run = Run(process.returncode, out)
    assert run.rc != 0, run
    assert backend(namespace) == RELEASE
    assert re.search(r"The gate of tensafe-green failed at look \d+ of 46 .*pods not Ready: tensafe-green-", run.text), run


def test_the_gpu_preflight_counts_the_live_colour(namespace):
    gpus = dict(app_replicas=3, app_gpus_per_pod=2)  # 6 of the cluster's 8 GPUs live, 6 more for the colour
    live(namespace, **gpus)
    run = blue_green(namespace, app_blue_green_image_tag="4.1.0", **gpus)
    assert run.rc != 0, run
    assert "Not enough GPUs: the app needs 6 nvidia.com/gpu" in run.text, run
    assert "6 requested by other pods" in run.text, run
    assert release_status(COLOUR, namespace) is None, "refused before any write"
    assert backend(namespace) == RELEASE


@pytest.mark.parametrize("bad", [{"app_blue_green_gate_max_error_rate": 2}, {"app_blue_green_gate_interval": 0},
                                 {"app_blue_green_helm_test_timeout": "five minutes"},
                                 {"app_blue_green_gate_prometheus_url": "prometheus:9090"}])
def test_bad_gate_input_fails_before_any_write(namespace, bad):
    run = blue_green(namespace, app_blue_green_image_tag="4.1.0", **bad)
    assert run.rc != 0, run
    assert "Blue-green health checks: " in run.text and next(iter(bad)) in run.text, run
    assert json.loads(sh("helm", "list", "-a", "-n", namespace, "-o", "json").stdout) == []


def test_the_default_gate_query_is_the_error_rate_of_the_new_colour_alone(tmp_path):
    """The query the fake Prometheus cannot evaluate, evaluated by promtool on synthetic series: 10 of 100 requests of
    tensafe-green fail (0.1), while the live release's 5xx (another job) must not count (else 0.4)."""
    promtool = ROOT / "bin/promtool"
    if not promtool.exists():
        pytest.skip("bin/promtool is not built (make tools)")
    defaults = (ROOT / "collections/ansible_collections/tensafe/k8s/roles/app/defaults/main.yml").read_text()
    query = yaml_load(defaults)["app_blue_green_gate_query"]
    query = query.replace("{{ app_tensafe_release_namespace }}", "tensafe").replace("{{ _app_color_release }}", COLOUR)
    assert "{{" not in query, query
    series = 'tensafe_requests_total{namespace="tensafe",job="%s",code="%s"}'
    (tmp_path / "gate_test.yaml").write_text(json.dumps({
        "rule_files": [], "evaluation_interval": "15s",
        "tests": [{"interval": "15s",
                   "input_series": [{"series": series % (COLOUR, "200"), "values": "0+90x20"},
                                    {"series": series % (COLOUR, "503"), "values": "0+10x20"},
                                    {"series": series % (RELEASE, "503"), "values": "0+50x20"}],
                   "promql_expr_test": [{"expr": query, "eval_time": "4m",
                                         "exp_samples": [{"labels": "{}", "value": 0.1}]}]}]}))
    result = subprocess.run([str(promtool), "test", "rules", "gate_test.yaml"], cwd=tmp_path, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def yaml_load(text):
    import yaml
    return yaml.safe_load(text)
