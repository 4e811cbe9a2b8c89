"""Bad values make `helm template` fail with a message that says what to do (schema or template guard)."""

from __future__ import annotations

import pytest

import chartlib

BOTH = "HPA and KEDA cannot both manage the Deployment: set autoscaling.mode to hpa or keda"

CASES = {
    # The guide's values.yaml enables both autoscalers.
    "legacy-both": (["autoscaling.enabled=true", "keda.enabled=true"], BOTH),
    "legacy-both-nested": (["autoscaling.enabled=true", "autoscaling.keda.enabled=true"], BOTH),
    "legacy-both-with-mode": (["autoscaling.mode=keda", "autoscaling.enabled=true", "keda.enabled=true"], BOTH),
    "legacy-hpa": (["autoscaling.enabled=true"], "autoscaling.enabled is a legacy key of the guide: set autoscaling.mode"),
    "legacy-keda": (["keda.enabled=true"], "keda.enabled is a legacy key of the guide: set autoscaling.mode to keda"),
    "legacy-keda-triggers": (["keda.pollingInterval=30"], "keda.pollingInterval is a legacy key of the guide"),
    "invalid-mode": (["autoscaling.mode=both"], "at '/autoscaling/mode': value must be one of 'none', 'hpa', 'keda'"),
    "negative-gpu": (["gpu.count=-1"], "at '/gpu/count': minimum: got -1, want 0"),
    "negative-replicas": (["replicaCount=-1"], "at '/replicaCount': minimum: got -1, want 0"),
    "zero-min-replicas": (["autoscaling.minReplicas=0"], "at '/autoscaling/minReplicas': minimum: got 0, want 1"),
    "bad-digest": (["image.digest=sha256:abc"], "at '/image/digest': 'sha256:abc' does not match pattern"),
    "uppercase-digest": (["image.digest=sha256:" + "A" * 64], "at '/image/digest'"),
    "bad-repository": (["image.repository=Tensafe/App"], "at '/image/repository'"),
    "max-below-min": (
        ["autoscaling.mode=hpa", "autoscaling.minReplicas=5", "autoscaling.maxReplicas=3"],
        "autoscaling.maxReplicas (3) must be greater than or equal to autoscaling.minReplicas (5)",
    ),
    "gpu-in-resources": (["resources.limits.nvidia\\.com/gpu=1"], "GPUs are requested with gpu.count"),
    "secret-in-config": (["config.DATABASE_URL=x"], "config.DATABASE_URL looks like a secret"),
    "guide-subchart-key": (["postgresql.enabled=true"], "additional properties 'postgresql' not allowed"),
    "typo": (["autoscalling.mode=hpa"], "additional properties 'autoscalling' not allowed"),
    "hpa-without-metrics": (
        ["autoscaling.mode=hpa", "autoscaling.hpa.targetCPUUtilizationPercentage=0", "autoscaling.hpa.targetMemoryUtilizationPercentage=0"],
        "neither autoscaling.hpa.targetCPUUtilizationPercentage nor targetMemoryUtilizationPercentage",
    ),
    "keda-without-triggers": (
        ["autoscaling.mode=keda", "autoscaling.keda.latencyP95ThresholdMs=0", "autoscaling.keda.queueDepthThreshold=0", "gpu.count=0"],
        "no trigger is left",
    ),
    "ingress-without-hosts": (["ingress.enabled=true", "ingress.hosts=null"], "ingress.enabled is true but ingress.hosts is empty"),
    "missing-cpu-limit": (["resources.limits.cpu=null"], "missing property 'cpu'"),
    "pdb-min-available-all-pods": (["podDisruptionBudget.minAvailable=2"],
                                   "podDisruptionBudget.minAvailable (2) must be below the replica count (2)"),
    "spread-bad-when": (["topologySpread.zone.whenUnsatisfiable=Never"], "at '/topologySpread/zone/whenUnsatisfiable'"),
    "anti-affinity-weight": (["podAntiAffinity.weight=0"], "at '/podAntiAffinity/weight'"),
    "ephemeral-storage-not-a-quantity": (["ephemeralStorage.limit=lots"], "at '/ephemeralStorage/limit'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_values_fail_with_message(case):
    set_args, message = CASES[case]
    r = chartlib.render_cached((), tuple(set_args))
    assert r.rc != 0, f"{case}: helm template accepted {set_args}"
    assert message in r.stderr, r.stderr


def test_legacy_false_keys_are_accepted():
    """The guide's values-dev.yaml sets autoscaling.enabled: false: harmless, accepted."""
    r = chartlib.render_cached((), ("autoscaling.enabled=false", "keda.enabled=false"))
    assert r.rc == 0, r.stderr
    assert not chartlib.autoscaler_problems(r.docs, "none")
