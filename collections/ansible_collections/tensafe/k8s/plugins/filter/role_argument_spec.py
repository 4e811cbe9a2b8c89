# Copyright (c) 2026 TenSafe platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""tensafe.k8s.role_argument_spec: the options of one entry point of several of this collection's roles, merged.

Documentation: role_argument_spec.yml next to this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import yaml

from ansible.errors import AnsibleFilterError

_ROLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "roles")


def role_argument_spec(roles, entry_point="main"):
    """{option: spec} of entry_point in meta/argument_specs.yml of each role of this collection named in roles."""
    if isinstance(roles, str):
        roles = [roles]
    merged = {}
    for role in roles:
        path = os.path.join(_ROLES, str(role), "meta", "argument_specs.yml")
        try:
            with open(path, encoding="utf-8") as handle:
                specs = (yaml.safe_load(handle) or {}).get("argument_specs") or {}
        except OSError as error:
            raise AnsibleFilterError("role_argument_spec: role %s of tensafe.k8s has no argument specs: %s" % (role, error))
        if entry_point not in specs:
            raise AnsibleFilterError("role_argument_spec: role %s has no entry point %s" % (role, entry_point))
        for name, spec in ((specs[entry_point] or {}).get("options") or {}).items():
            if name in merged and merged[name] != spec:
                raise AnsibleFilterError("role_argument_spec: option %s differs between the roles %s" % (name, ", ".join(roles)))
            merged[name] = spec
    return merged


class FilterModule(object):
    def filters(self):
        return {"role_argument_spec": role_argument_spec}
