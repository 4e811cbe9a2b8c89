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

# <role>_<component> of every upstream chart the roles install (the app's own chart ships in the collection).
UPSTREAM_CHARTS = ("prerequisites_keda", "prerequisites_nvidia_device_plugin", "prerequisites_metrics_server",
                   "datastores_postgresql", "datastores_redis", "vault_server", "observability_prometheus",
                   "observability_jaeger")


def archive_vars():
    """Extra vars that make every role install its real upstream chart from the mirror (the air-gapped path)."""
    if not MIRROR.is_dir():
        raise FileNotFoundError(f"no chart mirror at {MIRROR}: set CHART_MIRROR, or run `make charts` (internet)")
    return {f"{prefix}_chart_archive_dir": str(MIRROR) for prefix in UPSTREAM_CHARTS}
