"""The tool venvs share one ansible: requirements-galaxy.txt pins what requirements.txt pins."""
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def pins(path):
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[name.strip().lower()] = version.strip()
    return out


def test_galaxy_venv_uses_the_same_ansible():
    main, galaxy = pins(ROOT / "requirements.txt"), pins(ROOT / "requirements-galaxy.txt")
    for name in ("ansible", "ansible-core", "ansible-lint"):
        assert galaxy.get(name) == main[name], f"{name}: requirements-galaxy.txt {galaxy.get(name)} != requirements.txt {main[name]}"
