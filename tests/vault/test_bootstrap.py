"""The in-cluster bootstrap (init, encrypted hand-over, unseal, short-lived token, root token revoked) against three
real OpenBao servers with integrated storage and retry_join on loopback, addressed through vault_server_addresses.

On kind the same tasks reach the pods through temporary node ports; here they reach local processes. Run in order:
each test starts from the state the previous one left.
"""
import json
import os
import pathlib
import re
import subprocess

import pytest
import yaml

from conftest import api

ROOT = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOKS = pathlib.Path(__file__).resolve().parent / "playbooks"
PASSWORD = "pytest-only-init-password"
SHARES, THRESHOLD = 5, 3


def run(playbook, extra_vars, tmp_path):
    vars_file = tmp_path / f"vars-{os.urandom(4).hex()}.json"
    vars_file.write_text(json.dumps(extra_vars))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env["PATH"] = f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{env['PATH']}"
    return subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={ROOT / '.venv/bin/python'}",
         "-e", f"@{vars_file}", str(PLAYBOOKS / playbook)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)


def role_vars(cluster, init_file, old_names=False, **extra):
    """The vault_server role's inputs; old_names: the pre-split vault_init_* names, which work for one more release."""
    init = "vault_init_" if old_names else "vault_server_init_"
    return {
        "vault_mode": "in-cluster",
        "vault_server_addr": cluster.urls[0],
        "vault_server_addresses": cluster.urls,
        "vault_server_ha_replicas": len(cluster.urls),
        f"{init}key_shares": SHARES if len(cluster.urls) > 1 else 1,
        f"{init}key_threshold": THRESHOLD if len(cluster.urls) > 1 else 1,
        f"{init}output_file": str(init_file),
        f"{init}encryption_password": PASSWORD,
        "vault_server_bootstrap_timeout": 120,
        "tensafe_no_log": True,
        **extra,
    }


def decrypt(init_file, tmp_path):
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD)
    view = subprocess.run([str(ROOT / ".venv/bin/ansible-vault"), "view", "--vault-id", f"tensafe-vault-init@{password_file}",
                           str(init_file)], capture_output=True, text=True, check=True)
    return yaml.safe_load(view.stdout)


def recap(output):
    match = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", output)
    assert match, output[-2000:]
    return {"ok": int(match[1]), "changed": int(match[2]), "failed": int(match[3])}


def assert_no_secret(output, document):
    leaked = [name for name, value in [("root token", document["root_token"])]
              + [(f"unseal key {i}", key) for i, key in enumerate(document["unseal_keys_b64"])] if value in output]
    assert not leaked, f"printed: {leaked}"


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    path = tmp_path_factory.mktemp("bootstrap")
    return {"dir": path, "init_file": path / "vault-init.yml"}


def test_first_run_initialises_hands_over_encrypted_and_unseals_every_server(raft, state):
    assert raft.sealed() == [True, True, True]
    result = run("bootstrap.yml", role_vars(raft, state["init_file"]), state["dir"])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert re.search(rf"initialised Vault \({SHARES} key shares, threshold {THRESHOLD}\)", output)
    assert "unsealed server 0" in output and "unsealed server 2" in output

    raw = state["init_file"].read_text()
    assert raw.startswith("$ANSIBLE_VAULT;1.2;AES256;tensafe-vault-init\n"), "the init file is not ansible-vault encrypted"
    assert oct(state["init_file"].stat().st_mode & 0o777) == "0o600"
    document = decrypt(state["init_file"], state["dir"])
    assert len(document["unseal_keys_b64"]) == SHARES and document["key_threshold"] == THRESHOLD
    assert document["root_token"] not in raw
    assert_no_secret(output, document)

    assert raft.sealed() == [False, False, False]
    status, _ = api(raft.urls[0], "auth/token/lookup-self", token=document["root_token"])
    assert status == 403, "the initial root token was not revoked: " + output[-6000:]
    state["document"] = document


def test_rerun_against_an_unsealed_vault_changes_nothing(raft, state):
    """With the old vault_init_* names: they still work, and the run says which new names replace them."""
    result = run("bootstrap.yml", role_vars(raft, state["init_file"], old_names=True), state["dir"])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert recap(output)["changed"] == 0
    words = " ".join(output.split())  # the callback wraps long messages
    assert "DEPRECATED:" in words
    for name in ("key_shares", "key_threshold", "output_file", "encryption_password"):
        assert f"vault_init_{name} is now vault_server_init_{name}" in words, words[-3000:]
    assert len(re.findall(r"server \d \(http[^)]+\) already unsealed", output)) == 3
    assert "initialised Vault" not in output


# Before the restart test: a restarted local raft cluster can take minutes to elect an active node again.
def test_configuration_token_is_short_lived_and_revoked(raft, state):
    report = state["dir"] / "token-report.json"
    result = run("admin_token.yml", role_vars(raft, state["init_file"], test_report_file=str(report)), state["dir"])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    facts = json.loads(report.read_text())
    assert facts["policies"] == ["root"] and facts["orphan"] is True and facts["short_lived"] is True
    assert 0 < facts["ttl"] <= 15 * 60, facts
    assert facts["status_after_revoke"] == 403
    assert facts["generate_root_in_progress"] is False
    assert_no_secret(output, state["document"])


def test_rerun_after_a_restart_unseals_from_the_encrypted_file(raft, state):
    before = state["init_file"].read_bytes()
    raft.stop()
    raft.start()
    assert raft.sealed() == [True, True, True]
    result = run("bootstrap.yml", role_vars(raft, state["init_file"]), state["dir"])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert raft.sealed() == [False, False, False]
    assert all(f"unsealed server {i}" in output for i in range(3))
    assert "initialised Vault" not in output
    assert state["init_file"].read_bytes() == before, "the init file was rewritten"
    assert_no_secret(output, state["document"])


def test_wrong_password_fails_before_touching_vault(raft, state):
    result = run("bootstrap.yml", role_vars(raft, state["init_file"], vault_server_init_encryption_password="not-the-password"),
                 state["dir"])
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "vault_server_init_encryption_password does not open" in output


def test_an_existing_init_file_is_never_overwritten_by_a_new_vault(single, state, tmp_path):
    init_file = tmp_path / "vault-init.yml"
    init_file.write_bytes(state["init_file"].read_bytes())
    result = run("bootstrap.yml", role_vars(single, init_file), tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "already exists" in output and "Move it away" in output
    assert init_file.read_bytes() == state["init_file"].read_bytes()
    assert single.sealed() == [True]
    assert api(single.urls[0], "sys/seal-status")[1]["initialized"] is False
