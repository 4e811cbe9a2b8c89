"""Values that flow between roles are defined once, in the consuming role's defaults, reading the producing role's
public variable with the producer's default as fallback:

    app_keda_prometheus_url: "{{ observability_prometheus_url | default('http://kube-prometheus-stack-prometheus...') }}"

The fallback is what a role uses when it runs without the producer (alone, from Galaxy, or with the producer's
component disabled), so it must equal the producer role's default, or a role would plan for a different stack than the
one the producer deploys. The producer of `<role>_x` is the role with the longest matching name (vault_server_x:
vault_server, vault_x: vault). A producer variable that is no default of the producer is either a fact the producer
sets (named in its tasks) or an old name kept for one release, which the consumer's validate announces (DEPRECATED:).
"""
import os
import pathlib
import re

import jinja2
import jinja2.meta
import jinja2.nativetypes
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
# TENSAFE_ROLES_DIR: check another roles tree (for example a merge of branches) with the same rules.
ROLES_DIR = pathlib.Path(os.environ.get("TENSAFE_ROLES_DIR", ROOT / "collections/ansible_collections/tensafe/k8s/roles"))
# "<variable> | default(<arguments>)", arguments with at most one level of nested parentheses.
FALLBACK = re.compile(r"\b([a-z][a-z0-9_]*) \| default\(((?:[^()]|\([^()]*\))*)\)")
NOT_A_LITERAL = object()


class _Loader(yaml.SafeLoader):
    """Ansible's !unsafe and !vault values are never templated: plain strings here."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
_Loader.add_constructor("!vault", lambda loader, node: loader.construct_scalar(node))


def load_defaults(roles_dir):
    return {role.name: yaml.load((role / "defaults/main.yml").read_text(), Loader=_Loader) or {}
            for role in sorted(roles_dir.iterdir()) if (role / "defaults/main.yml").is_file()}


def producer_of(variable, roles):
    """The role whose name prefixes the variable (the longest one), or None (tensafe_*, molecule_*, ...)."""
    owners = [role for role in roles if variable.startswith(role + "_")]
    return max(owners, key=len) if owners else None


def literal(arguments):
    """The first argument of default(...) as a Python value, or NOT_A_LITERAL (omit, a variable, a filter)."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    try:
        value = environment.compile_expression(f"[{arguments}]", undefined_to_none=False)()[0]
    except (jinja2.TemplateError, TypeError):
        return NOT_A_LITERAL
    return NOT_A_LITERAL if isinstance(value, jinja2.Undefined) else value


def _to_bool(value):
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on", "y")


NATIVE = jinja2.nativetypes.NativeEnvironment(undefined=jinja2.StrictUndefined)
NATIVE.filters.update({"bool": _to_bool, "tensafe.k8s.to_bool": _to_bool, "tensafe.k8s.to_int": int})


def rendered(value, defaults, seen=()):
    """A default with its templates rendered from the roles' defaults (as a role run alone sees them)."""
    if isinstance(value, dict):
        return {key: rendered(item, defaults, seen) for key, item in value.items()}
    if isinstance(value, list):
        return [rendered(item, defaults, seen) for item in value]
    if not (isinstance(value, str) and "{{" in value):
        return value
    names = jinja2.meta.find_undeclared_variables(NATIVE.parse(value))
    context = {}
    for name in names - set(seen):
        owner = next((variables for variables in defaults.values() if name in variables), None)
        if owner is not None:
            context[name] = rendered(owner[name], defaults, (*seen, name))
    return NATIVE.from_string(value).render(context)


