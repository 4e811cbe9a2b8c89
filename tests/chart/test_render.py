"""What the inventories' plans render (scenarios.yml): autoscaling, GPUs, images, ingress, secrets, observability."""

from __future__ import annotations

import hashlib
import re
import shutil

import pytest

import chartlib

GUIDE_QUERIES = {
    "latency-p95": ("histogram_quantile(0.95, sum(rate(tensafe_inference_latency_seconds_bucket[5m])) by (le)) * 1000", "100"),
    "queue-depth": ("sum(tensafe_job_queue_depth)", "100"),
    "gpu-utilization": ("avg(nvidia_gpu_utilization)", "30"),
}
MODES = {
    "default": "none",
    "dev": "none",
    "prod": "keda",
    "local": "none",
    "prod-hpa": "hpa",
    "prod-external-secrets": "keda",
    "local-keda": "keda",
    "dev-digest": "none",
    "dev-extras": "none",
}
# The Prometheus the prod inventory wires into KEDA (observability_prometheus_url: kube-prometheus-stack's Service).
PROD_PROMETHEUS = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"


def container(render, name="tensafe"):
    dep = render.one("Deployment")
    return next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def env(render):
    return {e["name"]: e.get("value") for e in container(render).get("env", [])}


# --- the plans --------------------------------------------------------------------------------------

def test_the_tests_render_what_the_role_renders(plans, renders):
    """The renders asserted on here are the manifests the app role's own validate step rendered."""
    for name, plan in plans.items():
        assert renders[name].docs == [d for d in chartlib.yaml.load_all(plan.manifest, Loader=chartlib.LOADER) if d], name


def test_the_inventories_are_planned(plans):
    assert {p.inventory for p in plans.values()} == {"dev", "prod", "local"}
    assert (plans["dev"].namespace, plans["prod"].namespace, plans["local"].namespace) == ("tensafe-dev", "tensafe-prod", "tensafe")


# --- autoscaling ---------------------------------------------------------------------------------

def test_autoscaling_owner_per_variation(variation):
    name, r = variation
    assert not chartlib.autoscaler_problems(r.docs, MODES[name])


def test_prod_keda(renders):
    r = renders["prod"]
    so = r.one("ScaledObject")
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    spec = so["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": r.one("Deployment")["metadata"]["name"]}
    assert (spec["pollingInterval"], spec["cooldownPeriod"]) == (30, 300)
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (3, 50)
    triggers = {t["name"]: t for t in spec["triggers"]}
    assert set(triggers) == set(GUIDE_QUERIES)
    for tname, (query, threshold) in GUIDE_QUERIES.items():
        t = triggers[tname]
        assert t["type"] == "prometheus"
        assert t["metadata"] == {
            "serverAddress": PROD_PROMETHEUS,
            "query": query,
            "threshold": threshold,
        }, "modern metadata only: serverAddress, query, threshold (no metricName)"
    assert "replicas" not in r.one("Deployment")["spec"]
    assert not r.of_kind("HorizontalPodAutoscaler")


def test_hpa_mode(renders):
    r = renders["prod-hpa"]
    hpa = r.one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 50)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]}
    assert targets == {"cpu": 70, "memory": 80}
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 600
    assert not r.of_kind("ScaledObject")
    assert "replicas" not in r.one("Deployment")["spec"]


def test_none_mode_keeps_replicas(renders):
    assert renders["default"].one("Deployment")["spec"]["replicas"] == 2
    assert renders["dev"].one("Deployment")["spec"]["replicas"] == 1
    assert renders["local"].one("Deployment")["spec"]["replicas"] == 1


def test_no_gpu_keda_drops_gpu_trigger_and_scopes_queries(renders):
    so = renders["local-keda"].one("ScaledObject")
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"], so["spec"]["pollingInterval"]) == (1, 4, 15)
    names = [t["name"] for t in so["spec"]["triggers"]]
    assert names == ["latency-p95", "queue-depth"]
    for t in so["spec"]["triggers"]:
        assert 'namespace="tensafe"' in t["metadata"]["query"]


# --- resources and scheduling --------------------------------------------------------------------

@pytest.mark.parametrize("name, gpus", [("default", 1), ("dev", 1), ("prod", 2), ("local", 0), ("local-keda", 0)])
def test_gpu_in_requests_and_limits(renders, name, gpus):
    res = container(renders[name])["resources"]
    for section in ("requests", "limits"):
        if gpus:
            assert res[section]["nvidia.com/gpu"] == gpus
        else:
            assert "nvidia.com/gpu" not in res[section]
        assert {"cpu", "memory"} <= set(res[section])


