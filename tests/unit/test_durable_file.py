"""tensafe.k8s.durable_file (action plugin) writes whole files, never replaces one, and leaves no temporary file.
The full-disk cases run against a real OpenBao in tests/vault/test_init_file_space.py."""
import importlib.util
import pathlib

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

COLLECTION = pathlib.Path(__file__).resolve().parents[2] / "collections/ansible_collections/tensafe/k8s/plugins"
spec = importlib.util.spec_from_file_location("durable_file", COLLECTION / "action/durable_file.py")
plugin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plugin)
docs_spec = importlib.util.spec_from_file_location("durable_file_docs", COLLECTION / "modules/durable_file.py")
docs = importlib.util.module_from_spec(docs_spec)
docs_spec.loader.exec_module(docs)


def test_documented_options_are_the_accepted_ones():
    assert set(yaml.safe_load(docs.DOCUMENTATION)["options"]) == set(plugin.ActionModule._VALID_ARGS)


def test_writes_mode_0600_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "init.yml"
    assert plugin.write_one(str(target), b"keys", 0o600, False, None) is True
    assert target.read_bytes() == b"keys" and oct(target.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir()] == ["init.yml"]
    assert plugin.write_one(str(target), b"keys", 0o600, False, None) is False, "same content: unchanged"


def test_never_replaces_a_file_with_other_content(tmp_path):
    target = tmp_path / "init.yml"
    target.write_bytes(b"earlier keys")
    with pytest.raises(plugin.DestinationExists):
        plugin.write_one(str(target), b"new keys", 0o600, False, None)
    assert target.read_bytes() == b"earlier keys"
    assert [p.name for p in tmp_path.iterdir()] == ["init.yml"]


def test_probe_writes_nothing_and_the_read_back_must_decrypt(tmp_path):
    vault = VaultLib([("default", VaultSecret(b"right-password"))])
    encrypted = VaultLib([("x", VaultSecret(b"other-password"))]).encrypt("keys", vault_id="x")
    with pytest.raises(IOError, match="does not decrypt"):
        plugin.write_one(str(tmp_path / "init.yml"), encrypted, 0o600, True, vault)
    good = VaultLib([("x", VaultSecret(b"right-password"))]).encrypt("keys", vault_id="x")
    assert plugin.write_one(str(tmp_path / "init.yml"), good, 0o600, True, vault) is False
    assert list(tmp_path.iterdir()) == []
