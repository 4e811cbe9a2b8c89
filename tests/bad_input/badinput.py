"""Shared by the bad-input suites: paths and the ansible-playbook runner (fixtures are in conftest.py)."""
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLES = ROOT / "collections/ansible_collections/tensafe/k8s/roles"
COMPONENTS = ["prerequisites", "datastores", "vault", "observability", "app"]

# site.yml is the real entry point; the variable lets one role's playbook be checked alone.
SITE = os.environ.get("BAD_INPUT_PLAYBOOK", "site.yml")


def run(playbook, inv, args=(), timeout=300):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env["PATH"] = f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{env['PATH']}"
    return subprocess.run(
        ["ansible-playbook", "-i", str(inv / "hosts.yml"), str(ROOT / "playbooks" / playbook), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )
