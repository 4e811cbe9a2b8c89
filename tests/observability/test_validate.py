"""The observability role's validate step: bad input fails before any cluster call with the variable named (and
the value to set, where the role can compute it); each inventory passes and wires the app to what it installs.

validate makes no cluster call (the inventories' kubeconfigs need not exist); tests/bad_input proves that for
site.yml as a whole."""
from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from obslib import ROOT

PLAYBOOK = ROOT / "tests/observability/validate.yml"

# (case id, variables, text the failure must contain)
BAD = [
    ("chart-version-range", {"observability_prometheus_chart_version": "88.x"}, "observability_prometheus_chart_version"),
    ("jaeger-chart-version-latest", {"observability_jaeger_chart_version": "latest"}, "observability_jaeger_chart_version"),
    ("unknown-mode", {"observability_prometheus_mode": "external"}, "observability_prometheus_mode"),
    ("url-not-the-charts-service", {"observability_prometheus_release_name": "prometheus"},
     "Set observability_prometheus_url: http://prometheus-kube-prometheus-prometheus.monitoring.svc:9090"),
    ("url-not-a-url", {"observability_prometheus_url": "kube-prometheus-stack-prometheus:9090"}, "observability_prometheus_url"),
    ("labels-without-release", {"observability_service_monitor_labels": {"team": "tensafe"}},
     'Set observability_service_monitor_labels: {"team": "tensafe", "release": "kube-prometheus-stack"}'),
    ("labels-empty", {"observability_service_monitor_labels": {}}, "observability_service_monitor_labels"),
    ("labels-not-strings", {"observability_service_monitor_labels": {"release": 1}}, "observability_service_monitor_labels"),
    ("custom-servicemonitor-selector",
     {"observability_prometheus_values_overrides": {"prometheus": {"prometheusSpec": {
         "serviceMonitorSelector": {"matchLabels": {"prometheus": "main"}}}}}},
     'Set observability_service_monitor_labels: {"release": "kube-prometheus-stack", "prometheus": "main"}'),
    ("rule-selector-expression",
     {"observability_prometheus_values_overrides": {"prometheus": {"prometheusSpec": {
         "ruleSelector": {"matchExpressions": [{"key": "role", "operator": "In", "values": ["alerts"]}]}}}}},
     'Set observability_prometheus_rule_labels: {"release": "kube-prometheus-stack", "role": "alerts"}'),
    ("jaeger-host-of-chart-3", {"observability_jaeger_agent_host": "jaeger-agent.monitoring"},
     "Set observability_jaeger_agent_host: jaeger.monitoring"),
    ("jaeger-port", {"observability_jaeger_agent_port": 70000}, "observability_jaeger_agent_port"),
    ("error-ratio-percent", {"observability_alert_error_ratio": 5}, "observability_alert_error_ratio"),
    ("latency-zero", {"observability_alert_latency_p95_slo_seconds": 0}, "observability_alert_latency_p95_slo_seconds"),
    ("gpu-idle-above-100", {"observability_alert_gpu_idle_percent": 150}, "observability_alert_gpu_idle_percent"),
    ("alert-for-unknown-alert", {"observability_alert_for": {"TenSafeLatencyHigh": "1m"}},
     "must map alert names (TenSafeInferenceLatencyHigh, "),
    ("alert-for-go-duration", {"observability_alert_for": {"TenSafeGPUIdle": "1.5h"}}, "observability_alert_for"),
    ("alert-for-not-a-map", {"observability_alert_for": "10m"}, "observability_alert_for"),
    ("registry-with-scheme", {"observability_image_registry": "https://registry.example.com"}, "observability_image_registry"),
    ("namespace-uppercase", {"observability_prometheus_release_namespace": "Monitoring",
                             "observability_prometheus_url": "http://kube-prometheus-stack-prometheus.Monitoring.svc:9090"},
     "observability_prometheus_release_namespace"),
    ("timeout-words", {"observability_prometheus_helm_timeout": "ten minutes"}, "observability_prometheus_helm_timeout"),
    ("dashboard-labels-empty", {"observability_dashboard_labels": {}}, "observability_dashboard_labels"),
    ("app-namespace-invalid", {"observability_app_namespace": "TenSafe"}, "observability_app_namespace"),
    ("no-chart-source", {"observability_prometheus_chart_repo": ""}, "chart kube-prometheus-stack has no source"),
]

