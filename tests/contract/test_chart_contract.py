"""Contract tests: what every role hands to Helm, rendered with the real upstream charts (issue 9, item 5).

For each inventory (dev, prod, local), tests/contract/releases.yml composes every release the roles would deploy
(no cluster call). Each release's values are then
- rendered with the real chart from the chart mirror (`helm template`, which applies the chart's own
  values.schema.json), and
- checked key by key against the chart: every key a role sets exists in the chart's values.yaml (subcharts under
  their alias included) or is read by the chart's templates. An unknown key is reported with its path: a key the
  chart ignores is a setting that silently does nothing.

The mirror is tests/chart_mirror.py's (CHART_MIRROR, else ../shared/charts, else the `make charts` cache); without
one the render tests are skipped, with the reason. A pinned version missing from a mirror that exists fails: the roles and the mirror disagree.
"""
from __future__ import annotations

import concurrent.futures
import functools
import io
import json
import os
import pathlib
import re
import subprocess
import sys
import tarfile
import tempfile

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from chart_mirror import MIRROR  # noqa: E402  (tests/ is not a package)

PLAYBOOK = ROOT / "tests" / "contract" / "releases.yml"
INVENTORIES = ("dev", "prod", "local")
ENV = dict(os.environ, PATH=f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{os.environ['PATH']}",
           ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
# Inputs the inventories leave to the operator (secrets) or to the cluster (metrics-server "auto"): fixed here so
# every release of every role is composed.
EXTRA_VARS = {"vault_server_init_encryption_password": "contract-test-only", "prerequisites_metrics_server_enabled": True}
# Keys every chart accepts without declaring them: Helm hands `global` to every subchart, and charts read parts of it.
ALWAYS_ACCEPTED = {"global"}


def _releases(inventory: str, workdir: pathlib.Path) -> list[dict]:
    out = workdir / f"{inventory}.json"
    extra = workdir / "extra.json"
    extra.write_text(json.dumps(EXTRA_VARS))
    result = subprocess.run(
        ["ansible-playbook", str(PLAYBOOK), "-i", str(ROOT / "inventories" / inventory),
         "-e", f"contract_releases_file={out}", "-e", f"@{extra}"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"composing the releases of inventories/{inventory} failed:\n{result.stdout[-3000:]}"
    return json.loads(out.read_text())


@functools.lru_cache(maxsize=1)
def all_releases() -> tuple:
    with tempfile.TemporaryDirectory(prefix="tensafe-contract-") as tmp:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(INVENTORIES)) as pool:
            found = dict(zip(INVENTORIES, pool.map(lambda inv: _releases(inv, pathlib.Path(tmp)), INVENTORIES)))
    return tuple((inv, release) for inv, releases in found.items() for release in releases)


def chart_archive(chart: dict) -> pathlib.Path:
    """The archive of a release's chart: a local archive as it is, a repository/OCI chart from the mirror."""
    ref = chart["chart_ref"]
    if ref.endswith(".tgz"):
        return pathlib.Path(ref)
    name = ref.rstrip("/").rsplit("/", 1)[-1]
    return MIRROR / f"{name}-{chart['chart_version']}.tgz"


class Chart:
    """A packaged chart's defaults (subcharts' values under their alias) and the words its templates use."""

    def __init__(self, archive: pathlib.Path):
        with tarfile.open(archive) as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
        root = next(iter(files)).split("/", 1)[0]
        self.defaults = self._values(files, root)
        self.template_words = set()
        for path, data in files.items():
            if "/templates/" in path or path.endswith(".tpl"):
                self.template_words.update(re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)", data.decode("utf-8", "replace")))

    def _values(self, files: dict, prefix: str) -> dict:
        values = yaml.safe_load(files.get(f"{prefix}/values.yaml", b"") or b"") or {}
        chart = yaml.safe_load(files[f"{prefix}/Chart.yaml"])
        aliases = {d["name"]: d.get("alias", d["name"]) for d in chart.get("dependencies") or []}
        subcharts = {p.split("/")[len(prefix.split("/")) + 1] for p in files
                     if p.startswith(f"{prefix}/charts/") and p.endswith("/Chart.yaml")
                     and p.count("/") == prefix.count("/") + 3}
        for sub in subcharts:
            sub_values = self._values(files, f"{prefix}/charts/{sub}")
            key = aliases.get(sub, sub)
            own = values.get(key)
            values[key] = {**sub_values, **own} if isinstance(own, dict) else sub_values
        return values

    def unknown_keys(self, values: dict) -> list[str]:
        """Paths of keys in values that neither the chart's defaults nor its templates know."""
        unknown = []

        def walk(given, defaults, path):
            for key, value in given.items():
                here = f"{path}.{key}" if path else key
                if not path and key in ALWAYS_ACCEPTED:
                    continue
                if key in defaults:
                    known = defaults[key]
                    # An empty map, a list or a scalar default is a free-form setting: its content is the user's.
                    if isinstance(value, dict) and isinstance(known, dict) and known:
                        walk(value, known, here)
                elif key not in self.template_words:
                    unknown.append(here)

        walk(values, self.defaults, "")
        return unknown


@functools.lru_cache(maxsize=None)
def load_chart(archive: pathlib.Path) -> Chart:
    return Chart(archive)


def _cases():
    try:
        releases = all_releases()
    except AssertionError as error:  # reported by the test below, with the playbook's output
        return [pytest.param(None, None, id="compose", marks=pytest.mark.xfail(reason=str(error), strict=True))]
    return [pytest.param(inv, release, id=f"{inv}-{release['role']}-{release['name']}") for inv, release in releases]


def test_every_inventory_composes_its_releases():
    releases = all_releases()
    roles = {release["role"] for _, release in releases}
    assert roles == {"prerequisites", "datastores", "vault_server", "vault", "observability", "app"}, roles
    # Every chart a role pins: KEDA, the device plugin, metrics-server, PostgreSQL, Redis, kube-prometheus-stack,
    # Jaeger, Vault and the TenSafe chart.
    assert len({chart_archive(r["chart"]).name for _, r in releases}) == 9


@pytest.fixture(scope="module")
def mirror():
    if not MIRROR.is_dir():
        pytest.skip(f"no chart mirror at {MIRROR} (set CHART_MIRROR, or run `make charts` with internet access)")
    return MIRROR


@pytest.mark.parametrize("inventory,release", _cases())
def test_the_real_chart_accepts_what_the_role_sets(mirror, inventory, release):
    archive = chart_archive(release["chart"])
    assert archive.is_file(), (f"{release['role']} pins {archive.name}, which the chart mirror {mirror} does not hold: "
                               "the role's *_chart_version and the mirror disagree")
    with tempfile.NamedTemporaryFile("w", suffix=".json") as values_file:
        json.dump(release["values"], values_file)
        values_file.flush()
        result = subprocess.run(
            ["helm", "template", release["name"], str(archive), "--namespace", release["namespace"],
             "--values", values_file.name], env=ENV, capture_output=True, text=True, check=False)
    assert result.returncode == 0, (
        f"inventories/{inventory}: the real {archive.name} rejects the values of role {release['role']}:\n{result.stderr}")
    unknown = load_chart(archive).unknown_keys(release["values"])
    assert not unknown, (f"inventories/{inventory}: role {release['role']} sets keys that {archive.name} neither declares "
                         f"in values.yaml nor reads in its templates: {unknown}")


def test_an_unknown_key_is_reported_with_its_path(mirror):
    """Control: the key check does fail, on a real chart, for a nested misspelling and for a new top-level key."""
    chart = load_chart(mirror / "postgresql-17.1.0.tgz")
    values = {"primary": {"persistence": {"size": "8Gi", "sizee": "8Gi"}}, "auth": {"database": "x"},
              "notAPostgresqlSetting": {"x": 1}, "global": {"anything": True}}
    assert chart.unknown_keys(values) == ["primary.persistence.sizee", "notAPostgresqlSetting"]


def test_a_value_the_chart_schema_refuses_fails_the_render(mirror):
    """Control: helm template applies the real chart's values.schema.json (Vault's), so a refused value is seen."""
    result = subprocess.run(
        ["helm", "template", "vault", str(mirror / "vault-0.34.1.tgz"), "--set-string", "server.ha.replicas=many"],
        env=ENV, capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "replicas" in result.stderr, result.stderr[-2000:]
