"""Fixtures of the bad-input suites: an inventories/local copy whose cluster is the recording API."""
import shutil

import pytest
import yaml

import recording_api
from badinput import COMPONENTS, ROLES, ROOT
from recording_api import Recorder


@pytest.fixture(scope="session")
def fake_api():
    server, url = recording_api.start()
    yield url
    server.shutdown()


@pytest.fixture()
def inventory(tmp_path, fake_api):
    """A copy of inventories/local whose cluster is the recording server."""
    inv = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventories" / "local", inv)
    kubeconfig = recording_api.write_kubeconfig(tmp_path / "kubeconfig", fake_api)
    cluster = {"tensafe_kubeconfig": str(kubeconfig), "tensafe_kube_context": "", "tensafe_no_log": True}
    (inv / "group_vars/all/cluster.yml").write_text(yaml.safe_dump(cluster))
    # Roles that do not exist yet cannot be validated; every existing one is enabled.
    enabled = {f"tensafe_{c}_enabled": (ROLES / c).is_dir() for c in COMPONENTS}
    (inv / "group_vars/all/components.yml").write_text(yaml.safe_dump(enabled))
    Recorder.requests.clear()
    return inv
