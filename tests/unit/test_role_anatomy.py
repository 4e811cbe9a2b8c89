"""Every role has the same anatomy, and its argument_specs say exactly what its defaults hold."""
import pathlib

import pytest
import yaml

ROLES = pathlib.Path(__file__).resolve().parents[2] / "collections" / "ansible_collections" / "tensafe" / "k8s" / "roles"
# common holds entry points the other roles include (Helm release, namespaces, cluster access); it deploys nothing.
LIBRARY_ROLES = {"common"}
ALL_ROLE_NAMES = sorted(p.name for p in ROLES.iterdir() if p.is_dir())
ROLE_NAMES = [name for name in ALL_ROLE_NAMES if name not in LIBRARY_ROLES]
STEPS = ["preflight", "install", "configure", "verify"]


def load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def test_the_five_roles_exist():
    assert {"prerequisites", "datastores", "vault", "app", "observability"} <= set(ROLE_NAMES)


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_files_of_the_anatomy(role):
    for rel in ["defaults/main.yml", "meta/argument_specs.yml", "meta/main.yml", "tasks/main.yml", "README.md"] + [
        f"tasks/{step}.yml" for step in STEPS
    ]:
        assert (ROLES / role / rel).is_file(), f"{role}: missing {rel}"


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_main_only_dispatches_tagged_steps(role):
    tasks = load(ROLES / role / "tasks" / "main.yml")
    assert [t.get("ansible.builtin.import_tasks") for t in tasks] == [f"{s}.yml" for s in STEPS], role
    for task, step in zip(tasks, STEPS):
        assert f"{role}_{step}" in task.get("tags", []), f"{role}: the {step} import is not tagged {role}_{step}"
        assert set(task) <= {"name", "ansible.builtin.import_tasks", "tags"}, f"{role}: main.yml must only dispatch"


@pytest.mark.parametrize("role", ALL_ROLE_NAMES)
def test_defaults_are_prefixed_with_the_role_name(role):
    defaults = load(ROLES / role / "defaults" / "main.yml") or {}
    wrong = [k for k in defaults if not k.startswith(f"{role}_")]
    assert not wrong, f"{role}: variables without the {role}_ prefix: {wrong}"


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_argument_specs_match_defaults(role):
    defaults = load(ROLES / role / "defaults" / "main.yml") or {}
    specs = load(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]
    main = specs["main"]["options"]
    assert set(defaults) - set(main) == set(), f"{role}: defaults missing from argument_specs: {set(defaults) - set(main)}"
    for name, spec in main.items():
        assert spec.get("description"), f"{role}: {name} has no description"
        assert spec.get("type"), f"{role}: {name} has no type"
        if name in defaults:
            assert "default" in spec, f"{role}: {name} has a default in defaults/main.yml but none in argument_specs"
            assert spec["default"] == defaults[name], f"{role}: default of {name} differs between defaults and argument_specs"
        else:
            assert spec.get("required"), f"{role}: {name} is neither defaulted nor required"
    # Entry points other than main document a subset with the same defaults.
    for entry, spec in specs.items():
        assert spec.get("short_description"), f"{role}: entry point {entry} has no short_description"
        for name, option in (spec.get("options") or {}).items():
            if name in defaults:
                assert option.get("default") == defaults[name], f"{role}/{entry}: default of {name} differs"


@pytest.mark.parametrize("role", sorted(LIBRARY_ROLES))
def test_library_role_documents_every_default(role):
    defaults = load(ROLES / role / "defaults" / "main.yml") or {}
    specs = load(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]
    documented = {name: option for spec in specs.values() for name, option in (spec.get("options") or {}).items()}
    assert set(defaults) - set(documented) == set(), f"{role}: defaults no entry point documents: {set(defaults) - set(documented)}"
    for name, option in documented.items():
        assert option.get("description") and option.get("type"), f"{role}: {name} needs a description and a type"
        if name in defaults:
            assert option.get("default") == defaults[name], f"{role}: default of {name} differs"


@pytest.mark.parametrize("role", ALL_ROLE_NAMES)
def test_entry_points_have_task_files(role):
    specs = load(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]
    for entry in specs:
        assert (ROLES / role / "tasks" / f"{entry}.yml").is_file(), f"{role}: entry point {entry} has no tasks/{entry}.yml"


def test_the_checker_catches_drift(tmp_path):
    """The comparison above is not vacuous: a changed default is reported."""
    defaults = load(ROLES / "app" / "defaults" / "main.yml")
    main = load(ROLES / "app" / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    defaults["app_replicas"] = defaults["app_replicas"] + 1
    assert main["app_replicas"]["default"] != defaults["app_replicas"]
