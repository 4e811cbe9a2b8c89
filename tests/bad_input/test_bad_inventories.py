"""site.yml against broken inventories: each run fails before any request reaches the Kubernetes API,
with a message that names the offending variable.

The kubeconfig points at a recording HTTP server, so "no cluster call" is measured, not assumed.
Fixtures (fake_api, inventory) are in conftest.py, run() in badinput.py.
"""
import pytest
import yaml

from badinput import SITE, run
from recording_api import Recorder

# (case id, extra group_vars, text the failure must contain)
CASES = [
    ("negative-gpu-count", {"app_gpus_per_pod": -1}, "app_gpus_per_pod"),
    ("wrong-type-replicas", {"app_replicas": "three"}, "app_replicas"),
    ("missing-resource-limits", {"app_resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}, "app_resources"),
    ("unknown-autoscaling-mode", {"app_autoscaling_mode": "both"}, "app_autoscaling_mode"),
    ("hpa-and-keda-both", {"app_tensafe_values_overrides": {"autoscaling": {"enabled": True}, "keda": {"enabled": True}}},
     "app_tensafe_values_overrides"),
    ("malformed-image-repository", {"app_image_repository": "Registry.example.com/TenSafe:4.0.0"}, "app_image_repository"),
    ("malformed-image-tag", {"app_image_tag": "4.0.0 beta"}, "app_image_tag"),
    ("malformed-image-digest", {"app_image_digest": "sha256:1234"}, "app_image_digest"),
    ("min-above-max-replicas", {"app_autoscaling_min_replicas": 10, "app_autoscaling_max_replicas": 5},
     "app_autoscaling_min_replicas"),
    ("unknown-secret-delivery", {"app_secret_delivery": "sealed-secrets"}, "app_secret_delivery"),
    ("unknown-pod-security-level", {"app_pod_security_level": "strict"}, "app_pod_security_level"),
    ("chart-schema-rejects-override", {"app_tensafe_values_overrides": {"gpu": {"count": "lots"}}},
     "app_tensafe_values_overrides"),
    ("missing-kubeconfig", {"tensafe_kubeconfig": ""}, "tensafe_kubeconfig"),
    ("datastores-password-in-values", {"datastores_postgresql_values_overrides": {"auth": {"password": "x"}}},
     "datastores_postgresql_values_overrides"),
    ("datastores-replication-without-replicas", {"datastores_postgresql_architecture": "replication"},
     "datastores_postgresql_read_replicas"),
    ("datastores-malformed-size", {"datastores_redis_persistence_size": "lots"}, "datastores_redis_persistence_size"),
    ("datastores-external-without-host", {"datastores_postgresql_mode": "external"}, "datastores_postgresql_external_host"),
    ("observability-labels-without-release", {"observability_service_monitor_labels": {"team": "x"}},
     "observability_service_monitor_labels"),
    ("observability-chart-version-range", {"observability_prometheus_chart_version": "88.x"},
     "observability_prometheus_chart_version"),
    ("rolling-update-surge-and-unavailable-zero", {"app_rolling_update_max_surge": 0, "app_rolling_update_max_unavailable": 0},
     "app_rolling_update_max_surge"),
]


def test_the_valid_inventory_passes_validation_without_cluster_calls(inventory):
    result = run(SITE, inventory, ["--tags", "validate"])
    assert result.returncode == 0, result.stdout[-3000:]
    assert Recorder.requests == []


def test_the_recording_server_sees_cluster_calls(inventory):
    """Control: past validation, site.yml does call the API, so an empty record above means something."""
    run(SITE, inventory)
    assert Recorder.requests, "site.yml made no API request: the recording server is not wired in"


@pytest.mark.parametrize("case,broken,expected", CASES, ids=[c[0] for c in CASES])
def test_broken_inventory_fails_before_any_cluster_call(inventory, case, broken, expected):
    (inventory / "group_vars/all/zz_broken.yml").write_text(yaml.safe_dump(broken))
    result = run(SITE, inventory)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{case}: site.yml accepted a broken inventory"
    assert expected in output, f"{case}: the failure does not name {expected}:\n{output[-3000:]}"
    assert Recorder.requests == [], f"{case}: the cluster was called before the failure: {Recorder.requests}"
