"""Fixtures of the observability tests (helpers in obslib.py)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import obslib  # noqa: E402


@pytest.fixture(scope="session")
def promtool() -> str:
    path = obslib.promtool_path()
    if not path:
        pytest.fail(f"{obslib.PROMTOOL} is missing: build it with `make tools` (hack/build-tools.sh)")
    return path
