"""Policy scan with checkov (own venv .venv-scan, requirements-scan.txt) of what the inventories deploy: the
manifests of the app role's plans of inventories dev, prod and local (tests/app_plan.py), in one checkov run.
Every finding must be justified in policy-exceptions.yaml, and every exception must still fire."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import chartlib

EXCEPTIONS = Path(__file__).with_name("policy-exceptions.yaml")
INVENTORIES = ("dev", "prod", "local")


def checkov_findings(manifest_dir) -> set:
    if not os.access(chartlib.CHECKOV, os.X_OK):
        pytest.fail(f"checkov not found at {chartlib.CHECKOV}: run `make setup` (requirements-scan.txt into .venv-scan) or set CHECKOV")
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false", LOG_LEVEL="ERROR")
    proc = subprocess.run(
        # --skip-download: no calls to the vendor's platform (no network here, and none needed).
        [chartlib.CHECKOV, "-d", str(manifest_dir), "--framework", "kubernetes", "--skip-download", "--quiet", "--compact", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode in (0, 1), proc.stderr
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    findings = set()
    scanned = 0
    for rep in reports:
        if "results" not in rep:
            continue
        scanned += rep["summary"]["resource_count"]
        for f in rep["results"]["failed_checks"]:
            findings.add((f["check_id"], f["resource"]))
    assert scanned, f"checkov scanned nothing: {proc.stdout[:500]}"
    return findings


@pytest.fixture(scope="module")
def inventory_findings(renders, tmp_path_factory):
    d = tmp_path_factory.mktemp("checkov-inventories")
    for name in INVENTORIES:
        (d / f"{name}.yaml").write_text(renders[name].stdout)
    return checkov_findings(d)


def test_exceptions_file_is_well_formed():
    exceptions = chartlib.load_exceptions(EXCEPTIONS)
    assert exceptions
    for (check, resource), reason in exceptions.items():
        assert check.startswith("CKV"), check
        assert resource.count(".") >= 2, resource
        assert len(reason) > 40, f"{check}: give a real reason"


def test_inventory_findings_are_all_justified(inventory_findings):
    unjustified, _ = chartlib.compare_findings(inventory_findings, chartlib.load_exceptions(EXCEPTIONS))
    assert not unjustified, f"checkov findings not justified in {EXCEPTIONS.name}: {unjustified}"


def test_no_stale_exceptions(inventory_findings):
    _, stale = chartlib.compare_findings(inventory_findings, chartlib.load_exceptions(EXCEPTIONS))
    assert not stale, f"exceptions in {EXCEPTIONS.name} that no longer fire (remove them): {stale}"


def test_checkov_catches_a_broken_manifest(renders, tmp_path):
    """The scan itself can fail: a variant of dev with privilege escalation and mounted tokens raises new findings."""
    text = renders["dev"].stdout.replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true")
    text = text.replace("automountServiceAccountToken: false", "automountServiceAccountToken: true")
    (tmp_path / "broken.yaml").write_text(text)
    unjustified, _ = chartlib.compare_findings(checkov_findings(tmp_path), chartlib.load_exceptions(EXCEPTIONS))
    ids = {c for c, _ in unjustified}
    assert "CKV_K8S_20" in ids, unjustified  # allowPrivilegeEscalation
    assert "CKV_K8S_38" in ids, unjustified  # service account token
