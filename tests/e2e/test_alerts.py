"""Issue 10, item 2: the alerts the observability role installs fire in a real Prometheus.

The rules reach the host Prometheus only through the rule files the real Prometheus Operator generated from the role's
PrometheusRule (conftest.operator_rules); the synthetic series decide whether they fire. tests/e2e/stack.yml sets
`observability_alert_for` to 10 s for the two alerts, so `for` is exercised in seconds.
"""
import time

from conftest import STACK, feed, wait_for

WATCHED = ("TenSafeInferenceLatencyHigh", "TenSafeGPUIdle")
FOR_SECONDS = max(int(STACK["observability_alert_for"][name].rstrip("s")) for name in WATCHED)


def test_the_operator_rule_files_hold_the_role_alerts(operator_rules, stack):
    loaded = {rule["name"]: rule for group in stack.rule_groups() for rule in group["rules"]}
    assert any("tensafe-alerts" in name for name in operator_rules), operator_rules
    for name in WATCHED:
        assert name in loaded, f"{name} is not among the rules the host Prometheus loaded from {operator_rules}"
        assert loaded[name]["duration"] == FOR_SECONDS, loaded[name]


def test_latency_and_gpu_alerts_fire_on_bad_series_and_stay_silent_on_good_ones(operator_rules, stack, synthetic):
    # Healthy: 20 ms, GPUs 50% busy. Nothing pending or firing after longer than `for` (plus a few evaluations).
    feed(stack, synthetic, latency_seconds=0.02, queue_depth=0, gpu_percent=50)
    time.sleep(FOR_SECONDS + 5)
    assert stack.alerts(*WATCHED) == {}, "alerts are active on healthy series"

    # p95 of 400 ms (SLO 0.2 s), GPUs 3% busy (idle below 10%): pending at once, firing after `for`.
    feed(stack, synthetic, latency_seconds=0.4, gpu_percent=3)
    start = time.monotonic()
    wait_for(lambda: stack.alerts(*WATCHED) == dict.fromkeys(WATCHED, "firing"),
             f"ALERTS{{alertstate='firing'}} for {', '.join(WATCHED)}", timeout=FOR_SECONDS + 60,
             explain=lambda: f"ALERTS: {stack.alerts(*WATCHED)}; p95 ms: "
                             f"{stack.query('histogram_quantile(0.95, sum by (le) (rate(tensafe_inference_latency_seconds_bucket[5m]))) * 1000')}; "
                             f"gpu: {stack.query('avg(nvidia_gpu_utilization)')}")
    elapsed = time.monotonic() - start
    print(f"alerts firing {elapsed:.1f}s after the bad series (for: {FOR_SECONDS}s)")
    assert elapsed >= FOR_SECONDS, "an alert fired before its `for` elapsed"
