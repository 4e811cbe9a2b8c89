"""docs/roles.md is generated from the argument_specs and must be current."""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_role_docs_are_current():
    result = subprocess.run([sys.executable, str(ROOT / "hack/gen-role-docs.py"), "--check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
