"""site.yml with inventories/local on the hermetic cluster (hack/cluster-up.sh): what check mode and the command
line do across roles, where one role reads what an earlier role of the same run writes.

Needs the running hermetic cluster with its OpenBao (.cluster/kubeconfig, .cluster/openbao); skipped without it.
The module fixture converges datastores, vault and app for real (idempotent when they already are).
"""
import json
import os
import pathlib
import subprocess
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLUSTER = pathlib.Path(os.environ.get("CLUSTER_DIR", ROOT / ".cluster"))
KUBECONFIG = CLUSTER / "kubeconfig"

pytestmark = pytest.mark.skipif(
    not (KUBECONFIG.is_file() and (CLUSTER / "openbao/addr").is_file()),
    reason="needs the hermetic cluster with OpenBao: hack/cluster-up.sh",
)


def playbook(name, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env["PATH"] = f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{env['PATH']}"
    return subprocess.run(
        ["ansible-playbook", "-i", str(ROOT / "inventories/local/hosts.yml"), str(ROOT / "playbooks" / name), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )


def kubectl_json(*args):
    result = subprocess.run([str(ROOT / "bin/kubectl"), "--kubeconfig", str(KUBECONFIG), *args, "-o", "json"],
                            capture_output=True, text=True, check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


@pytest.fixture(scope="module")
def converged():
    result = playbook("site.yml", "--tags", "datastores,vault,app")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def test_check_mode_after_renaming_the_datastores_secret(converged):
    """The datastores role would create the renamed Secret; the vault preflight reads it in the same run.

    A real run passes (datastores writes it first), so --check must too, and say the Secret would be created.
    """
    name = f"tensafe-datastores-{uuid.uuid4().hex[:8]}"
    result = playbook("site.yml", "--tags", "datastores,vault", "--check", "--diff", "-e", f"datastores_app_secret_name={name}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"--check failed where a real run passes:\n{output[-4000:]}"
    assert f"Secret tensafe-data/{name} does not exist yet" in " ".join(output.split()), output[-4000:]
    assert kubectl_json("get", "secret", "-n", "tensafe-data", name) is None, "--check created the Secret"


def test_rollback_revision_given_on_the_command_line(converged):
    """The README's `-e app_rollback_revision=N` is a string: it is compared as a number, not refused with a TypeError."""
    result = playbook("rollback.yml", "-e", "app_rollback_revision=17")
    output = result.stdout + result.stderr
    assert "not supported between instances" not in output, output[-4000:]
    assert result.returncode != 0, "rolled back to a revision above the current one"
    flat = " ".join(output.split())
    assert "app_rollback_revision is 17 (0 = previous; it must be below the current revision)" in flat, output[-4000:]
