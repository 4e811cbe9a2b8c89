"""execution-environment.yml: `ansible-builder create` makes a build context that carries what the EE needs.

The collection tarball, the Python libraries its modules import (at requirements.txt's pins), helm, and a
Containerfile that installs them. Images cannot be built here (no registry); the context is what is checked.
"""
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from test_requirements import pins  # tests/unit is on sys.path (no __init__.py): one parser of the pins

ROOT = pathlib.Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "collections/ansible_collections/tensafe/k8s"
BUILDER = ROOT / ".venv-galaxy/bin/ansible-builder"
EE_FILE = ROOT / "execution-environment.yml"
LIBRARIES = ("kubernetes", "hvac", "psycopg[binary]", "redis")


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """The context `ansible-builder create` writes for a copy of execution-environment.yml and its build files."""
    if not BUILDER.exists():
        pytest.fail(f"{BUILDER} is missing: run `make setup` (requirements-galaxy.txt)")
    work = tmp_path_factory.mktemp("ee")
    shutil.copy(EE_FILE, work / EE_FILE.name)
    subprocess.run([sys.executable, str(ROOT / "hack/package-chart.py")], check=True)
    subprocess.run([str(ROOT / ".venv/bin/ansible-galaxy"), "collection", "build", str(COLLECTION),
                    "--output-path", str(work / "build")], check=True, capture_output=True)
    (work / "bin").mkdir()
    (work / "bin/helm").write_text("#!/bin/sh\n# stand-in for bin/helm\n")
    subprocess.run([str(BUILDER), "create", "--file", str(work / EE_FILE.name), "--context", str(work / "context"),
                    "--output-filename", "Containerfile"],
                   check=True, capture_output=True, cwd=work)
    return work / "context"


def test_tarball_name_follows_galaxy_version():
    version = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())["version"]
    ee = yaml.safe_load(EE_FILE.read_text())
    assert ee["version"] == 3
    assert ee["dependencies"]["galaxy"]["collections"] == [
        {"name": f"collections/tensafe-k8s-{version}.tar.gz", "type": "file"}]
    assert {"src": f"build/tensafe-k8s-{version}.tar.gz", "dest": "collections"} in ee["additional_build_files"]


def test_python_requirements_at_the_project_pins(context):
    wanted = pins(ROOT / "requirements.txt")
    got = pins(context / "_build/requirements.txt")
    for lib in LIBRARIES:
        assert lib in got, f"the EE's requirements.txt lacks {lib}"
        assert got[lib] == wanted[lib], f"{lib}: EE pins {got[lib]}, requirements.txt {wanted[lib]}"
    assert pins(context / "_build/requirements.txt").keys() >= set(LIBRARIES)


def test_ansible_core_at_the_project_pin(context):
    assert "ansible-core==" + pins(ROOT / "requirements.txt")["ansible-core"] in (context / "Containerfile").read_text()


def test_galaxy_requirements_install_the_collection_tarball(context):
    version = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())["version"]
    reqs = yaml.safe_load((context / "_build/requirements.yml").read_text())
    assert reqs["collections"] == [{"name": f"collections/tensafe-k8s-{version}.tar.gz", "type": "file"}]
    tarball = context / "_build/collections" / f"tensafe-k8s-{version}.tar.gz"
    assert tarball.is_file() and tarball.stat().st_size > 10_000


def test_containerfile_installs_collections_python_and_helm(context):
    containerfile = (context / "Containerfile").read_text()
    assert re.search(r"ansible-galaxy collection install .*-r requirements\.yml", containerfile)
    assert "COPY _build/tools/helm /usr/local/bin/helm" in containerfile
    assert (context / "_build/tools/helm").is_file()
    # The final stage installs the wheels built from _build/requirements.txt (ansible-builder's assemble).
    assert "requirements.txt" in containerfile and "assemble" in containerfile
