"""kube-score v1.20.0 (bin/kube-score, built from the Go module proxy by hack/build-tools.sh, pinned in
tools/kube-score) on what inventories/prod deploys, next to checkov (test_policy.py): every finding must be justified
in kube-score-exceptions.yaml, and every exception must still fire. A control shows the scan fails on a manifest
without the chart's scheduling and storage settings."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import chartlib

EXCEPTIONS = Path(__file__).with_name("kube-score-exceptions.yaml")
KUBE_SCORE = os.environ.get("KUBE_SCORE") or str(chartlib.REPO / "bin/kube-score")
VERSION = "1.20.0"
# kube-score's grades: 1 critical, 5 warning, 7 almost OK, 10 all OK.
ALL_OK = 10


def kube_score_findings(manifest: str) -> set:
    """(check id, <Kind>.<namespace>.<name>) of every check kube-score grades below all OK and did not skip."""
    if not os.access(KUBE_SCORE, os.X_OK):
        pytest.fail(f"kube-score not found at {KUBE_SCORE}: run `make tools` (hack/build-tools.sh) or set KUBE_SCORE")
    proc = subprocess.run(
        [KUBE_SCORE, "score", "--kubernetes-version", "v1.34", "--output-format", "json", "-"],
        input=manifest, capture_output=True, text=True, timeout=120)
    # Exit code 1: critical findings (judged below against the exceptions); anything else is an error.
    assert proc.returncode in (0, 1), proc.stderr
    scored = json.loads(proc.stdout)
    assert scored, f"kube-score scored nothing: {proc.stderr[:500]}"
    findings = set()
    for obj in scored:
        meta = obj["object_meta"]
        resource = f"{obj['type_meta']['kind']}.{meta.get('namespace', '')}.{meta['name']}"
        for check in obj["checks"]:
            if not check["skipped"] and check["grade"] < ALL_OK:
                findings.add((check["check"]["id"], resource))
    return findings


@pytest.fixture(scope="module")
def prod_findings(renders):
    return kube_score_findings(renders["prod"].stdout)


def test_kube_score_is_the_pinned_version():
    out = subprocess.run([KUBE_SCORE, "version"], capture_output=True, text=True, timeout=30, check=True).stdout
    assert f"version: {VERSION}," in out, out


def test_exceptions_file_is_well_formed():
    exceptions = chartlib.load_exceptions(EXCEPTIONS)
    assert exceptions
    for (check, resource), reason in exceptions.items():
        assert not check.startswith("CKV"), f"{check} is checkov's: policy-exceptions.yaml"
        assert resource.count(".") >= 2, resource
        assert len(reason) > 40, f"{check}: give a real reason"


def test_prod_findings_are_all_justified(prod_findings):
    unjustified, _ = chartlib.compare_findings(prod_findings, chartlib.load_exceptions(EXCEPTIONS))
    assert not unjustified, f"kube-score findings not justified in {EXCEPTIONS.name}: {unjustified}"


def test_no_stale_exceptions(prod_findings):
    _, stale = chartlib.compare_findings(prod_findings, chartlib.load_exceptions(EXCEPTIONS))
    assert not stale, f"exceptions in {EXCEPTIONS.name} that no longer fire (remove them): {stale}"


def test_kube_score_catches_what_the_chart_sets(plans):
    """The scan can fail: prod without the chart's anti-affinity and ephemeral storage, and with a single replica floor
    (no PodDisruptionBudget), raises the findings those settings clear. (kube-score checks spread constraints that
    exist, never their absence: test_render.py checks the zone and node spread.)"""
    plan = plans["prod"]
    render = chartlib.render_plan(plan, (
        "podAntiAffinity.enabled=false", "topologySpread.zone.enabled=false", "topologySpread.node.enabled=false",
        "ephemeralStorage.request=", "ephemeralStorage.limit=", "autoscaling.minReplicas=1"))
    assert render.rc == 0, render.stderr
    unjustified, _ = chartlib.compare_findings(kube_score_findings(render.stdout),
                                               chartlib.load_exceptions(EXCEPTIONS))
    deployment = f"Deployment.{plan.namespace}.{plan.release}"
    assert {check for check, resource in unjustified if resource == deployment} >= {
        "deployment-has-host-podantiaffinity", "container-ephemeral-storage-request-and-limit",
        "deployment-has-poddisruptionbudget"}, unjustified
