"""playbooks/vault.yml against broken vault inputs: each run fails before any request reaches the Kubernetes API or
Vault, with a message naming the variable. Both are recording HTTP servers, so "no call" is measured."""
import os
import pathlib
import shutil
import subprocess

import pytest
import yaml

import recording_api
from recording_api import Recorder

ROOT = pathlib.Path(__file__).resolve().parents[2]

EXTERNAL = {"vault_mode": "external", "vault_token": "not-a-real-token",
            "vault_kubernetes_host": "https://127.0.0.1:6443",
            "vault_kubernetes_ca_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}
IN_CLUSTER_HA = {"vault_mode": "in-cluster", "vault_server_dev_mode": False, "vault_server_init_output_file": "/tmp/vault-init.yml",
                 "vault_server_init_encryption_password": "long-enough-password"}

# (case id, extra group_vars, text the failure must contain); "{vault}" is replaced by the recording Vault's URL.
CASES = [
    ("threshold-above-shares", {**IN_CLUSTER_HA, "vault_server_init_key_shares": 3, "vault_server_init_key_threshold": 5},
     "vault_server_init_key_threshold"),
    ("threshold-one-of-many-shares", {**IN_CLUSTER_HA, "vault_server_init_key_shares": 5, "vault_server_init_key_threshold": 1},
     "vault_server_init_key_threshold"),
    # The pre-split names still reach the checks (one more release).
    ("old-name-threshold-above-shares", {**IN_CLUSTER_HA, "vault_init_key_shares": 3, "vault_init_key_threshold": 5},
     "vault_server_init_key_threshold"),
    ("external-without-address", {**EXTERNAL, "vault_addr": ""}, "vault_addr"),
    ("external-address-not-a-url", {**EXTERNAL, "vault_addr": "vault.example.com:8200"}, "vault_addr"),
    ("external-without-token", {**EXTERNAL, "vault_addr": "{vault}", "vault_token": ""}, "vault_token"),
    ("external-without-kubernetes-host", {**EXTERNAL, "vault_addr": "{vault}", "vault_kubernetes_host": ""},
     "vault_kubernetes_host"),
    ("external-without-cluster-ca", {**EXTERNAL, "vault_addr": "{vault}", "vault_kubernetes_ca_cert": ""},
     "vault_kubernetes_ca_cert"),
    ("unknown-delivery-mode", {**EXTERNAL, "vault_addr": "{vault}", "vault_delivery_mode": "sealed-secrets"},
     "vault_delivery_mode"),
    ("unknown-vault-mode", {"vault_mode": "hosted"}, "vault_mode"),
    ("in-cluster-without-init-file", {**IN_CLUSTER_HA, "vault_server_init_output_file": ""}, "vault_server_init_output_file"),
    ("in-cluster-without-password", {**IN_CLUSTER_HA, "vault_server_init_encryption_password": ""},
     "vault_server_init_encryption_password"),
    ("shares-not-a-number", {**IN_CLUSTER_HA, "vault_server_init_key_shares": "five"}, "vault_server_init_key_shares"),
    ("even-raft-quorum", {**IN_CLUSTER_HA, "vault_server_ha_replicas": 2}, "vault_server_ha_replicas"),
    ("kv-path-with-leading-slash", {**EXTERNAL, "vault_addr": "{vault}", "vault_kv_path": "/tensafe"}, "vault_kv_path"),
    ("database-url-not-postgres", {**EXTERNAL, "vault_addr": "{vault}", "vault_database_url": "mysql://x@y/z"},
     "vault_database_url"),
    ("chart-version-range", {**IN_CLUSTER_HA, "vault_server_chart_version": "^0.34"}, "vault_server_chart_version"),
    ("init-fallback-in-the-same-directory", {**IN_CLUSTER_HA, "vault_server_init_output_fallback_file": "/tmp/vault-init-2.yml"},
     "vault_server_init_output_fallback_file"),
    ("init-retry-timeout-negative", {**IN_CLUSTER_HA, "vault_server_init_output_retry_timeout": -5},
     "vault_server_init_output_retry_timeout"),
]


@pytest.fixture(scope="session")
def servers():
    started = []
    urls = []
    for _ in range(2):
        server, url = recording_api.start()
        started.append(server)
        urls.append(url)
    yield urls
    for server in started:
        server.shutdown()


@pytest.fixture()
def inventory(tmp_path, servers):
    """inventories/local with a kubeconfig pointing at one recorder; the other plays Vault."""
    inv = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventories" / "local", inv)
    kubeconfig = recording_api.write_kubeconfig(tmp_path / "kubeconfig", servers[0])
    (inv / "group_vars/all/cluster.yml").write_text(yaml.safe_dump(
        {"tensafe_kubeconfig": str(kubeconfig), "tensafe_kube_context": "", "tensafe_no_log": True}))
    Recorder.requests.clear()
    return inv


def run(inv):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env["PATH"] = f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{env['PATH']}"
    return subprocess.run(["ansible-playbook", "-i", str(inv / "hosts.yml"), str(ROOT / "playbooks/vault.yml")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_recorders_see_the_calls_of_a_valid_inventory(inventory, servers):
    """Control: past validation the role does call the API, so an empty record below means something."""
    (inventory / "group_vars/all/zz_case.yml").write_text(yaml.safe_dump({**EXTERNAL, "vault_addr": servers[1]}))
    run(inventory)
    assert any(r.startswith(servers[0].rsplit(":", 1)[1]) for r in Recorder.requests), Recorder.requests


@pytest.mark.parametrize("case,broken,expected", CASES, ids=[c[0] for c in CASES])
def test_broken_input_fails_before_any_call(inventory, servers, case, broken, expected):
    broken = {k: (v.replace("{vault}", servers[1]) if isinstance(v, str) else v) for k, v in broken.items()}
    (inventory / "group_vars/all/zz_case.yml").write_text(yaml.safe_dump(broken))
    result = run(inventory)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{case}: the playbook accepted it"
    assert expected in output, f"{case}: the failure does not name {expected}:\n{output[-3000:]}"
    assert Recorder.requests == [], f"{case}: called before failing: {Recorder.requests}"
