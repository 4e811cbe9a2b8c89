"""Fixtures for the TenSafe chart tests: every ci/ variation is rendered once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chartlib  # noqa: E402

VARIATIONS = chartlib.variations()

# Objects validated against a schema, reported in the terminal summary.
VALIDATED = {"kubernetes": 0, "crd": 0}


@pytest.fixture(scope="session")
def renders():
    """variation name -> chartlib.Render (release tensafe, namespace tensafe)."""
    out = {}
    for name, files in VARIATIONS.items():
        r = chartlib.render_cached(tuple(files))
        assert r.rc == 0, f"helm template failed for {name}:\n{r.stderr}"
        out[name] = r
    return out


@pytest.fixture(params=sorted(VARIATIONS), scope="session")
def variation(request, renders):
    return request.param, renders[request.param]


def pytest_terminal_summary(terminalreporter):
    if VALIDATED["kubernetes"] or VALIDATED["crd"]:
        terminalreporter.write_line(
            f"chart: {VALIDATED['kubernetes']} objects validated against the Kubernetes "
            f"{'/'.join(chartlib.K8S_VERSIONS)} schemas (strict), {VALIDATED['crd']} custom resources against "
            f"the upstream CRD schemas in {chartlib.CRDS_DIR}"
        )
