"""Helpers of the observability tests: the role's single sources rendered for promtool."""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import importlib.util

import jinja2
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLE = ROOT / "collections/ansible_collections/tensafe/k8s/roles/observability"
RULES_TEMPLATE = ROLE / "templates/tensafe-rules.yaml.j2"
DASHBOARD = ROLE / "files/tensafe-dashboard.json"
APP_CHART = ROOT / "charts/tensafe"
HERE = pathlib.Path(__file__).resolve().parent
PROMTOOL = os.environ.get("PROMTOOL") or str(ROOT / "bin/promtool")
HELM = os.environ.get("HELM") or str(ROOT / "bin/helm")
sys.path.insert(0, str(ROOT / "tests"))

import app_plan  # noqa: E402

# Grafana variables in the dashboard's queries and what the tests put in their place.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$namespace": "tensafe", "$deployment": "tensafe"}


_INPUTS_SPEC = importlib.util.spec_from_file_location(
    "tensafe_inputs", ROOT / "collections/ansible_collections/tensafe/k8s/plugins/filter/inputs.py")
_INPUTS = importlib.util.module_from_spec(_INPUTS_SPEC)
_INPUTS_SPEC.loader.exec_module(_INPUTS)
# The collection's filters the template uses, under their Ansible names.
FILTERS = {f"tensafe.k8s.{name}": f for name, f in _INPUTS.FilterModule().filters().items()}


# A default that reads another role's variable: "{{ app_tensafe_release_namespace | default('tensafe') }}".
_FALLBACK = re.compile(r"^\{\{\s*\w+\s*\|\s*default\((.+)\)\s*\}\}$")


def role_defaults() -> dict:
    """The role's defaults as the role sees them alone: a value read from another role takes its fallback."""
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    for name, value in defaults.items():
        match = _FALLBACK.match(value) if isinstance(value, str) else None
        if match:
            defaults[name] = yaml.safe_load(match.group(1))
    return defaults


def render_rules(**overrides) -> str:
    """The rules template as the role renders it (variables in [[ ]], trim_blocks like Ansible's template)."""
    env = jinja2.Environment(variable_start_string="[[", variable_end_string="]]", trim_blocks=True,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters.update(FILTERS)
    return env.from_string(RULES_TEMPLATE.read_text()).render(**{**role_defaults(), **overrides})


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_queries(dashboard: dict) -> dict[str, str]:
    """Every PromQL query of the dashboard, named by where it is: panel targets and query variables."""
    out = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out[f"panel {panel['id']} ({panel['title']}) {target['refId']}"] = target["expr"]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            # label_values(<selector>, <label>) queries the series of <selector>.
            match = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
            out[f"variable {var['name']}"] = match.group(1) if match else query
    return out


def substitute_grafana_variables(expr: str) -> str:
    for name, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace("${" + name[1:] + "}", value).replace(name, value)
    return expr


def keda_queries(*set_args: str) -> dict[str, str]:
    """The KEDA trigger queries the app role renders for inventories/prod (trigger name -> query)."""
    plan = app_plan.plan("prod")
    cmd = [HELM, "template", plan.release, str(APP_CHART), "--namespace", plan.namespace, "-f", str(plan.values_file)]
    for arg in set_args:
        cmd += ["--set", arg]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    scaled = [d for d in yaml.safe_load_all(out) if d and d.get("kind") == "ScaledObject"]
    assert len(scaled) == 1, "inventories/prod renders no ScaledObject"
    return {t["name"]: t["metadata"]["query"] for t in scaled[0]["spec"]["triggers"] if t["type"] == "prometheus"}


def recording_rules_file(queries: dict[str, str], group: str) -> str:
    """Queries wrapped as recording rules, the form `promtool check rules` parses and checks."""
    rules = [{"record": f"{group}:q{i}", "expr": expr, "labels": {"source": name[:60]}}
             for i, (name, expr) in enumerate(queries.items())]
    return yaml.safe_dump({"groups": [{"name": group, "rules": rules}]}, sort_keys=False)


def check_queries(promtool: str, directory, queries: dict[str, str], group: str) -> subprocess.CompletedProcess:
    """`promtool check rules` on the queries wrapped as recording rules in <directory>/<group>.yaml."""
    path = pathlib.Path(directory) / f"{group}.yaml"
    path.write_text(recording_rules_file(queries, group))
    return run_promtool(promtool, "check", "rules", str(path))


def promtool_path() -> str | None:
    return PROMTOOL if (shutil.which(PROMTOOL) or os.access(PROMTOOL, os.X_OK)) else None


def run_promtool(promtool: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], capture_output=True, text=True, cwd=cwd, check=False)
