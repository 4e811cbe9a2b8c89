"""The sanity ignore files only excuse Helm templates (Go templates, not YAML) from yamllint, and stay complete."""
import pathlib

COLLECTION = pathlib.Path(__file__).resolve().parents[2] / "collections/ansible_collections/tensafe/k8s"


def test_ignores_cover_exactly_the_chart_templates():
    templates = sorted(
        str(p.relative_to(COLLECTION)) for p in COLLECTION.glob("roles/*/files/charts/*/templates/**/*.yaml")
    )
    expected = [f"{t} yamllint:{code}" for t in templates for code in ("error", "unparsable-with-libyaml")]
    files = sorted((COLLECTION / "tests/sanity").glob("ignore-*.txt"))
    assert files, "no sanity ignore files"
    for path in files:
        lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
        assert sorted(lines) == sorted(expected), f"{path.name} must list exactly the chart templates"