GOOD = [
    ("alert-for-short", {"observability_alert_for": {"TenSafeGPUIdle": "20s", "TenSafeInferenceLatencyHigh": "1h30m"}}),
    ("selector-selects-all", {"observability_service_monitor_labels": {"team": "tensafe"},
                              "observability_prometheus_rule_labels": {"team": "tensafe"},
                              "observability_prometheus_values_overrides": {"prometheus": {"prometheusSpec": {
                                  "serviceMonitorSelectorNilUsesHelmValues": False, "ruleSelectorNilUsesHelmValues": False}}}}),
    ("existing-mode-own-url", {"observability_prometheus_mode": "existing",
                               "observability_prometheus_url": "http://prometheus-operated.monitoring.svc:9090",
                               "observability_service_monitor_labels": {"prometheus": "main"}}),
    ("release-prometheus", {"observability_prometheus_release_name": "prometheus",
                            "observability_prometheus_url": "http://prometheus-kube-prometheus-prometheus.monitoring.svc.cluster.local:9090",
                            "observability_service_monitor_labels": {"release": "prometheus"}}),
    ("jaeger-off-any-host", {"observability_jaeger_enabled": False, "observability_jaeger_agent_host": "otel-collector.tracing"}),
    ("air-gapped", {"observability_prometheus_chart_repo": "", "observability_prometheus_chart_archive_dir": "/tmp",
                    "observability_image_registry": "registry.example.com:5000/mirror"}),
]


def run(tmp_path, inventory="local", extra=None, wiring_out=None):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env["PATH"] = f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{env['PATH']}"
    cmd = ["ansible-playbook", "-i", str(ROOT / "inventories" / inventory / "hosts.yml"), str(PLAYBOOK)]
    if extra:
        varfile = tmp_path / "vars.json"
        varfile.write_text(json.dumps(extra))
        cmd += ["-e", f"@{varfile}"]
    if wiring_out:
        cmd += ["-e", f"wiring_out={wiring_out}"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="session")
def results(tmp_path_factory):
    """Every case and inventory run once, side by side (each is a separate ansible-playbook)."""
    jobs = {c[0]: {"extra": c[1]} for c in BAD + GOOD}
    for inventory in INVENTORIES:
        jobs[inventory] = {"inventory": inventory, "wiring_out": tmp_path_factory.mktemp("wiring") / "wiring.json"}
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(run, tmp_path_factory.mktemp(name), **kwargs) for name, kwargs in jobs.items()}
        return {name: (future.result(), jobs[name].get("wiring_out")) for name, future in futures.items()}


INVENTORIES = ["local", "dev", "prod"]


@pytest.mark.parametrize("case,extra,expected", BAD, ids=[c[0] for c in BAD])
def test_bad_input_fails_naming_the_variable(results, case, extra, expected):
    result = results[case][0]
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, f"{case}: validate accepted it"
    assert expected in output, f"{case}: the failure does not say {expected!r}:\n{result.stdout[-3000:]}"


@pytest.mark.parametrize("case,extra", GOOD, ids=[c[0] for c in GOOD])
def test_valid_variations_pass(results, case, extra):
    result = results[case][0]
    assert result.returncode == 0, f"{case}:\n{result.stdout[-3000:]}"


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_each_inventory_validates_and_watches_the_app(results, inventory):
    """The inventory passes validate and the alerts watch the app's release without a wiring line: the role's
    defaults read app_tensafe_release_namespace / app_tensafe_release_name. (That the app role's defaults read this
    role's URL, labels and Jaeger address is tests/unit's fallback test.)"""
    result, out = results[inventory]
    assert result.returncode == 0, result.stdout[-3000:]
    w = json.loads(out.read_text())
    assert w["observability_service_monitor_labels"] == {"release": "kube-prometheus-stack"}
    assert w["observability_prometheus_url"] == "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
    assert (w["observability_jaeger_agent_host"], int(w["observability_jaeger_agent_port"])) == ("jaeger.monitoring", 6831)
    assert w["observability_app_namespace"] == w["app_tensafe_release_namespace"]
    assert w["observability_app_deployment"] == w["app_tensafe_release_name"]


def test_app_release_flows_into_the_alerts(tmp_path):
    """Set only on the app's side, the release namespace and name reach the role (no copy in the inventory)."""
    out = tmp_path / "wiring.json"
    result = run(tmp_path, extra={"app_tensafe_release_namespace": "ml-serving", "app_tensafe_release_name": "tensafe-blue"},
                 wiring_out=out)
    assert result.returncode == 0, result.stdout[-3000:]
    w = json.loads(out.read_text())
    assert (w["observability_app_namespace"], w["observability_app_deployment"]) == ("ml-serving", "tensafe-blue")
