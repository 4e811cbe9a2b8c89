"""helm lint --strict for the chart's defaults, every ci/ values file (lint coverage) and every plan of the
inventories (scenarios.yml), and the values schema itself."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

import chartlib
from conftest import SCENARIOS, VARIATIONS


def _lint(values_files):
    args = ["lint", "--strict", str(chartlib.CHART)]
    for f in values_files:
        args += ["-f", str(f)]
    return chartlib.helm(*args)


@pytest.mark.parametrize("name", sorted(VARIATIONS))
def test_helm_lint_strict(name):
    _assert_lint_clean(_lint(VARIATIONS[name]))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_helm_lint_strict_plans(plans, name):
    _assert_lint_clean(_lint([plans[name].values_file]))


def _assert_lint_clean(proc):
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out
    # helm lint only logs template `fail` calls: make sure no guard fired for a variation meant to be valid.
    assert "Fail:" not in out, out


def test_chart_metadata():
    meta = yaml.safe_load((chartlib.CHART / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "tensafe"
    assert meta["version"] == "4.0.0"
    assert meta["appVersion"] == "4.0.0"
    assert meta["kubeVersion"] == ">=1.24.0-0"
    for key in ("description", "home", "sources", "maintainers"):
        assert meta.get(key), key
    assert "dependencies" not in meta, "no subcharts: PostgreSQL and Redis come from the datastores role"
    assert not (chartlib.CHART / "charts").exists()


def _schema():
    return json.loads((chartlib.CHART / "values.schema.json").read_text())


def _defaults():
    return yaml.safe_load((chartlib.CHART / "values.yaml").read_text())


def test_schema_is_valid_draft07():
    schema = _schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["additionalProperties"] is False


def _walk(values, schema, path=""):
    """Yield the value paths that the schema does not type."""
    props = schema.get("properties", {})
    for key, val in values.items():
        here = f"{path}.{key}" if path else key
        sub = props.get(key)
        if sub is None:
            # Free-form maps (nodeSelector, config, annotations...) type their entries with additionalProperties.
            if not isinstance(schema.get("additionalProperties"), dict) and props:
                yield here
            continue
        if not ({"type", "anyOf", "enum"} & set(sub)):
            yield f"{here} (no type)"
        if isinstance(val, dict) and "properties" in sub:
            yield from _walk(val, sub, here)


def test_schema_covers_every_default_key():
    missing = list(_walk(_defaults(), _schema()))
    assert not missing, f"values.yaml keys the schema does not type: {missing}"


def _merge(base, over):
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        elif v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


@pytest.mark.parametrize("name", sorted(VARIATIONS))
def test_values_validate_against_schema(name):
    values = _defaults()
    for f in VARIATIONS[name]:
        values = _merge(values, yaml.safe_load(open(f, encoding="utf-8")) or {})
    errors = [e.message for e in jsonschema.Draft7Validator(_schema()).iter_errors(values)]
    assert not errors


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_plan_values_validate_against_schema(plans, name):
    values = _merge(_defaults(), plans[name].values)
    errors = [e.message for e in jsonschema.Draft7Validator(_schema()).iter_errors(values)]
    assert not errors


@pytest.mark.parametrize(
    "patch, fragment",
    [
        ({"gpu": {"count": -1}}, "-1 is less than the minimum of 0"),
        ({"replicaCount": -1}, "-1 is less than the minimum of 0"),
        ({"autoscaling": {"minReplicas": 0}}, "0 is less than the minimum of 1"),
        ({"autoscaling": {"mode": "both"}}, "'both' is not one of"),
        ({"image": {"digest": "sha256:ABC"}}, "does not match"),
        ({"image": {"repository": "Tensafe/App"}}, "does not match"),
        ({"image": {"repository": "tensafe/ app"}}, "does not match"),
        ({"resources": {"limits": {"cpu": "4"}}}, "'memory' is a required property"),
        ({"ingres": {}}, "Additional properties are not allowed"),
        ({"autoscaling": {"targetCPUUtilizationPercentage": 70}}, "Additional properties are not allowed"),
    ],
)
def test_schema_rejects(patch, fragment):
    values = _defaults()
    if "resources" in patch:
        values["resources"] = patch["resources"]
    else:
        values = _merge(values, patch)
    errors = [e.message for e in jsonschema.Draft7Validator(_schema()).iter_errors(values)]
    assert any(fragment in e for e in errors), errors