def test_prod_and_dev_resources(renders):
    # ephemeral-storage from the chart's ephemeralStorage: the role's app_resources does not drop it.
    assert container(renders["prod"])["resources"] == {
        "requests": {"cpu": "4", "memory": "16Gi", "ephemeral-storage": "2Gi", "nvidia.com/gpu": 2},
        "limits": {"cpu": "8", "memory": "32Gi", "ephemeral-storage": "24Gi", "nvidia.com/gpu": 2},
    }
    assert container(renders["dev"])["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "2Gi", "nvidia.com/gpu": 1},
        "limits": {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "24Gi", "nvidia.com/gpu": 1},
    }


def test_gpu_scheduling(renders):
    spec = renders["default"].one("Deployment")["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    prod = renders["prod"].one("Deployment")["spec"]["template"]["spec"]
    assert (prod["nodeSelector"], prod["tolerations"]) == (spec["nodeSelector"], spec["tolerations"])
    # inventories/local plans no GPU: neither the GPU nodeSelector nor the nvidia.com toleration.
    cpu_only = renders["local"].one("Deployment")["spec"]["template"]["spec"]
    assert "nodeSelector" not in cpu_only and "tolerations" not in cpu_only


SELECTOR = {"matchLabels": {"app.kubernetes.io/name": "tensafe", "app.kubernetes.io/instance": "tensafe"}}


def test_topology_spread_gets_selector(renders):
    """An own constraint gets the selector and replaces the chart's of the same topologyKey (zone); node stays."""
    spec = renders["dev-extras"].one("Deployment")["spec"]["template"]["spec"]
    node, zone = spec["topologySpreadConstraints"]
    assert node["topologyKey"] == "kubernetes.io/hostname"
    assert zone == {"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": SELECTOR}
    assert spec["priorityClassName"] == "tensafe-inference"


def test_fleet_scheduling_defaults(renders):
    """prod: pods spread over nodes and zones (a preference: GPU nodes are few), preferred anti-affinity between the
    release's pods, counted within one rollout (pod-template-hash)."""
    spec = renders["prod"].one("Deployment")["spec"]["template"]["spec"]
    assert spec["topologySpreadConstraints"] == [
        {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": SELECTOR,
         "matchLabelKeys": ["pod-template-hash"]}
        for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")]
    assert spec["affinity"] == {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": SELECTOR}}]}}
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in str(spec["affinity"])


def test_own_pod_anti_affinity_replaces_the_chart_one(plans):
    r = chartlib.render_plan(plans["prod"], ("affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                                             "[0].topologyKey=kubernetes.io/hostname",))
    assert r.rc == 0, r.stderr
    affinity = r.one("Deployment")["spec"]["template"]["spec"]["affinity"]
    assert list(affinity["podAntiAffinity"]) == ["requiredDuringSchedulingIgnoredDuringExecution"]


# --- container -------------------------------------------------------------------------------------

def test_ports_env_probes(variation):
    _, r = variation
    c = container(r)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8000, "metrics": 9090}
    e = env(r)
    assert e["TS_PORT"] == "8000" and e["TS_METRICS_PORT"] == "9090"
    for probe, path in (("startupProbe", "/health"), ("readinessProbe", "/readiness"), ("livenessProbe", "/health")):
        assert c[probe]["httpGet"] == {"path": path, "port": "http"}
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 600
    envfrom = c["envFrom"]
    assert envfrom[0]["configMapRef"]["name"] == r.one("ConfigMap")["metadata"]["name"]
    assert envfrom[1]["secretRef"]["name"] == "tensafe-secrets"


def test_service_ports(variation):
    _, r = variation
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in r.one("Service")["spec"]["ports"]}
    http_port = 80 if _ == "dev-extras" else 8000
    assert ports == {"http": (http_port, "http"), "metrics": (9090, "metrics")}


def test_image_refs(renders):
    assert container(renders["default"])["image"] == "tensafe/tensafe:4.0.0"
    assert container(renders["prod"])["image"] == "tensafe/tensafe:4.0.0"
    dig = container(renders["dev-digest"])
    assert dig["image"] == "registry.example.com:5000/tensafe/tensafe@sha256:" + "0123456789abcdef" * 4
    assert dig["imagePullPolicy"] == "Always"
    assert renders["dev-digest"].one("Deployment")["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "registry-credentials"}]
    test_pod = renders["dev-digest"].one("Pod")
    assert "@sha256:" in test_pod["spec"]["containers"][0]["image"]
    assert renders["default"].one("Pod")["spec"]["containers"][0]["image"] == "curlimages/curl:8.11.1"


def test_jaeger_env(renders):
    # The prod inventory's Jaeger (chart 4.x, Jaeger v2): one Service named after the release.
    e = env(renders["prod"])
    assert e["JAEGER_AGENT_HOST"] == "jaeger.monitoring" and e["JAEGER_AGENT_PORT"] == "6831"
    assert e["OTEL_EXPORTER_JAEGER_AGENT_HOST"] == "jaeger.monitoring"
    assert "JAEGER_AGENT_HOST" not in env(renders["default"])


def test_extras(renders):
    r = renders["dev-extras"]
    dep = r.one("Deployment")
    assert dep["metadata"]["name"] == "tensafe-custom"
    pod = dep["spec"]["template"]
    assert pod["metadata"]["labels"]["team"] == "ml-platform"
    assert pod["metadata"]["annotations"]["example.com/owner"] == "ml-platform"
    assert pod["spec"]["serviceAccountName"] == "tensafe-external"
    assert not r.of_kind("ServiceAccount")
    assert r.one("RoleBinding")["subjects"][0]["name"] == "tensafe-external"
    assert r.one("PodDisruptionBudget")["spec"] == {
        "minAvailable": "50%",
        "selector": {"matchLabels": {"app.kubernetes.io/name": "tensafe", "app.kubernetes.io/instance": "tensafe"}},
    }
    sm = r.one("ServiceMonitor")
    assert sm["metadata"]["namespace"] == "monitoring"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["tensafe-dev"]}
    c = container(r)
    assert {"name": "models", "mountPath": "/models"} in c["volumeMounts"]
    assert c["readinessProbe"]["successThreshold"] == 2 and c["startupProbe"]["initialDelaySeconds"] == 5


# --- ingress, observability, RBAC --------------------------------------------------------------------

def test_ingress(renders):
    assert not renders["default"].of_kind("Ingress")
    ing = renders["prod"].one("Ingress")
    assert ing["apiVersion"] == "networking.k8s.io/v1"
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["spec"]["tls"] == [{"secretName": "tensafe-tls", "hosts": ["api.eu-west-1.tensafe.example.com"]}]
    assert ing["metadata"]["annotations"] == {
        "cert-manager.io/cluster-issuer": "letsencrypt-prod",
        "nginx.ingress.kubernetes.io/proxy-body-size": "100m",
        "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
        "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
    }
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "api.eu-west-1.tensafe.example.com"  # the first region's host_vars
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "tensafe", "port": {"name": "http"}}


def test_ingress_backend_switch_for_blue_green(plans):
    """A blue-green switch points the live release's Ingress at the green release's Service."""
    r = chartlib.render_plan(plans["prod"], ("ingress.backendServiceName=tensafe-green",))
    assert r.rc == 0, r.stderr
    backend = r.one("Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "tensafe-green", "port": {"name": "http"}}


def test_service_monitor(renders):
    assert not renders["default"].of_kind("ServiceMonitor")
    sm = renders["prod"].one("ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}]


def test_rbac_is_minimal(renders):
    r = renders["default"]
    role = r.one("Role")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["tensafe"], "verbs": ["get"]}]
    rb = r.one("RoleBinding")
    assert rb["roleRef"]["name"] == role["metadata"]["name"]
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "tensafe", "namespace": "tensafe"}]
    assert not r.of_kind("ClusterRole") and not r.of_kind("ClusterRoleBinding")


