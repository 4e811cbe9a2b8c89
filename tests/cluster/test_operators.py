"""The real operators as processes of the hermetic cluster (hack/cluster/operators.sh), against the real charts.

KEDA v2.20.2 (operator, metrics API server, admission webhooks) with the real kedacore/keda 2.20.2 chart from the
chart mirror (`../shared/charts`, CHART_MIRROR overrides), installed with helm; its kwok pods stay fake, the host
processes do the work:
- a ScaledObject becomes the HPA `keda-hpa-<name>` and the ScaledObject reports Ready=True;
- `v1beta1.external.metrics.k8s.io` (the chart's APIService, caBundle injected by KEDA's own cert rotation) is
  Available through the cluster network, and the external metric of that ScaledObject is served;
- the chart's validating webhook (through the cluster network) rejects a ScaledObject whose Deployment an HPA
  already owns.

Prometheus Operator v0.93.0 with the CRDs of the real kube-prometheus-stack 88.3.0 chart: a minimal Prometheus, a
ServiceMonitor and a PrometheusRule become the StatefulSet `prometheus-<name>`, the generated configuration Secret
with the ServiceMonitor's scrape job and the rule file (in the operator's rule ConfigMap) it loads.

The operators are started with `CLUSTER_OPERATORS=... hack/cluster-up.sh` (idempotent: already running, it returns
at once) and left running. Skipped, with the reason, only when the binaries are not built (`make operators`).
Everything else the tests create is removed at the end (the KEDA release with its APIService included).
"""
import base64
import gzip
import json
import os
import pathlib
import secrets
import subprocess
import sys
import tarfile
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLUSTER_DIR = pathlib.Path(os.environ.get("CLUSTER_DIR", ROOT / ".cluster"))
if not CLUSTER_DIR.is_absolute():
    CLUSTER_DIR = ROOT / CLUSTER_DIR
BIN = pathlib.Path(os.environ.get("BIN_DIR", ROOT / "bin"))
sys.path.insert(0, str(ROOT / "tests"))
from chart_mirror import MIRROR  # noqa: E402  (tests/ is not a package)
KEDA_CHART = MIRROR / "keda-2.20.2.tgz"
KPS_CHART = MIRROR / "kube-prometheus-stack-88.3.0.tgz"
ENV = dict(os.environ, KUBECONFIG=str(CLUSTER_DIR / "kubeconfig"),
           PATH=f"{BIN}:{os.environ['PATH']}", CLUSTER_DIR=str(CLUSTER_DIR))
KEDA_NS = os.environ.get("CLUSTER_KEDA_NAMESPACE", "keda")
APISERVICE = "v1beta1.external.metrics.k8s.io"
TIMEOUT = 120
SUFFIX = secrets.token_hex(3)


def sh(*cmd, check=True, stdin=None, env=None, timeout=300):
    res = subprocess.run(cmd, cwd=ROOT, env=env or ENV, capture_output=True, text=True, input=stdin, timeout=timeout)
    if check and res.returncode:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


def kubectl(*args, **kw):
    return sh("kubectl", *args, **kw)


def get(*args):
    res = kubectl("get", *args, "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def apply(objs, manager="operators-test"):
    kubectl("apply", "--server-side", "--force-conflicts", f"--field-manager={manager}", "-f", "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))


def until(what, fn, timeout=TIMEOUT, logs=()):
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(1)
    tails = "".join(f"\n--- end of {p}:\n" + "\n".join(p.read_text(errors="replace").splitlines()[-25:])
                    for p in (CLUSTER_DIR / "logs" / f"{c}.log" for c in logs) if p.exists())
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r}){tails}")


def condition(obj, ctype):
    for c in (obj or {}).get("status", {}).get("conditions", []):
        if c.get("type") == ctype:
            return c
    return {}


def cluster_up(operators):
    """Start (or find running) the named operators; the cluster must be up already (cheap then)."""
    res = sh(str(ROOT / "hack/cluster-up.sh"), env=dict(ENV, CLUSTER_OPERATORS=operators), check=False, timeout=600)
    assert res.returncode == 0, f"CLUSTER_OPERATORS='{operators}' hack/cluster-up.sh failed:\n{res.stderr[-4000:]}"


def need(*binaries):
    missing = [b for b in binaries if not (BIN / b).is_file()]
    if missing:
        pytest.skip(f"operator binaries not built ({', '.join(missing)} missing in {BIN}): run 'make operators'")
    if not (CLUSTER_DIR / "kubeconfig").exists():
        pytest.fail(f"no hermetic cluster in {CLUSTER_DIR}: run hack/cluster-up.sh first")


def chart_files(chart, wanted):
    """The text of the files of a chart archive whose member name `wanted(name)` accepts."""
    with tarfile.open(chart) as tar:
        return [tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile() and wanted(m.name)]


