"""The chart_source filter resolves every supported chart location."""
import importlib.util
import pathlib

import pytest
from ansible.errors import AnsibleFilterError

PLUGIN = pathlib.Path(__file__).resolve().parents[2] / "collections/ansible_collections/tensafe/k8s/plugins/filter/chart_source.py"
spec = importlib.util.spec_from_file_location("chart_source", PLUGIN)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
chart_source = module.chart_source


def test_https_repository():
    assert chart_source("keda", "2.20.2", repo="https://kedacore.github.io/charts") == {
        "chart_ref": "keda", "chart_repo_url": "https://kedacore.github.io/charts", "chart_version": "2.20.2"}


def test_oci_registry():
    assert chart_source("redis", "20.1.0", repo="oci://registry-1.docker.io/bitnamicharts/") == {
        "chart_ref": "oci://registry-1.docker.io/bitnamicharts/redis", "chart_repo_url": None, "chart_version": "20.1.0"}


def test_local_directory():
    assert chart_source("tensafe", "4.0.0", repo="/opt/charts")["chart_ref"] == "/opt/charts/tensafe"


def test_archive_dir_wins():
    src = chart_source("keda", "2.20.2", repo="https://kedacore.github.io/charts", archive_dir="/srv/charts")
    assert src == {"chart_ref": "/srv/charts/keda-2.20.2.tgz", "chart_repo_url": None, "chart_version": None}


@pytest.mark.parametrize("name,version,repo", [("keda", "", "https://x"), ("", "1.0.0", "https://x"), ("keda", "1.0.0", "")])
def test_missing_pieces_fail(name, version, repo):
    with pytest.raises(AnsibleFilterError):
        chart_source(name, version, repo=repo)


def test_bundled_chart_is_the_archive_in_the_role_wherever_it_is_evaluated():
    """The app role's own chart: an absolute path into roles/app/files, the same from any role (common installs it)."""
    src = chart_source("tensafe", "4.0.0", bundled_in="app")
    assert src == {"chart_ref": str(PLUGIN.parents[2] / "roles/app/files/tensafe-4.0.0.tgz"), "chart_repo_url": None,
                   "chart_version": None}
    assert pathlib.Path(src["chart_ref"]).is_absolute()
    # A repository or an archive directory set by the user wins over the bundled archive.
    assert chart_source("tensafe", "4.0.0", repo="https://charts.example.com", bundled_in="app")["chart_ref"] == "tensafe"
    assert chart_source("tensafe", "4.0.0", archive_dir="/srv/charts", bundled_in="app")["chart_ref"] == "/srv/charts/tensafe-4.0.0.tgz"
