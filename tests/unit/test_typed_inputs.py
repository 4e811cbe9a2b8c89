"""Inputs typed int, bool or float in argument_specs are used only through the tensafe.k8s.to_<type> filters.

Key=value extra vars (-e app_replicas=3) and quoted inventory values are strings. argument_specs accept their
string form (and refuse 'three', naming the variable) but do not write the converted value back, so a raw
`app_replicas >= 0` compares a string with an int, and a raw `"{{ app_replicas }}"` hands Helm a string.
This test parses every Jinja expression of the roles, playbooks and inventories and fails on any reference to
such an input that does not go through its conversion filter (`| default(...)` in between is allowed).
"""
import importlib.util
import pathlib

import jinja2
import jinja2.nodes as jn
import pytest
import yaml
from ansible.module_utils.common.validation import check_type_bool, check_type_float, check_type_int

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLES = ROOT / "collections/ansible_collections/tensafe/k8s/roles"

# Keys whose string value is a bare Jinja expression (no {{ }}).
CONDITIONAL_KEYS = {"when", "that", "failed_when", "changed_when", "until"}
FILTER = {"int": "tensafe.k8s.to_int", "bool": "tensafe.k8s.to_bool", "float": "tensafe.k8s.to_float"}
# Reworked by the parallel fixes of issue 15 (GPU capacity preflight, Vault bootstrap): converted when those land.
# Remove a file from here once it passes (xfail is not strict so the merge order does not matter).
PENDING = set()


def typed_inputs():
    """{variable: type} for every option typed int, bool or float in any role's argument_specs."""
    typed = {}
    for spec_file in sorted(ROLES.glob("*/meta/argument_specs.yml")):
        for entry in yaml.safe_load(spec_file.read_text())["argument_specs"].values():
            for name, spec in (entry.get("options") or {}).items():
                if spec.get("type") in FILTER:
                    typed[name] = spec["type"]
    return typed




class _Loader(yaml.SafeLoader):
    """Skips !unsafe (never templated) and !vault values."""


_Loader.add_constructor("!unsafe", lambda loader, node: None)
_Loader.add_constructor("!vault", lambda loader, node: None)


TYPED = typed_inputs()


def yaml_files():
    files = []
    for role in sorted(p for p in ROLES.iterdir() if p.is_dir()):
        for sub in ["tasks", "defaults", "vars", "handlers"]:
            files += sorted((role / sub).glob("**/*.yml"))
    files += sorted((ROOT / "playbooks").glob("**/*.yml"))
    files += sorted((ROOT / "inventories").glob("*/group_vars/**/*.yml"))
    files += sorted((ROOT / "inventories").glob("*/host_vars/**/*.yml"))
    return [
        pytest.param(f, id=str(f.relative_to(ROOT)), marks=pytest.mark.xfail(reason="issue 15, parallel fix", strict=False))
        if str(f.relative_to(ROOT)) in PENDING else pytest.param(f, id=str(f.relative_to(ROOT)))
        for f in files
    ]


def expressions(node, key=None):
    """(template source, is_bare_expression) for every string in a YAML document."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from expressions(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from expressions(v, key)
    elif isinstance(node, str):
        if "{{" in node or "{%" in node:
            yield node
        elif key in CONDITIONAL_KEYS:
            yield "{{ " + node + " }}"


def unconverted(source, env):
    """Typed inputs referenced in source without their conversion filter: [(name, why)]."""
    tree = env.parse(source)
    parents = {}
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in node.iter_child_nodes():
            parents[id(child)] = node
            stack.append(child)
    bad = []
    for name in tree.find_all(jn.Name):
        if name.ctx != "load" or name.name not in TYPED:
            continue
        wanted = FILTER[TYPED[name.name]]
        node, parent = name, parents.get(id(name))
        while isinstance(parent, jn.Filter) and parent.name == "default" and parent.node is node:
            node, parent = parent, parents.get(id(parent))
        if isinstance(parent, jn.Filter) and parent.node is node and parent.name == wanted:
            continue
        if isinstance(parent, jn.Test) and parent.node is node and parent.name in ("defined", "undefined"):
            continue
        bad.append(f"{name.name} (use | {wanted})")
    return bad


def test_there_are_typed_inputs():
    assert {"app_replicas", "app_rollback_revision", "vault_server_dev_mode"} <= set(TYPED)


@pytest.mark.parametrize("path", yaml_files())
def test_typed_inputs_are_converted_in_yaml(path):
    env = jinja2.Environment()
    bad = []
    for doc in yaml.load_all(path.read_text(), Loader=_Loader):
        for source in expressions(doc):
            bad += [f"{b}: {source.strip()[:120]}" for b in unconverted(source, env)]
    assert not bad, f"{path.relative_to(ROOT)}: typed inputs used raw:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", sorted(ROLES.glob("*/templates/**/*.j2")), ids=lambda p: str(p.relative_to(ROLES)))
def test_typed_inputs_are_converted_in_templates(path):
    text = path.read_text()
    # The observability rules are Prometheus templates themselves, so the role renders them with [[ ]].
    env = jinja2.Environment(variable_start_string="[[", variable_end_string="]]") if "[[" in text else jinja2.Environment()
    bad = unconverted(text, env)
    assert not bad, f"{path.relative_to(ROLES)}: typed inputs used raw: {bad}"


@pytest.mark.parametrize("source,ok", [
    ("{{ app_replicas >= 0 }}", False),
    ("{{ app_replicas | int >= 0 }}", False),
    ("{{ app_replicas | tensafe.k8s.to_int >= 0 }}", True),
    ("{{ app_replicas | default(2) | tensafe.k8s.to_int }}", True),
    ("{{ app_replicas | tensafe.k8s.to_bool }}", False),
    ("{{ app_replicas is defined }}", True),
    ("{{ lookup('vars', 'app_replicas') }}", True),
])
def test_the_check_itself(source, ok):
    assert (unconverted(source, jinja2.Environment()) == []) == ok


_spec = importlib.util.spec_from_file_location(
    "inputs", ROOT / "collections/ansible_collections/tensafe/k8s/plugins/filter/inputs.py")
inputs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(inputs)


@pytest.mark.parametrize("kind,value", [
    ("int", "3"), ("int", 3), ("int", "-1"), ("int", "3.5"), ("int", "three"), ("int", True),
    ("bool", "yes"), ("bool", "No"), ("bool", "y"), ("bool", "t"), ("bool", "0"), ("bool", False), ("bool", "maybe"),
    ("float", "0.05"), ("float", 10), ("float", "lots"),
])
def test_the_filters_convert_as_argument_specs_do(kind, value):
    """What argument-spec validation accepts is converted to the same value; what it refuses is left alone."""
    check = {"int": check_type_int, "bool": check_type_bool, "float": check_type_float}[kind]
    converted = getattr(inputs, f"to_{kind}")(value)
    try:
        expected = check(value)
    except TypeError:
        assert converted is value
    else:
        assert converted == expected and type(converted) is {"int": int, "bool": bool, "float": float}[kind]
