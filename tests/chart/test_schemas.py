"""Every rendered object validates: built-in kinds against the Kubernetes schemas (kubernetes-validate,
strict), custom resources against the upstream CRD openAPIV3Schema from ../shared/crds."""

from __future__ import annotations

import pytest

import chartlib
from conftest import VALIDATED


def test_crds_are_available():
    schemas = chartlib.crd_schemas()
    for key in (("keda.sh/v1alpha1", "ScaledObject"), ("monitoring.coreos.com/v1", "ServiceMonitor"), ("external-secrets.io/v1", "ExternalSecret")):
        assert key in schemas, f"{key} missing from {chartlib.CRDS_DIR}"


def test_objects_validate(variation):
    name, r = variation
    problems = []
    for obj in r.docs:
        problems += chartlib.object_problems(obj)
        VALIDATED["crd" if obj["kind"] in chartlib.CUSTOM_KINDS else "kubernetes"] += 1
    assert not problems, f"{name}: {problems}"


@pytest.mark.parametrize("kind", sorted(chartlib.CUSTOM_KINDS))
def test_each_custom_kind_is_rendered_somewhere(renders, kind):
    assert any(r.of_kind(kind) for r in renders.values()), f"no variation renders a {kind}: its schema is never checked"
