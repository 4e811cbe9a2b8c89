"""docs/roles.md is generated from the argument_specs and must be current."""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_role_docs_are_current():
    result = subprocess.run([sys.executable, str(ROOT / "hack/gen-role-docs.py"), "--check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# The role READMEs ship in the collection and speak to its users: nothing about this repository's test harness.
# tests/<suite> are this repository's test folders (the chart's own templates/tests/ is fine).
TEST_DIRS = "|".join(sorted(p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and not p.name.startswith(("_", "."))))
REPO_ONLY = re.compile(
    rf"\.\./shared|(?<![\w/.-])hack/|(?<![\w-])\.cluster/|molecule|(?<![\w/.-])tests/({TEST_DIRS})\b|hermetic|pytest|kwok", re.IGNORECASE
)


def repo_only_mentions(text):
    return [(n, m.group(0), line.strip()) for n, line in enumerate(text.splitlines(), 1) for m in REPO_ONLY.finditer(line)]


def test_role_readmes_mention_no_repository_paths():
    readmes = sorted((ROOT / "collections/ansible_collections/tensafe/k8s/roles").glob("**/README.md"))
    assert len(readmes) >= 5, readmes
    found = [f"{p.relative_to(ROOT)}:{n}: {word!r} in {line}" for p in readmes for n, word, line in repo_only_mentions(p.read_text())]
    assert not found, "role READMEs describe this repository's harness; move it to docs/testing.md:\n" + "\n".join(found)


def test_the_repository_path_check_catches():
    for text in ("the CRDs of `../shared/crds`", "run hack/cluster-up.sh", "the kubeconfig in .cluster/kubeconfig", "`molecule/vault`",
                 "the hermetic cluster", "`tests/observability` fails", "kwok pods run nothing"):
        assert repo_only_mentions(text), text
    for text in ("templates/tests/test-health.yaml", "the cluster's nodes", "a `helm test` pod", "ansible-doc -t role", "db.cluster-abc.rds.amazonaws.com"):
        assert not repo_only_mentions(text), text
