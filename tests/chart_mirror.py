"""Where the tests find the real upstream charts (issue 9): one place for every suite.

CHART_MIRROR names the directory; else ../shared/charts when it exists (this network's mirror, what CI uses); else
the cache `make charts` fills with `helm pull` from the pinned upstream repositories (needs internet).
"""
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "charts"
CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "tensafe-k8s-charts"
MIRROR = pathlib.Path(os.environ.get("CHART_MIRROR") or (SHARED if SHARED.is_dir() else CACHE))
