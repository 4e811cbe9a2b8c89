"""Fixtures for the TenSafe chart tests.

What is rendered and asserted on is what the app role would hand to Helm: the plans of scenarios.yml (the
inventories dev, prod and local, and role variables on top of them), composed by the role's own validate step
(tests/app_plan.py, one ansible-playbook per inventory, once per session), plus the chart's defaults alone.
The ci/*-values.yaml variations are only linted (test_lint_schema.py).
"""

from __future__ import annotations

import concurrent.futures
import sys
import time
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import app_plan  # noqa: E402
import chartlib  # noqa: E402

# helm lint coverage: the chart's defaults and each ci/ values file.
VARIATIONS = chartlib.variations()
SCENARIOS = yaml.safe_load((HERE / "scenarios.yml").read_text())
# Rendered: the chart's defaults ("default") and every plan of scenarios.yml.
RENDERS = ["default", *SCENARIOS]

# Objects validated against a schema, reported in the terminal summary.
VALIDATED = {"kubernetes": 0, "crd": 0}
PLAN_SECONDS = []


def _compute_plans():
    start = time.monotonic()
    out = app_plan.plans({name: (s["inventory"], s.get("vars") or {}) for name, s in SCENARIOS.items()})
    PLAN_SECONDS.append(time.monotonic() - start)
    return out


def _needs_plans(item) -> bool:
    return bool({"plans", "renders", "variation"} & set(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(session, config, items):
    """The tests that need no plan run first, while the plans are computed in the background."""
    items.sort(key=_needs_plans)  # stable: file order is kept within each group


def pytest_collection_finish(session):
    if any(_needs_plans(item) for item in session.items):
        _BACKGROUND.append(concurrent.futures.ThreadPoolExecutor(max_workers=1).submit(_compute_plans))


_BACKGROUND: list = []


@pytest.fixture(scope="session")
def plans():
    """scenario name -> app_plan.Plan (values, release, namespace, the role's own render)."""
    return _BACKGROUND[0].result() if _BACKGROUND else _compute_plans()


@pytest.fixture(scope="session")
def renders(plans):
    """name -> chartlib.Render: 'default' (release tensafe, namespace tensafe) and each plan (the role's release)."""
    out = {"default": chartlib.render_cached(())}
    for name, plan in plans.items():
        out[name] = chartlib.render_plan(plan)
    for name, r in out.items():
        assert r.rc == 0, f"helm template failed for {name}:\n{r.stderr}"
    return out


@pytest.fixture(params=RENDERS, scope="session")
def variation(request, renders):
    return request.param, renders[request.param]


def pytest_terminal_summary(terminalreporter):
    if PLAN_SECONDS:
        terminalreporter.write_line(
            f"chart: {len(SCENARIOS)} app role plans of inventories {'/'.join(app_plan.INVENTORIES)} in "
            f"{PLAN_SECONDS[0]:.1f}s (ansible-playbook runs: {', '.join(f'{s:.1f}s' for s in app_plan.TIMINGS)})"
        )
    if VALIDATED["kubernetes"] or VALIDATED["crd"]:
        terminalreporter.write_line(
            f"chart: {VALIDATED['kubernetes']} objects validated against the Kubernetes "
            f"{'/'.join(chartlib.K8S_VERSIONS)} schemas (strict), {VALIDATED['crd']} custom resources against "
            f"the upstream CRD schemas in {chartlib.CRDS_DIR}"
        )
