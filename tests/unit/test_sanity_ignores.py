"""No sanity ignore entries: Galaxy refuses them (sanity[cannot-ignore]), and nothing in the collection needs one.

The chart templates (Go templates, not YAML) once needed yamllint ignores; the chart source now lives in
charts/tensafe outside the collection, which ships it packaged (roles/app/files/<name>-<version>.tgz).
"""
import pathlib

COLLECTION = pathlib.Path(__file__).resolve().parents[2] / "collections/ansible_collections/tensafe/k8s"


def test_no_sanity_ignore_files():
    files = sorted(str(p.relative_to(COLLECTION)) for p in COLLECTION.glob("tests/sanity/ignore-*.txt"))
    assert not files, f"sanity ignore files are not allowed (Galaxy rejects their entries), remove: {files}"


def test_no_go_templates_in_the_collection():
    # A Helm chart directory inside the collection would bring back yamllint errors on its templates.
    charts = sorted(str(p.relative_to(COLLECTION)) for p in COLLECTION.rglob("Chart.yaml"))
    assert not charts, f"chart sources belong in charts/ at the repository root (packaged by hack/package-chart.py): {charts}"
