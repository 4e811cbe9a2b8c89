"""Shared paths for every test suite, and the packaged chart the app role installs."""
import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
COLLECTION = ROOT / "collections" / "ansible_collections" / "tensafe" / "k8s"
ROLES = COLLECTION / "roles"


def pytest_sessionstart(session):
    """Playbooks run the app role from this checkout: package charts/tensafe into its files/ (gitignored) first.

    Without helm (no `make tools` yet) nothing is packaged, and the app role's validation names the fix.
    """
    if os.environ.get("HELM") or (ROOT / "bin/helm").exists() or shutil.which("helm"):
        subprocess.run([sys.executable, str(ROOT / "hack/package-chart.py")], check=True)
