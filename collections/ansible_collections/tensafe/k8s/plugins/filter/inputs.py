# Copyright (c) 2026 TenSafe platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Convert role inputs typed int, bool or float in argument_specs, as Ansible's own argument-spec validation does.

Key=value extra vars (-e app_replicas=3) and quoted inventory values always arrive as strings; a role's
argument_specs accept them (the conversion is checked but not written back), so every comparison, arithmetic
and value handed to Helm or a template goes through these filters instead of the raw variable.

A value that does not convert is returned as it is: the role's argument-spec validation, which runs before any
of its tasks, refuses it and names the variable. Failing here instead would fail earlier, while Ansible templates
the arguments it is about to validate (a *_values_defaults input refers to the typed inputs), without the name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.validation import check_type_bool, check_type_float, check_type_int


def _convert(check, value):
    try:
        return check(value)
    except (TypeError, ValueError):
        return value


def to_int(value):
    """An int from an int or its decimal string form ('3'), as argument_specs type int converts it."""
    converted = _convert(check_type_int, value)
    return int(converted) if isinstance(converted, int) else converted


def to_bool(value):
    """A bool from the forms argument_specs type bool accepts: true/false, yes/no, on/off, y/n, t/f, 1/0."""
    return _convert(check_type_bool, value)


def to_float(value):
    """A float from a number or its string form ('0.05'), as argument_specs type float converts it."""
    return _convert(check_type_float, value)


class FilterModule(object):
    def filters(self):
        return {"to_int": to_int, "to_bool": to_bool, "to_float": to_float}