def deployment(ns, name):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1",
                                                           "resources": {"requests": {"cpu": "10m"}}}]}}}}


def scaled_object(ns, name, target):
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": name, "namespace": ns},
            "spec": {"scaleTargetRef": {"name": target}, "minReplicaCount": 1, "maxReplicaCount": 4,
                     "pollingInterval": 5,
                     "triggers": [{"type": "cron", "metadata": {"timezone": "UTC", "start": "0 * * * *",
                                                                "end": "59 * * * *", "desiredReplicas": "3"}}]}}


# ------------------------------------------------------------------------------------------------------------- KEDA
@pytest.fixture(scope="module")
def keda():
    need("keda-operator", "keda-adapter", "keda-webhooks")
    if not KEDA_CHART.exists():
        pytest.fail(f"{KEDA_CHART} not found (set CHART_MIRROR to the chart mirror)")
    cluster_up("keda")
    # The CRDs from the chart itself (server-side, as the prerequisites role applies them); the release without them.
    rendered = sh("helm", "template", "keda", str(KEDA_CHART), "-n", KEDA_NS).stdout
    crds = [d for d in rendered.split("\n---") if "\nkind: CustomResourceDefinition" in "\n" + d.strip()]
    assert len(crds) >= 6, "the KEDA chart renders no CRDs"
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=operators-test", "-f", "-",
            stdin="\n---\n".join(crds))
    sh("helm", "upgrade", "--install", "keda", str(KEDA_CHART), "-n", KEDA_NS, "--create-namespace",
       "--set", "crds.install=false", "--wait", "--timeout", "180s")
    ns = f"keda-test-{SUFFIX}"
    kubectl("create", "namespace", ns)
    try:
        yield ns
    finally:
        kubectl("delete", "namespace", ns, "--wait=false", check=False)
        # The release goes with its APIService (an unavailable APIService would break discovery for everyone).
        sh("helm", "uninstall", "keda", "-n", KEDA_NS, "--wait", "--timeout", "120s", check=False)


def test_keda_scaledobject_becomes_hpa(keda):
    ns = keda
    apply([deployment(ns, "web"), scaled_object(ns, "web", "web")])
    hpa = until("HPA keda-hpa-web", lambda: get("hpa", "-n", ns, "keda-hpa-web"),
                logs=["keda-operator"])
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    assert hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 4
    assert [m["type"] for m in hpa["spec"]["metrics"]] == ["External"]
    assert any(o["kind"] == "ScaledObject" and o["name"] == "web" for o in hpa["metadata"]["ownerReferences"])
    so = until("ScaledObject web Ready=True",
               lambda: (lambda o: o if condition(o, "Ready").get("status") == "True" else None)(
                   get("scaledobject", "-n", ns, "web")), logs=["keda-operator"])
    assert condition(so, "Ready")["reason"] == "ScaledObjectReady", so["status"]


def test_keda_metrics_apiservice_available(keda):
    ns = keda
    api = until(f"APIService {APISERVICE} Available=True",
                lambda: (lambda o: o if condition(o, "Available").get("status") == "True" else None)(
                    get("apiservice", APISERVICE)), logs=["keda-metrics-apiserver", "cluster-network"])
    # KEDA's cert rotation put our CA (the one seeded into kedaorg-certs) into the chart's APIService.
    ca = (CLUSTER_DIR / "operators/keda/certs/ca.crt").read_bytes()
    assert base64.b64decode(api["spec"]["caBundle"]) == ca
    assert api["spec"]["service"] == {"name": "keda-operator-metrics-apiserver", "namespace": KEDA_NS, "port": 443}
    # The metrics API answers through the aggregator, the cluster network and the adapter's gRPC to the operator.
    apply([deployment(ns, "metrics"), scaled_object(ns, "metrics", "metrics")])
    hpa = until("HPA keda-hpa-metrics", lambda: get("hpa", "-n", ns, "keda-hpa-metrics"), logs=["keda-operator"])
    metric = hpa["spec"]["metrics"][0]["external"]["metric"]["name"]

    def value():
        res = kubectl("get", "--raw", f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{metric}"
                      "?labelSelector=scaledobject.keda.sh%2Fname%3Dmetrics", check=False)
        return json.loads(res.stdout) if res.returncode == 0 else res.stderr.strip()
    doc = until(f"external metric {metric}", lambda: (lambda d: d if isinstance(d, dict) else None)(value()),
                logs=["keda-metrics-apiserver", "keda-operator"])
    assert doc["kind"] == "ExternalMetricValueList" and doc["items"][0]["metricName"] == metric
    # In the cron window (all hour long) the cron scaler asks for its desiredReplicas.
    assert doc["items"][0]["value"] in ("3", "3000m"), doc