def strings(value):
    """Every string inside a default value (dicts and lists included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def fallbacks(roles_dir):
    """(consumer role, consumer variable, producer role, producer variable, fallback literal) of every cross-role read."""
    defaults = load_defaults(roles_dir)
    for consumer, variables in defaults.items():
        for name, value in variables.items():
            for text in strings(value):
                for variable, arguments in FALLBACK.findall(text):
                    producer = producer_of(variable, defaults)
                    if producer is None or producer == consumer:
                        continue
                    yield consumer, name, producer, variable, literal(arguments)


def mismatches(roles_dir):
    defaults = load_defaults(roles_dir)
    wrong = []
    for consumer, name, producer, variable, fallback in fallbacks(roles_dir):
        where = f"roles/{consumer}/defaults/main.yml: {name} reads {variable}"
        if fallback is NOT_A_LITERAL:
            wrong.append(f"{where} with a fallback that is no literal: write the {producer} role's default there")
        elif variable in defaults[producer]:
            expected = defaults[producer][variable]
            try:
                expected = rendered(expected, defaults)
            except (jinja2.TemplateError, TypeError, ValueError) as error:
                wrong.append(f"{where}: the {producer} role's default {expected!r} cannot be rendered here ({error})")
                continue
            if expected != fallback:
                wrong.append(f"{where} | default({fallback!r}) but the {producer} role's default is {expected!r}")
        elif not announced(roles_dir, consumer, producer, variable):
            wrong.append(f"{where}, which the {producer} role neither defaults nor sets (a typo? an old name must be "
                         f"announced with a DEPRECATED: warning in roles/{consumer}/tasks/validate.yml)")
    return wrong


def _texts(*paths):
    return "\n".join(path.read_text() for path in paths if path.is_file())


def announced(roles_dir, consumer, producer, variable):
    """A fact the producer's tasks set, or an old name the consumer's validate warns about (DEPRECATED:, the name
    in the consumer's tasks or vars) or a changelog fragment lists under deprecated_features."""
    if re.search(rf"^\s+{re.escape(variable)}:", _texts(*sorted((roles_dir / producer / "tasks").glob("*.yml"))), re.MULTILINE):
        return True
    consumer_dir = roles_dir / consumer
    if "DEPRECATED:" in _texts(consumer_dir / "tasks/validate.yml") and variable in _texts(
            *sorted((consumer_dir / "tasks").glob("*.yml")), consumer_dir / "vars/main.yml"):
        return True
    for fragment in sorted((roles_dir.parent / "changelogs/fragments").glob("*.y*ml")):
        deprecated = (yaml.safe_load(fragment.read_text()) or {}).get("deprecated_features") or []
        if any(variable in str(entry) for entry in deprecated):
            return True
    return False


def test_there_are_cross_role_fallbacks_to_check():
    assert any(True for _ in fallbacks(ROLES_DIR)), "no role reads another role's variable: is the pattern still right?"


def test_every_cross_role_fallback_equals_the_producer_default():
    wrong = mismatches(ROLES_DIR)
    assert not wrong, "\n".join(wrong)


def _role(root, name, defaults, tasks=None):
    (root / name / "defaults").mkdir(parents=True)
    (root / name / "tasks").mkdir()
    (root / name / "defaults/main.yml").write_text(yaml.safe_dump(defaults))
    for file, text in (tasks or {}).items():
        (root / name / "tasks" / file).write_text(text)


@pytest.mark.parametrize("fallback,expected_wrong", [
    ("'http://prometheus:9090'", 0),
    ("'http://elsewhere:9090'", 1),
    ("{'release': 'x'}", 1),
    ("omit", 1),
])
def test_a_fallback_that_differs_from_the_producer_default_fails(tmp_path, fallback, expected_wrong):
    """The check itself, on made-up roles: it passes on the equal fallback and names every other one."""
    _role(tmp_path, "observability", {"observability_prometheus_url": "http://prometheus:9090"})
    _role(tmp_path, "app", {"app_url": f"{{{{ observability_prometheus_url | default({fallback}) }}}}"})
    wrong = mismatches(tmp_path)
    assert len(wrong) == expected_wrong, wrong
    if wrong:
        assert "app_url reads observability_prometheus_url" in wrong[0]


def test_the_longest_role_name_is_the_producer(tmp_path):
    _role(tmp_path, "vault", {"vault_addr": ""})
    _role(tmp_path, "vault_server", {"vault_server_release_name": "vault"})
    _role(tmp_path, "vault_injector", {"vault_injector_release_name": "{{ vault_server_release_name | default('bao') }}",
                                       "vault_injector_addr": "{{ vault_addr | default('') }}"})
    assert mismatches(tmp_path) == [
        "roles/vault_injector/defaults/main.yml: vault_injector_release_name reads vault_server_release_name"
        " | default('bao') but the vault_server role's default is 'vault'"]


def test_a_producer_default_template_is_rendered_from_the_defaults(tmp_path):
    _role(tmp_path, "observability", {"observability_release": "kps", "observability_labels": {"release": "{{ observability_release }}"},
                                      "observability_port": "{{ 6831 | tensafe.k8s.to_int }}"})
    _role(tmp_path, "app", {"app_labels": "{{ observability_labels | default({'release': 'kps'}) }}",
                            "app_port": "{{ observability_port | default(6831) }}"})
    assert mismatches(tmp_path) == []
    (tmp_path / "app/defaults/main.yml").write_text(yaml.safe_dump({"app_port": "{{ observability_port | default('6831') }}"}))
    assert len(mismatches(tmp_path)) == 1


def test_an_unknown_producer_variable_must_be_a_fact_or_announced(tmp_path):
    _role(tmp_path, "datastores", {"datastores_namespace": "data"},
          {"configure.yml": "- ansible.builtin.set_fact:\n    datastores_published_secret: {}\n"})
    _role(tmp_path, "prerequisites", {"prerequisites_keda_enabled": True})
    _role(tmp_path, "app", {"app_secret": "{{ datastores_published_secret | default({}) }}",
                            "app_gpu_check": "{{ prerequisites_gpu_check_enabled | default(true) }}"})
    assert [w.split(",")[0] for w in mismatches(tmp_path)] == [
        "roles/app/defaults/main.yml: app_gpu_check reads prerequisites_gpu_check_enabled"]
    (tmp_path / "app/tasks/validate.yml").write_text(
        "- ansible.builtin.debug:\n    msg: 'DEPRECATED: prerequisites_gpu_check_enabled, use app_gpu_check'\n")
    assert mismatches(tmp_path) == []