def test_pdb_default(renders):
    pdb = renders["default"].one("PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1" and pdb["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("set_args,expected", [
    (("replicaCount=1",), False),
    (("replicaCount=2",), True),
    (("autoscaling.mode=keda", "autoscaling.minReplicas=1", "replicaCount=5"), False),
    (("autoscaling.mode=hpa", "autoscaling.minReplicas=2", "replicaCount=1"), True),
], ids=["one-replica", "two-replicas", "autoscaler-floor-one", "autoscaler-floor-two"])
def test_pdb_follows_the_replica_count(set_args, expected):
    """A PodDisruptionBudget only where two or more pods run: with one, it would block node drains or protect nothing.
    Under an autoscaler the floor is autoscaling.minReplicas, not replicaCount."""
    r = chartlib.render_cached((), set_args)
    assert r.rc == 0, r.stderr
    assert bool(r.of_kind("PodDisruptionBudget")) is expected


# --- secrets -----------------------------------------------------------------------------------------

def test_no_secret_values_anywhere(variation):
    name, r = variation
    problems = chartlib.secret_problems(r.stdout, r.docs)
    assert not problems, f"{name}: {problems}"


def test_external_secret(renders):
    assert not renders["default"].of_kind("ExternalSecret")
    es = renders["prod-external-secrets"].one("ExternalSecret")
    assert es["apiVersion"] == "external-secrets.io/v1"
    spec = es["spec"]
    assert spec["target"]["name"] == "tensafe-secrets"
    assert spec["secretStoreRef"] == {"name": "vault-backend", "kind": "ClusterSecretStore"}
    assert spec["refreshInterval"] == "1h"
    assert [(d["secretKey"], d["remoteRef"]["key"], d["remoteRef"]["property"]) for d in spec["data"]] == [
        (k, "tensafe", k) for k in ("TS_SECRET_KEY", "TS_KEY_MASTER", "DATABASE_URL", "REDIS_URL")
    ]


