"""site.yml with inventories/local on the hermetic cluster (hack/cluster-up.sh): what check mode and the command
line do across roles, where one role reads what an earlier role of the same run writes.

Needs the running hermetic cluster with its OpenBao (.cluster/kubeconfig, .cluster/openbao); skipped without it.
The module fixture converges datastores, vault and app for real (idempotent when they already are).
"""
import json
import os
import pathlib
import subprocess
import sys
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
import chart_mirror  # noqa: E402  (tests/ is not a package)
CLUSTER = pathlib.Path(os.environ.get("CLUSTER_DIR", ROOT / ".cluster"))
KUBECONFIG = CLUSTER / "kubeconfig"

pytestmark = pytest.mark.skipif(
    not (KUBECONFIG.is_file() and (CLUSTER / "openbao/addr").is_file()),
    reason="needs the hermetic cluster with OpenBao: hack/cluster-up.sh",
)


# The real upstream charts from the chart mirror (no chart repository is reachable here).
CHARTS = chart_mirror.archive_vars()


def playbook(name, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env["PATH"] = f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{env['PATH']}"
    return subprocess.run(
        ["ansible-playbook", "-i", str(ROOT / "inventories/local/hosts.yml"), str(ROOT / "playbooks" / name),
         "-e", json.dumps(CHARTS), *args],
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


def helm_revision():
    result = subprocess.run([str(ROOT / "bin/helm"), "--kubeconfig", str(KUBECONFIG), "status", "tensafe", "-n", "tensafe",
                             "-o", "json"], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)["version"]


def test_numbers_given_on_the_command_line(converged):
    """The README's commands with -e numbers (always strings): an upgrade with -e app_replicas=2 hands Helm a number,
    -e app_rollback_revision=17 is refused as above the current revision (not with a TypeError), and
    -e app_rollback_revision=<the earlier one> rolls back to it."""
    before = helm_revision()
    result = playbook("site.yml", "--tags", "app", "-e", "app_replicas=2")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert kubectl_json("get", "deployment", "-n", "tensafe", "tensafe")["spec"]["replicas"] == 2
    current = helm_revision()
    assert current > before

    result = playbook("rollback.yml", "-e", f"app_rollback_revision={current + 10}")
    output = result.stdout + result.stderr
    assert "not supported between instances" not in output, output[-4000:]
    assert result.returncode != 0, "rolled back to a revision above the current one"
    assert (f"current revision is {current}, app_rollback_revision is {current + 10} (0 = previous; it must be below"
            in " ".join(output.split())), output[-4000:]

    result = playbook("rollback.yml", "-e", f"app_rollback_revision={before}")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert kubectl_json("get", "deployment", "-n", "tensafe", "tensafe")["spec"]["replicas"] == 1
