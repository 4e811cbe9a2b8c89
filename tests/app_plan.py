"""What the app role would hand to Helm: the chart values and manifests of an inventory, composed by the role's
own validate step (playbooks/app_values.yml, no cluster call), optionally with variables set on top as a user
would set them. The chart and observability tests render and scan these instead of hand-kept values files.

plans() runs one ansible-playbook per inventory (all inventories in parallel); each scenario of an inventory is
one import of playbooks/app_values.yml with its variables as play vars (above the inventory's group_vars).
Results are cached for the test process (the pytest session).
"""
from __future__ import annotations

import atexit
import concurrent.futures
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
PLAYBOOK = ROOT / "playbooks" / "app_values.yml"
INVENTORIES = ("dev", "prod", "local")
_WORKDIR = pathlib.Path(tempfile.mkdtemp(prefix="tensafe-app-plan-"))
atexit.register(shutil.rmtree, _WORKDIR, True)
_CACHE: dict[str, "Plan"] = {}
_SPECS: dict[str, tuple] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Plan:
    name: str
    inventory: str
    variables: dict
    release: str
    namespace: str
    values: dict
    values_file: pathlib.Path  # JSON, usable as `helm template -f`
    manifest: str  # what the role's own local render produced


def _ansible_playbook() -> str:
    venv = ROOT / ".venv/bin/ansible-playbook"
    found = str(venv) if os.access(venv, os.X_OK) else shutil.which("ansible-playbook")
    if not found:
        raise RuntimeError("ansible-playbook not found: run `make setup`")
    return found


def _run_inventory(inventory: str, scenarios: dict[str, dict]) -> tuple[dict[str, Plan], float]:
    """One ansible-playbook run for every scenario of one inventory."""
    plays = []
    for name, variables in scenarios.items():
        (_WORKDIR / name).mkdir(parents=True, exist_ok=True)
        plays.append({"import_playbook": str(PLAYBOOK), "vars": {**variables, "tensafe_app_values_file": str(_WORKDIR / name / "plan.json")}})
    playbook = _WORKDIR / f"{inventory}-plans.yml"
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
    cmd = [_ansible_playbook(), str(playbook), "-i", str(ROOT / "inventories" / inventory)]
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env["PATH"] = os.pathsep.join([str(ROOT / "bin"), str(ROOT / ".venv/bin"), env.get("PATH", "")])
    # inventories/local reads TENSAFE_LOCAL_GPUS (make demo sets it on the hermetic cluster): plan the default.
    env.pop("TENSAFE_LOCAL_GPUS", None)
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    out = {}
    for name, variables in scenarios.items():
        written = json.loads((_WORKDIR / name / "plan.json").read_text())
        # The values exactly as the role passes them to Helm, as a values file (JSON is YAML).
        values_file = _WORKDIR / name / "values.json"
        values_file.write_text(json.dumps(written["values"], indent=2))
        out[name] = Plan(
            name=name,
            inventory=inventory,
            variables=variables,
            release=written["release_name"],
            namespace=written["release_namespace"],
            values=written["values"],
            values_file=values_file,
            manifest=written["manifest"],
        )
    return out, seconds


def plans(specs: dict[str, tuple[str, dict]]) -> dict[str, Plan]:
    """name -> (inventory, variables). Cached by name (a name always means the same spec)."""
    with _LOCK:
        for name, spec in specs.items():
            spec = (spec[0], json.loads(json.dumps(spec[1] or {})))
            assert _SPECS.setdefault(name, spec) == spec, f"plan {name} requested with two different specs"
        todo: dict[str, dict[str, dict]] = {}
        for name, (inventory, variables) in specs.items():
            if name not in _CACHE:
                todo.setdefault(inventory, {})[name] = variables or {}
        if todo:
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(todo)) as pool:
                for result, seconds in pool.map(lambda kv: _run_inventory(*kv), todo.items()):
                    _CACHE.update(result)
                    TIMINGS.append(seconds)
        return {name: _CACHE[name] for name in specs}


def plan(name: str, inventory: str | None = None, variables: dict | None = None) -> Plan:
    return plans({name: (inventory or name, variables or {})})[name]


# Seconds of each ansible-playbook run (reported by the chart tests' terminal summary).
TIMINGS: list[float] = []