def test_vault_agent_annotations(renders):
    """inventories/prod delivers the secrets with the Vault agent injector (vault_delivery_mode: vault-agent)."""
    ann = renders["prod"].one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert ann["vault.hashicorp.com/agent-inject"] == "true"
    assert ann["vault.hashicorp.com/role"] == "tensafe"
    assert ann["vault.hashicorp.com/agent-inject-secret-config"] == "secret/data/tensafe"
    assert ann["vault.hashicorp.com/agent-pre-populate-only"] == "true"
    assert 'export TS_SECRET_KEY="{{ .Data.data.TS_SECRET_KEY }}"' in ann["vault.hashicorp.com/agent-inject-template-config"]
    # With the agent the Secret is optional: the secrets arrive as /vault/secrets/config.
    assert container(renders["prod"])["envFrom"][1]["secretRef"]["optional"] is True
    for name in ("dev", "local", "prod-external-secrets"):
        other = renders[name].one("Deployment")["spec"]["template"]["metadata"]["annotations"]
        assert not [k for k in other if k.startswith("vault.hashicorp.com/")], name
    default_ann = renders["default"].one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert not [k for k in default_ann if k.startswith("vault.hashicorp.com/")]


# --- config checksum ---------------------------------------------------------------------------------

def _checksum(r):
    return r.one("Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


def test_checksum_config_tracks_the_configmap(renders):
    base = renders["default"]
    # The annotation is the sha256 of the rendered configmap.yaml (helm prints it after a Source comment).
    chunk = next(p for p in base.stdout.split("---\n") if "kind: ConfigMap" in p)
    body = "\n" + chunk.split("\n", 1)[1]
    assert _checksum(base) == hashlib.sha256(body.encode()).hexdigest()
    changed = chartlib.render_cached((), ("config.TS_LOG_LEVEL=debug",))
    assert changed.rc == 0
    assert _checksum(changed) != _checksum(base), "a config change must roll the pods"
    unrelated = chartlib.render_cached((), ("replicaCount=3",))
    assert _checksum(unrelated) == _checksum(base), "an unrelated change must not roll the pods"


# --- NOTES -------------------------------------------------------------------------------------------

def test_notes(tmp_path, plans):
    """helm template drops NOTES.txt: render it through a copy of the chart with a template that includes it."""
    chart = tmp_path / "tensafe"
    shutil.copytree(chartlib.CHART, chart)
    (chart / "templates/zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n"
        '  notes: {{ include (print $.Template.BasePath "/NOTES.txt") . | quote }}\n'
    )
    plan = plans["prod"]
    r = chartlib.render(chart=chart, values_files=[str(plan.values_file)], release=plan.release, namespace=plan.namespace)
    assert r.rc == 0, r.stderr
    notes = next(d for d in r.of_kind("ConfigMap") if d["metadata"]["name"] == "notes")["data"]["notes"]
    assert "helm test tensafe -n tensafe-prod" in notes
    assert "kubectl get pods -n tensafe-prod -l app.kubernetes.io/name=tensafe,app.kubernetes.io/instance=tensafe" in notes
    assert "https://api.eu-west-1.tensafe.example.com/" in notes
    assert "kubectl port-forward -n tensafe-prod svc/tensafe" in notes
    assert "Autoscaling: keda (3-50 replicas)" in notes


def test_test_hook(renders):
    pod = renders["default"].one("Pod")
    ann = pod["metadata"]["annotations"]
    assert ann["helm.sh/hook"] == "test"
    c = pod["spec"]["containers"][0]
    assert c["args"][-1] == "http://tensafe.tensafe.svc:8000/health"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert c["resources"]["limits"]["memory"]
