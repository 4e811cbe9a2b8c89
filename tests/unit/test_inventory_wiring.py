"""Inventories wire app_* values into other roles with `app_x | default(...)`; those fallbacks must be the
app role's real defaults, or a role would plan for a different app than the one deployed."""
import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
APP_DEFAULTS = yaml.safe_load((ROOT / "collections/ansible_collections/tensafe/k8s/roles/app/defaults/main.yml").read_text())
WIRING = re.compile(r"\b(app_[a-z_]+) \| default\(((?:[^()]|\([^()]*\))*)\)")


def wired_fallbacks():
    for path in sorted((ROOT / "inventories").rglob("*.yml")):
        for name, literal in WIRING.findall(path.read_text()):
            yield path.relative_to(ROOT), name, literal


def test_there_is_wiring_to_check():
    assert list(wired_fallbacks())


def test_fallbacks_equal_the_app_defaults():
    wrong = []
    for path, name, literal in wired_fallbacks():
        value = yaml.safe_load(literal)  # Jinja literals here are valid YAML flow values
        if name not in APP_DEFAULTS or APP_DEFAULTS[name] != value:
            wrong.append(f"{path}: {name} | default({literal}) but the app role's default is {APP_DEFAULTS.get(name)!r}")
    assert not wrong, "\n".join(wrong)
