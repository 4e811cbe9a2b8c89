# Copyright (c) 2026 TenSafe platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Find variables with a role's prefix that no role of this collection declares: a typo changes nothing silently.

Declared: the options of every entry point of every role's meta/argument_specs.yml, the keys of its defaults and vars
files, the facts its tasks set or register, the old names still honoured (vars keys ending in _deprecated_names or
_renamed), and the tensafe_* globals of the playbooks and inventories (GLOBALS).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import glob
import os

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

ROLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "roles")
PREFIXES = ("app_", "datastores_", "vault_", "vault_server_", "observability_", "prerequisites_", "tensafe_")
# Set by the playbooks and inventories, read by the roles (README: inventory layout). A new global goes here too;
# tests/unit/test_unknown_variables.py finds the ones used in the repository and not listed.
GLOBALS = frozenset([
    "tensafe_kubeconfig", "tensafe_kube_context", "tensafe_kube_access", "tensafe_no_log", "tensafe_strict_variables",
    "tensafe_prerequisites_enabled", "tensafe_datastores_enabled", "tensafe_vault_enabled", "tensafe_observability_enabled",
    "tensafe_app_enabled", "tensafe_validated_roles", "tensafe_gpu_fit_checked", "tensafe_gpu_fit_deferred", "tensafe_role",
    "tensafe_app_values_file", "tensafe_app_plan", "tensafe_inputs", "tensafe_api_timeout", "tensafe_cluster_checked",
    "tensafe_drift_report",
])
_DECLARED = []


def _load(path):
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!unsafe", lambda loader, node: None)
    Loader.add_constructor("!vault", lambda loader, node: None)
    try:
        with open(path) as handle:
            return yaml.load(handle, Loader=Loader)  # nosec - SafeLoader subclass
    except (IOError, OSError, yaml.YAMLError):
        return None


def _task_names(tasks, found):
    for task in tasks if isinstance(tasks, list) else []:
        if not isinstance(task, dict):
            continue
        for key in ("block", "rescue", "always"):
            _task_names(task.get(key), found)
        if isinstance(task.get("register"), string_types):
            found.add(task["register"])
        for module in ("ansible.builtin.set_fact", "set_fact"):
            if isinstance(task.get(module), dict):
                found.update(task[module])


def declared(roles_dir=ROLES_DIR):
    """Every variable name the roles declare, set or honour (read once per process)."""
    if _DECLARED and roles_dir == ROLES_DIR:
        return _DECLARED[0]
    names = set(GLOBALS)
    for path in glob.glob(os.path.join(roles_dir, "*", "meta", "argument_specs.yml")):
        for spec in ((_load(path) or {}).get("argument_specs") or {}).values():
            names.update((spec or {}).get("options") or {})
    for path in glob.glob(os.path.join(roles_dir, "*", "defaults", "*.yml")):
        names.update(_load(path) or {})
    for path in glob.glob(os.path.join(roles_dir, "*", "vars", "*.yml")):
        data = _load(path) or {}
        names.update(data)
        for key, value in data.items():
            if key.endswith(("_deprecated_names", "_renamed")) and isinstance(value, dict):
                names.update(value)
    for path in glob.glob(os.path.join(roles_dir, "*", "tasks", "*.yml")):
        _task_names(_load(path), names)
    names = frozenset(name for name in names if isinstance(name, string_types))
    if roles_dir == ROLES_DIR:
        _DECLARED.append(names)
    return names


def unknown_variables(names, known=(), warn=False, roles_dir=ROLES_DIR):
    """The names with a role's prefix that nothing declares, each {name, closest, message}, sorted by name.

    known: more names to accept. warn: also print each as an Ansible warning (printed once per run, however often the
    check runs). The value is never shown: a misspelt secret stays secret.
    """
    if not isinstance(names, (list, tuple, set, frozenset)):
        raise AnsibleFilterError("unknown_variables: expects a list of variable names")
    known_names = declared(roles_dir) | frozenset(known or ())
    candidates = sorted(known_names)
    result = []
    for name in sorted(set(names)):
        if not isinstance(name, string_types) or not name.startswith(PREFIXES) or name in known_names:
            continue
        prefix = next(p for p in sorted(PREFIXES, key=len, reverse=True) if name.startswith(p))
        closest = difflib.get_close_matches(name, [c for c in candidates if c.startswith(prefix)] or candidates, n=1, cutoff=0.6)
        closest = closest[0] if closest else ""
        fix = "did you mean %s? Rename it" % closest if closest else "remove it (docs/roles.md lists every role's variables)"
        message = u"%s: <value not shown> \u2014 no tensafe.k8s role declares this variable, so it changes nothing; fix: %s" % (name, fix)
        result.append({"name": name, "closest": closest, "message": message})
    if warn and result:
        from ansible.utils.display import Display

        for item in result:
            Display().warning(item["message"])
    return result


class FilterModule(object):
    def filters(self):
        return {"unknown_variables": unknown_variables}
