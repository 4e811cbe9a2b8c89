"""The TenSafe Grafana dashboard (the role's files/tensafe-dashboard.json): structure, and every query checked by
promtool after the Grafana variables are replaced."""
from __future__ import annotations

import re

import pytest

from obslib import (ROLE, check_queries, dashboard_queries, keda_queries, load_dashboard, render_rules,
                    substitute_grafana_variables)

# What the app and the cluster export (documented in the role README under "Assumed metrics").
ASSUMED_METRICS = {
    "tensafe_inference_latency_seconds_bucket", "tensafe_requests_total", "tensafe_job_queue_depth",
    "nvidia_gpu_utilization", "DCGM_FI_DEV_GPU_UTIL", "kube_deployment_spec_replicas",
    "kube_deployment_status_replicas_available", "kube_pod_status_ready", "up",
}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are neither functions, keywords nor label names."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)                              # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)                                      # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)                                     # ranges
    names = re.findall(r"(?<![\w.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", expr)
    return {n for n in names if n.lower() not in PROMQL_WORDS and not re.fullmatch(r"\d.*", n)}


def test_the_dashboard_is_a_current_grafana_dashboard():
    dash = load_dashboard()
    assert dash["schemaVersion"] >= 39
    assert dash["uid"] == "tensafe-overview" and dash["title"] == "TenSafe"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert [v["name"] for v in dash["templating"]["list"]] == ["datasource", "namespace", "deployment"]
    for panel in dash["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]


def test_the_dashboard_has_the_guides_panels():
    panels = {p["title"]: p for p in load_dashboard()["panels"]}
    latency = [t["legendFormat"] for t in panels["Inference latency"]["targets"]]
    assert latency == ["p50", "p95", "p99"]
    for title in ["Throughput", "Errors", "Job queue depth", "GPU utilization", "Pods"]:
        assert title in panels, f"missing panel {title}"


def test_the_panels_do_not_overlap():
    cells = {}
    for panel in load_dashboard()["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_dashboard_query_is_valid_promql(promtool, tmp_path):
    queries = {name: substitute_grafana_variables(expr) for name, expr in dashboard_queries(load_dashboard()).items()}
    assert len(queries) >= 15
    leftover = {name: q for name, q in queries.items() if "$" in q}
    assert not leftover, f"Grafana variables the test does not replace: {leftover}"
    result = check_queries(promtool, tmp_path, queries, "dashboard")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_dashboard_query_is_caught(promtool, tmp_path):
    """Control: the extraction plus promtool reports a query Grafana would show as an error."""
    dash = load_dashboard()
    dash["panels"][0]["targets"][0]["expr"] = 'sum(kube_deployment_status_replicas_available{namespace="$namespace"'
    queries = {n: substitute_grafana_variables(q) for n, q in dashboard_queries(dash).items()}
    assert check_queries(promtool, tmp_path, queries, "dashboard").returncode != 0


@pytest.mark.parametrize("source", ["dashboard", "rules", "keda"])
def test_every_metric_is_a_documented_one(source):
    import yaml

    if source == "dashboard":
        exprs = list(dashboard_queries(load_dashboard()).values())
    elif source == "rules":
        groups = yaml.safe_load(render_rules(observability_dcgm_recording_rule=True))["groups"]
        exprs = [r["expr"] for g in groups for r in g["rules"]]
    else:
        exprs = list(keda_queries().values())
    used = set().union(*(metric_names(substitute_grafana_variables(e)) for e in exprs))
    assert used <= ASSUMED_METRICS, f"undocumented metrics in the {source}: {used - ASSUMED_METRICS}"
    readme = (ROLE / "README.md").read_text()
    assert all(f"`{m}`" in readme for m in used), f"README does not name {[m for m in used if f'`{m}`' not in readme]}"


def test_the_metric_name_extraction_finds_names():
    assert metric_names('histogram_quantile(0.95, sum by (le) (rate(a_bucket{x="y"}[5m]))) > 0.2') == {"a_bucket"}
    assert metric_names("absent(up{job=\"t\"} == 1)") == {"up"}
    assert metric_names("DCGM_FI_DEV_GPU_UTIL") == {"DCGM_FI_DEV_GPU_UTIL"}