def test_keda_webhook_rejects_scaledobject_on_hpa_owned_deployment(keda):
    ns = keda
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "manual", "namespace": ns},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "owned"},
                    "minReplicas": 1, "maxReplicas": 3,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                        "type": "Utilization", "averageUtilization": 80}}}]}}
    apply([deployment(ns, "owned"), hpa])
    # KEDA's cert rotation fills the chart's webhooks' caBundle once it sees the configuration.
    ca = base64.b64encode((CLUSTER_DIR / "operators/keda/certs/ca.crt").read_bytes()).decode()
    until("caBundle of ValidatingWebhookConfiguration keda-admission",
          lambda: all(w["clientConfig"].get("caBundle") == ca
                      for w in get("validatingwebhookconfiguration", "keda-admission")["webhooks"]),
          logs=["keda-operator"])
    # The chart's webhooks have failurePolicy Ignore: a refusal can only come from KEDA's webhook answering.
    res = kubectl("create", "-f", "-", stdin=json.dumps(scaled_object(ns, "owned", "owned")), check=False)
    assert res.returncode, f"the ScaledObject was admitted: KEDA's webhook did not answer\n{res.stdout}"
    assert 'admission webhook "vscaledobject.kb.io" denied the request' in res.stderr, res.stderr
    assert "the workload 'owned' of type 'apps/v1.Deployment' is already managed by the hpa 'manual'" \
        in res.stderr, res.stderr
    assert get("scaledobject", "-n", ns, "owned") is None


# ----------------------------------------------------------------------------------------------- Prometheus Operator
@pytest.fixture(scope="module")
def prometheus_operator():
    need("prometheus-operator")
    if not KPS_CHART.exists():
        pytest.fail(f"{KPS_CHART} not found (set CHART_MIRROR to the chart mirror)")
    docs = chart_files(KPS_CHART, lambda n: "/charts/crds/crds/" in n and n.endswith(".yaml"))
    assert len(docs) >= 10, "no CRDs found in the kube-prometheus-stack chart"
    with tempfile.TemporaryDirectory() as tmp:
        for i, d in enumerate(docs):
            pathlib.Path(tmp, f"{i:02d}.yaml").write_text(d)
        kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=operators-test", "-f", tmp)
        kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", tmp)
    cluster_up("prometheus-operator")
    ns = f"promop-test-{SUFFIX}"
    kubectl("create", "namespace", ns)
    try:
        yield ns
    finally:
        kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_prometheus_operator_generates_statefulset_and_config(prometheus_operator):
    ns = prometheus_operator
    sel = {"matchLabels": {"release": "tensafe-test"}}
    apply([
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "prometheus", "namespace": ns}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
         "metadata": {"name": "tensafe", "namespace": ns},
         "spec": {"replicas": 1, "serviceAccountName": "prometheus", "serviceMonitorSelector": sel,
                  "serviceMonitorNamespaceSelector": {}, "ruleSelector": sel, "ruleNamespaceSelector": {}}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
         "metadata": {"name": "tensafe-app", "namespace": ns, "labels": {"release": "tensafe-test"}},
         "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "tensafe"}},
                  "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}]}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
         "metadata": {"name": "tensafe-rules", "namespace": ns, "labels": {"release": "tensafe-test"}},
         "spec": {"groups": [{"name": "tensafe.test", "rules": [
             {"alert": "TensafeTestDown", "expr": 'up{job="tensafe"} == 0', "for": "5m",
              "labels": {"severity": "critical"}}]}]}},
    ])
    sts = until("StatefulSet prometheus-tensafe", lambda: get("statefulset", "-n", ns, "prometheus-tensafe"),
                logs=["prometheus-operator"])
    assert any(c["name"] == "prometheus" for c in sts["spec"]["template"]["spec"]["containers"])

    def config():
        s = get("secret", "-n", ns, "prometheus-tensafe")
        if not s or "prometheus.yaml.gz" not in s.get("data", {}):
            return None
        text = gzip.decompress(base64.b64decode(s["data"]["prometheus.yaml.gz"])).decode()
        return text if f"serviceMonitor/{ns}/tensafe-app/0" in text else None
    cfg = until("the generated config with the ServiceMonitor's job", config, logs=["prometheus-operator"])
    assert f"job_name: serviceMonitor/{ns}/tensafe-app/0" in cfg
    assert "/etc/prometheus/rules/prometheus-tensafe-rulefiles-0/*.yaml" in cfg

    def rules():
        cm = get("configmap", "-n", ns, "prometheus-tensafe-rulefiles-0")
        files = (cm or {}).get("data", {})
        return {k: v for k, v in files.items() if k.startswith(f"{ns}-tensafe-rules-")} or None
    files = until("the rule file ConfigMap", rules, logs=["prometheus-operator"])
    (text,) = files.values()
    assert "alert: TensafeTestDown" in text and 'up{job="tensafe"} == 0' in text
