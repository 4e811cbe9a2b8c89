"""The unknown_variables filter (issue 13): role-prefixed variables no role declares, with the closest declared name."""
import importlib.util
import pathlib
import re

PLUGIN = pathlib.Path(__file__).resolve().parents[2] / "collections/ansible_collections/tensafe/k8s/plugins/filter/unknown_variables.py"
ROOT = PLUGIN.parents[6]
spec = importlib.util.spec_from_file_location("unknown_variables", PLUGIN)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)


def test_typos_are_found_with_the_closest_declared_name():
    found = module.unknown_variables(["app_gpus_per_pods", "vault_tokn", "tensafe_stirct_variables", "app_replicas"])
    assert [(f["name"], f["closest"]) for f in found] == [
        ("app_gpus_per_pods", "app_gpus_per_pod"), ("tensafe_stirct_variables", "tensafe_strict_variables"),
        ("vault_tokn", "vault_token")]
    assert found[0]["message"].startswith("app_gpus_per_pods: <value not shown> \u2014 ")
    assert "did you mean app_gpus_per_pod?" in found[0]["message"]


def test_declared_names_are_not_reported():
    """Options, defaults, facts the roles set, old names still honoured, the playbooks' globals, other prefixes."""
    names = ["app_replicas", "vault_server_init_key_shares", "vault_init_key_shares", "prerequisites_gpu_check_enabled",
             "datastores_published_secret", "tensafe_kubeconfig", "tensafe_no_log", "tensafe_app_enabled",
             "ansible_connection", "inventory_dir", "group_names", "common_release_name", "tensafe_strict_variables"]
    assert module.unknown_variables(names) == []


def test_a_name_without_a_close_match_says_remove_it():
    found = module.unknown_variables(["observability_zzzzzzzzzzzzzzzzzzzzzzzzzzzzz"])
    assert found[0]["closest"] == "" and "remove it" in found[0]["message"]


def test_extra_known_names_are_accepted():
    assert module.unknown_variables(["app_local_thing"], known=["app_local_thing"]) == []


def test_every_tensafe_global_the_repository_uses_is_declared():
    """A tensafe_* variable read or set in the playbooks, inventories, roles or molecule is declared (GLOBALS), so the
    unknown-variable check never warns about the collection's own globals. Metric names (tensafe_requests_total, ...)
    and the inventory group tensafe_control are not variables."""
    used = set()
    for path in [*(ROOT / "playbooks").rglob("*.yml"), *(ROOT / "inventories").rglob("*.yml"),
                 *(ROOT / "molecule").rglob("*.yml"), *(PLUGIN.parents[2] / "roles").rglob("*.yml")]:
        text = path.read_text()
        for expr in re.findall(r"\{\{(.*?)\}\}|\{%(.*?)%\}", text, re.S):
            used.update(re.findall(r"\b(tensafe_[a-z0-9_]+)\b", " ".join(expr)))
        used.update(re.findall(r"^\s*(tensafe_[a-z0-9_]+):", text, re.M))
        used.update(re.findall(r"\b(?:when|that|loop_var):\s*(tensafe_[a-z0-9_]+)", text))
    declared = module.declared()
    missing = sorted(name for name in used if name not in declared and name != "tensafe_control")
    assert not missing, f"add these globals to GLOBALS in {PLUGIN.name}: {missing}"
