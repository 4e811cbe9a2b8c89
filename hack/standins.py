"""The stand-in charts of tests/fixtures/charts staged for a site.yml run: one copy shared by tests/leaks and
tests/budget (KEDA's stand-in carries the upstream CRDs in files/crds, as the real chart does)."""
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests/fixtures/charts"
KEDA_CRDS = ROOT / "../shared/crds/keda-v2.20.2"
# <role>_<component> of every chart of inventories/local that has a stand-in -> the stand-in's directory name.
STANDIN_VARS = {
    "prerequisites_keda": "keda", "prerequisites_nvidia_device_plugin": "nvidia-device-plugin",
    "prerequisites_metrics_server": "metrics-server", "datastores_postgresql": "postgresql",
    "datastores_redis": "redis", "vault_server": "vault", "observability_prometheus": "kube-prometheus-stack",
    "observability_jaeger": "jaeger",
}


def stage(directory):
    """Copy the stand-ins into directory; return the <role>_<component>_chart_repo extra vars that select them."""
    shutil.copytree(FIXTURES, directory)
    (directory / "keda/files/crds").mkdir(parents=True, exist_ok=True)
    for crd in KEDA_CRDS.glob("*.yaml"):
        shutil.copy(crd, directory / "keda/files/crds" / crd.name)
    return {f"{prefix}_chart_repo": str(directory) for prefix, chart in STANDIN_VARS.items()
            if (directory / chart).is_dir()}
