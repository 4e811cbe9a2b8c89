"""Every task whose result can carry a Secret's data hides it (no_log), in the roles, playbooks and molecule scenarios.

Arguments are not enough to look at: kubernetes.core.k8s returns the object it applied or deleted (a Secret with its
data), k8s_info returns what it read, helm_info the release manifest (every Secret the chart renders) and
helm_template the rendered manifests. tests/leaks proves the outcome at -vvv on a real run; this keeps the rule for
tasks that run only in modes that run does not reach (uninstall, kind, other delivery modes).
"""
import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLES = ROOT / "collections/ansible_collections/tensafe/k8s/roles"
FILES = sorted([*ROLES.glob("*/tasks/*.yml"), *(ROOT / "playbooks").rglob("*.yml"), *(ROOT / "molecule").rglob("*.yml"),
                *(ROOT / "tests").rglob("playbooks/*.yml")])
# Ansible's tags: their values never matter here.
yaml.SafeLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
yaml.SafeLoader.add_constructor("!vault", lambda loader, node: loader.construct_scalar(node))

MANIFEST_MODULES = {"kubernetes.core.helm_info", "kubernetes.core.helm_template"}
OBJECT_MODULES = {"kubernetes.core.k8s", "kubernetes.core.k8s_info"}
# kind: Secret as an argument, in a definition, in a loop item or a task variable; or a bare "- Secret" loop item.
SECRET_KIND = re.compile(r"""(\bkind['"]?:\s*['"]?Secret['"]?\s*[,}\n]|^\s*- Secret\s*$)""", re.M)


def tasks_of(data, inherited=None):
    """(task, no_log in force) for every task of a task list or playbook, through blocks."""
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict):
            continue
        no_log = item.get("no_log", inherited)
        if "hosts" in item:
            for key in ("pre_tasks", "tasks", "post_tasks", "handlers"):
                yield from tasks_of(item.get(key), no_log)
            continue
        if any(key in item for key in ("block", "rescue", "always")):
            for key in ("block", "rescue", "always"):
                yield from tasks_of(item.get(key), no_log)
            continue
        yield item, no_log


def module_of(task):
    return next((key for key in task if key.startswith(("kubernetes.core.", "ansible.", "community."))), None)


def findings():
    for path in FILES:
        data = yaml.safe_load(path.read_text())
        for task, no_log in tasks_of(data):
            module = module_of(task)
            if module in MANIFEST_MODULES:
                why = "its result holds rendered manifests"
            elif module in OBJECT_MODULES and SECRET_KIND.search(yaml.safe_dump({k: v for k, v in task.items() if k != "name"})):
                why = "its result holds a Secret"
            else:
                continue
            yield path.relative_to(ROOT), task.get("name", "?"), module, why, no_log


FINDINGS = list(findings())


def test_the_rule_finds_the_tasks_it_is_about():
    """Control: the token reviewer's Secret (the task of issue 14) and the release reads are among the findings."""
    names = {name for _, name, _, _, _ in FINDINGS}
    assert any("token reviewer" in name and "token Secret" in name for name in names), sorted(names)
    assert sum(module in MANIFEST_MODULES for _, _, module, _, _ in FINDINGS) >= 10


@pytest.mark.parametrize("path,name,module,why,no_log", FINDINGS,
                         ids=[f"{path}:{name}" for path, name, _, _, _ in FINDINGS])
def test_secret_results_are_hidden(path, name, module, why, no_log):
    assert no_log not in (None, False, "false"), (
        f'{path}: task "{name}" ({module}) has no no_log, but {why}: add '
        "no_log: \"{{ tensafe_no_log | default(true) }}\" (per item in a loop over other objects: "
        "\"{{ (tensafe_no_log | default(true) | bool) and item.kind == 'Secret' }}\")")
    assert "tensafe_no_log" in str(no_log) or no_log is True, f"{path}: {name}: no_log must follow tensafe_no_log"
