"""Inputs typed int, bool or float in argument_specs, given as key=value extra vars (always strings).

Ansible's argument-spec validation accepts '3' for an int and refuses 'three'; the roles must agree: the string
form of a valid value passes `site.yml --tags validate` (the input checks only), and a value that does not convert
is refused before any cluster call, naming the variable. The cases come from every role's argument_specs, so a new variable is covered
without touching this file. No cluster: the kubeconfig points at the recording API (tests/recording_api.py).
"""
import shlex

import pytest
import yaml

from recording_api import Recorder
from badinput import COMPONENTS, ROLES, ROOT, SITE, run

KINDS = ("int", "bool", "float")
NOT_A = {"int": "three", "bool": "maybe", "float": "lots"}


def typed_options(role):
    """{variable: spec} for the options typed int, bool or float of the role's validate entry point."""
    specs = yaml.safe_load((ROLES / role / "meta/argument_specs.yml").read_text())["argument_specs"]
    options = specs["validate"]["options"]
    return {name: spec for name, spec in options.items() if spec.get("type") in KINDS}


def local_value(name, spec):
    """The value inventories/local uses (a literal there, else the role default), as a key=value string."""
    value = spec.get("default")
    for path in sorted((ROOT / "inventories/local/group_vars/all").glob("*.yml")):
        data = yaml.load(path.read_text(), Loader=_Loader) or {}
        if name in data and not (isinstance(data[name], str) and "{{" in data[name]):
            value = data[name]
    if spec["type"] == "bool":
        return "yes" if value else "no"
    return str(value)


class _Loader(yaml.SafeLoader):
    """Leaves !unsafe values (never templated) alone."""


_Loader.add_constructor("!unsafe", lambda loader, node: None)

TYPED = {role: typed_options(role) for role in COMPONENTS if (ROLES / role).is_dir()}


def extra_vars(pairs):
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in pairs.items())


def test_every_role_has_typed_inputs():
    assert all(TYPED.values()), TYPED


def test_typed_inputs_as_key_value_strings_pass_validation(inventory):
    """All typed inputs of all roles at once, each as the string a user types after -e."""
    pairs = {name: local_value(name, spec) for options in TYPED.values() for name, spec in options.items()}
    result = run(SITE, inventory, ["--tags", "validate", "-e", extra_vars(pairs)])
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"--tags validate refused valid key=value strings:\n{output[-4000:]}"
    assert Recorder.requests == []


@pytest.mark.parametrize("role", sorted(TYPED))
def test_typed_inputs_that_do_not_convert_are_refused_by_name(inventory, role):
    """Each typed input of the role gets a value of its type's wrong form; every one is named in the refusal."""
    pairs = {name: NOT_A[spec["type"]] for name, spec in TYPED[role].items()}
    # Only this role is validated, so its argument-spec check reports all of them at once.
    pairs.update({f"tensafe_{c}_enabled": "true" if c == role else "false" for c in TYPED})
    result = run(SITE, inventory, ["--tags", "validate", "-e", extra_vars(pairs)])
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{role}: --tags validate accepted {pairs}"
    missing = [name for name in TYPED[role] if name not in output]
    assert not missing, f"{role}: the refusal does not name {missing}:\n{output[-4000:]}"
    assert Recorder.requests == [], f"{role}: the cluster was called before the refusal: {Recorder.requests}"


@pytest.mark.parametrize("name,value", [("app_replicas", "three"), ("app_gpus_per_pod", "2.5"), ("app_ingress_enabled", "maybe")])
def test_site_refuses_a_bad_string_before_any_cluster_call(inventory, name, value):
    """site.yml, all components enabled, a full run: refused by name before any cluster call."""
    result = run("site.yml", inventory, ["-e", f"{name}={value}"])
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert name in output, output[-3000:]
    assert Recorder.requests == [], Recorder.requests
