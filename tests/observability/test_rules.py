"""The TenSafe alerting rules and the app chart's KEDA queries, checked by promtool.

The rules come from the role's one source (templates/tensafe-rules.yaml.j2), rendered as the role renders them.
"""
from __future__ import annotations

import shutil

import pytest
import yaml

from obslib import HERE, check_queries, keda_queries, render_rules, run_promtool

ALERTS = {"TenSafeInferenceLatencyHigh", "TenSafeErrorRateHigh", "TenSafeJobQueueBacklog", "TenSafePodsNotReady",
          "TenSafeUnavailable", "TenSafeMetricsAbsent", "TenSafeGPUIdle"}


def write_rules(tmp_path, **overrides):
    path = tmp_path / "tensafe-rules.yaml"
    path.write_text(render_rules(**overrides))
    return path


@pytest.mark.parametrize("dcgm", [False, True], ids=["default", "dcgm-recording-rule"])
def test_promtool_check_rules_accepts_the_rules(promtool, tmp_path, dcgm):
    path = write_rules(tmp_path, observability_dcgm_recording_rule=dcgm)
    result = run_promtool(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    groups = yaml.safe_load(path.read_text())["groups"]
    alerts = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    assert alerts == ALERTS
    assert ("nvidia_gpu_utilization" in [r.get("record") for g in groups for r in g["rules"]]) is dcgm


def test_observability_alert_for_sets_only_the_alerts_it_names(promtool, tmp_path):
    defaults = {r["alert"]: r["for"] for g in yaml.safe_load(render_rules())["groups"] for r in g["rules"]}
    path = write_rules(tmp_path, observability_alert_for={"TenSafeGPUIdle": "20s", "TenSafeInferenceLatencyHigh": "1h30m"})
    assert run_promtool(promtool, "check", "rules", str(path)).returncode == 0
    rules = {r["alert"]: r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]}
    assert {name: rule["for"] for name, rule in rules.items()} == {
        **defaults, "TenSafeGPUIdle": "20s", "TenSafeInferenceLatencyHigh": "1h30m"}
    assert "for 20s" in rules["TenSafeGPUIdle"]["annotations"]["description"]


def test_every_alert_has_severity_summary_and_description(tmp_path):
    groups = yaml.safe_load(render_rules())["groups"]
    for rule in (r for g in groups for r in g["rules"] if "alert" in r):
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert "for" in rule, f"{rule['alert']} fires on a single evaluation"


@pytest.mark.parametrize("test_file,overrides", [
    ("tensafe_alerts_test.yaml", {}),
    ("tensafe_dcgm_test.yaml", {"observability_dcgm_recording_rule": True}),
])
def test_alerts_fire_when_they_should_and_not_otherwise(promtool, tmp_path, test_file, overrides):
    write_rules(tmp_path, **overrides)
    shutil.copy(HERE / test_file, tmp_path / test_file)
    result = run_promtool(promtool, "test", "rules", test_file, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.parametrize("overrides,broken_alert", [
    ({"observability_alert_latency_p95_slo_seconds": 1.0}, "TenSafeInferenceLatencyHigh"),
    ({"observability_alert_queue_depth": 5000}, "TenSafeJobQueueBacklog"),
    ({"observability_app_namespace": "elsewhere"}, "TenSafeErrorRateHigh"),
])
def test_the_unit_tests_catch_a_wrong_rule(promtool, tmp_path, overrides, broken_alert):
    """Control: the same tests against rules rendered with other thresholds or another namespace fail."""
    write_rules(tmp_path, **overrides)
    shutil.copy(HERE / "tensafe_alerts_test.yaml", tmp_path / "tensafe_alerts_test.yaml")
    result = run_promtool(promtool, "test", "rules", "tensafe_alerts_test.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert broken_alert in result.stdout + result.stderr


def test_promtool_check_rules_rejects_invalid_promql(promtool, tmp_path):
    """Control: a query promtool cannot parse is reported."""
    result = check_queries(promtool, tmp_path, {"broken": "sum(rate(tensafe_requests_total[5m]) by (code)"}, "broken")
    assert result.returncode != 0


@pytest.mark.parametrize("selector", [None, 'namespace="tensafe"'], ids=["prod-inventory", "with-metricSelector"])
def test_the_app_charts_keda_queries_are_valid_promql(promtool, tmp_path, selector):
    queries = keda_queries(*([f"autoscaling.keda.metricSelector={selector}"] if selector else []))
    assert set(queries) == {"latency-p95", "queue-depth", "gpu-utilization"}, queries
    if selector:
        assert all(selector in q for q in queries.values()), queries
    result = check_queries(promtool, tmp_path, queries, "keda")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_keda_queries_compute_what_their_thresholds_assume(promtool, tmp_path):
    """Latency in ms (threshold 100), total queued jobs (100 per replica), GPU percent (30)."""
    queries = keda_queries()
    (tmp_path / "empty.yaml").write_text("groups: []\n")
    tests = {
        "rule_files": ["empty.yaml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                # Every request in 0.05-0.1 s: p95 = 0.05 + 0.95 * 0.05 = 0.0975 s = 97.5 ms.
                {"series": 'tensafe_inference_latency_seconds_bucket{le="0.05"}', "values": "0x10"},
                {"series": 'tensafe_inference_latency_seconds_bucket{le="0.1"}', "values": "0+60x10"},
                {"series": 'tensafe_inference_latency_seconds_bucket{le="+Inf"}', "values": "0+60x10"},
                {"series": 'tensafe_job_queue_depth{pod="a"}', "values": "40x10"},
                {"series": 'tensafe_job_queue_depth{pod="b"}', "values": "60x10"},
                {"series": 'nvidia_gpu_utilization{gpu="0"}', "values": "20x10"},
                {"series": 'nvidia_gpu_utilization{gpu="1"}', "values": "40x10"},
            ],
            "promql_expr_test": [
                {"expr": queries["latency-p95"], "eval_time": "6m", "exp_samples": [{"labels": "{}", "value": 97.5}]},
                {"expr": queries["queue-depth"], "eval_time": "6m", "exp_samples": [{"labels": "{}", "value": 100}]},
                {"expr": queries["gpu-utilization"], "eval_time": "6m", "exp_samples": [{"labels": "{}", "value": 30}]},
            ],
        }],
    }
    (tmp_path / "keda_test.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = run_promtool(promtool, "test", "rules", "keda_test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
