"""The chart's values are documented where they live: `## @param` lines on values.yaml. The pinned
@bitnami/readme-generator-for-helm (tools/readme-generator, `npm ci` by `make setup`) regenerates the README's
Parameters table and a schema from them into a temp dir; the committed README must be that output, and the
generated schema must agree with the hand-written, stricter values.schema.json (every documented key present
there, with a compatible type)."""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import chartlib

TOOL_DIR = chartlib.REPO / "tools/readme-generator"
GENERATOR = Path(os.environ.get("README_GENERATOR") or TOOL_DIR / "node_modules/.bin/readme-generator")
REGENERATE = f"{GENERATOR.relative_to(chartlib.REPO) if GENERATOR.is_relative_to(chartlib.REPO) else GENERATOR} -v {{chart}}/values.yaml -r {{chart}}/README.md"
# JSON types of the generator (JavaScript typeof) -> JSON schema types of values.schema.json that accept them.
COMPATIBLE = {"string": {"string"}, "number": {"integer", "number"}, "boolean": {"boolean"}, "object": {"object"}, "array": {"array"}}


def generate(chart: Path, out: Path) -> subprocess.CompletedProcess:
    """Run the generator on a copy of the chart's values.yaml and README.md in out/."""
    if not os.access(GENERATOR, os.X_OK):
        pytest.fail(f"{GENERATOR} not found: run `make setup` (npm ci in {TOOL_DIR.relative_to(chartlib.REPO)})")
    shutil.copy(chart / "values.yaml", out / "values.yaml")
    shutil.copy(chart / "README.md", out / "README.md")
    return subprocess.run(
        [str(GENERATOR), "-v", str(out / "values.yaml"), "-r", str(out / "README.md"), "-s", str(out / "schema.json")],
        capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("readme-generator")
    proc = generate(chartlib.CHART, out)
    errors = [line for line in proc.stdout.splitlines() if line.startswith("ERROR")]
    assert proc.returncode == 0, "values.yaml metadata is incomplete or wrong:\n" + "\n".join(errors or [proc.stderr[-2000:]])
    return out


def test_every_value_is_documented_and_the_readme_table_is_current(generated):
    committed = (chartlib.CHART / "README.md").read_text()
    fresh = (generated / "README.md").read_text()
    diff = "".join(difflib.unified_diff(committed.splitlines(True), fresh.splitlines(True), "README.md (committed)", "README.md (generated)"))
    assert committed == fresh, f"the Parameters table is stale; regenerate it with\n  {REGENERATE.format(chart=chartlib.CHART.relative_to(chartlib.REPO))}\n{diff}"


def schema_types(node: dict) -> set:
    """The JSON types a values.schema.json node accepts (anyOf/oneOf branches included)."""
    types = node.get("type")
    out = set(types if isinstance(types, list) else [types] if types else [])
    for branch in node.get("anyOf", []) + node.get("oneOf", []):
        out |= schema_types(branch)
    if "enum" in node and not out:
        out |= {type(v).__name__.replace("str", "string").replace("int", "integer") for v in node["enum"]}
    return out


def schema_mismatches(generated: dict, committed: dict, path: str = "") -> list[str]:
    """Keys of the generated schema that values.schema.json lacks or types differently."""
    problems = []
    for key, gen in (generated.get("properties") or {}).items():
        here = f"{path}.{key}" if path else key
        props = committed.get("properties") or {}
        if key in props:
            node = props[key]
        elif isinstance(committed.get("additionalProperties"), dict):
            node = committed["additionalProperties"]
        elif committed.get("additionalProperties") is False or props:
            problems.append(f"{here}: documented in values.yaml, missing from values.schema.json")
            continue
        else:
            continue  # a free-form map in values.schema.json (e.g. nodeSelector): nothing more to compare
        want = COMPATIBLE[gen["type"]]
        have = schema_types(node)
        if not want & have:
            problems.append(f"{here}: values.yaml has a {gen['type']} ({gen.get('default')!r}), values.schema.json allows {sorted(have)}")
            continue
        if gen["type"] == "number" and have == {"integer"} and not float(gen["default"]).is_integer():
            problems.append(f"{here}: default {gen['default']} is not an integer")
        if gen["type"] == "object":
            problems += schema_mismatches(gen, node, here)
        elif gen["type"] == "array" and isinstance(gen.get("items"), dict) and "properties" in gen["items"]:
            problems += schema_mismatches(gen["items"], node.get("items") or {}, here + "[]")
    return problems


def test_values_schema_agrees_with_the_documented_values(generated):
    gen = json.loads((generated / "schema.json").read_text())
    committed = json.loads((chartlib.CHART / "values.schema.json").read_text())
    assert gen.get("properties"), "the generator produced an empty schema"
    problems = schema_mismatches(gen, committed)
    assert not problems, "values.schema.json disagrees with values.yaml:\n" + "\n".join(problems)


# --- the checks above can fail ----------------------------------------------------------------------

def _broken_chart(tmp_path, edit_values=None, edit_readme=None) -> Path:
    chart = tmp_path / "chart"
    chart.mkdir()
    for name in ("values.yaml", "README.md"):
        shutil.copy(chartlib.CHART / name, chart / name)
    if edit_values:
        (chart / "values.yaml").write_text(edit_values((chart / "values.yaml").read_text()))
    if edit_readme:
        (chart / "README.md").write_text(edit_readme((chart / "README.md").read_text()))
    return chart


def test_an_undocumented_key_fails_the_generator(tmp_path):
    chart = _broken_chart(tmp_path, edit_values=lambda s: s.replace("revisionHistoryLimit: 10\n", "revisionHistoryLimit: 10\nnewKnob: true\n"))
    (tmp_path / "out").mkdir()
    proc = generate(chart, tmp_path / "out")
    assert proc.returncode != 0 and "Missing metadata for key: newKnob" in proc.stdout, proc.stdout[-2000:]


def test_a_changed_default_makes_the_table_stale(tmp_path):
    chart = _broken_chart(tmp_path, edit_values=lambda s: s.replace("revisionHistoryLimit: 10\n", "revisionHistoryLimit: 5\n"))
    (tmp_path / "out").mkdir()
    assert generate(chart, tmp_path / "out").returncode == 0
    assert (tmp_path / "out/README.md").read_text() != (chartlib.CHART / "README.md").read_text()


def test_the_schema_comparison_catches_a_type_and_a_missing_key(generated):
    gen = json.loads((generated / "schema.json").read_text())
    committed = json.loads((chartlib.CHART / "values.schema.json").read_text())
    committed["properties"]["revisionHistoryLimit"]["type"] = "string"
    del committed["properties"]["probes"]["properties"]["startup"]["properties"]["timeoutSeconds"]
    problems = "\n".join(schema_mismatches(gen, committed))
    assert "revisionHistoryLimit: values.yaml has a number" in problems
    assert "probes.startup.timeoutSeconds: documented in values.yaml, missing" in problems
