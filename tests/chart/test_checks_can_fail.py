"""Each checker used above catches a deliberately broken copy of a real render (no vacuous passes)."""

from __future__ import annotations

import copy

import pytest

import chartlib


@pytest.fixture()
def docs(renders):
    return copy.deepcopy(renders["prod"].docs)


def _deploy(docs):
    return next(d for d in docs if d["kind"] == "Deployment")


def _pod(docs):
    return _deploy(docs)["spec"]["template"]["spec"]


BREAKS = {
    "no readOnlyRootFilesystem": lambda p: p["containers"][0]["securityContext"].pop("readOnlyRootFilesystem"),
    "privilege escalation": lambda p: p["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True),
    "capabilities kept": lambda p: p["containers"][0]["securityContext"]["capabilities"].update(drop=[]),
    "root user": lambda p: p["containers"][0]["securityContext"].update(runAsUser=0),
    "no seccomp": lambda p: p["securityContext"].pop("seccompProfile"),
    "hostPath volume": lambda p: p["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
    "unrestricted init container": lambda p: p.setdefault("initContainers", []).append({"name": "init", "image": "busybox"}),
    "hostNetwork": lambda p: p.update(hostNetwork=True),
}


@pytest.mark.parametrize("brk", sorted(BREAKS))
def test_pod_security_check_catches(docs, brk):
    spec = _pod(docs)
    assert not chartlib.pod_security_problems("Deployment/x", spec)
    BREAKS[brk](spec)
    assert chartlib.pod_security_problems("Deployment/x", spec)


def test_writable_dir_check_catches(docs):
    spec = _pod(docs)
    assert not chartlib.writable_dir_problems("d", spec)
    spec["containers"][0]["volumeMounts"] = [m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] != "/tmp"]
    assert chartlib.writable_dir_problems("d", spec)


def test_autoscaler_check_catches(docs):
    assert not chartlib.autoscaler_problems(docs, "keda")
    with_replicas = copy.deepcopy(docs)
    _deploy(with_replicas)["spec"]["replicas"] = 3
    assert chartlib.autoscaler_problems(with_replicas, "keda")
    both = docs + [{"kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"}}]
    assert any("both" in p for p in chartlib.autoscaler_problems(both, "keda"))


def test_selector_check_catches(docs):
    assert not chartlib.selector_problems(docs)
    broken = copy.deepcopy(docs)
    _deploy(broken)["spec"]["selector"]["matchLabels"]["app.kubernetes.io/version"] = "4.0.0"
    assert chartlib.selector_problems(broken)
    adopted = copy.deepcopy(docs)
    test_pod = next(d for d in adopted if d["kind"] == "Pod")
    test_pod["metadata"]["labels"]["app.kubernetes.io/name"] = "tensafe"
    assert any("Service selector" in p for p in chartlib.selector_problems(adopted))


def test_label_check_catches(docs):
    assert not chartlib.label_problems(docs)
    del docs[0]["metadata"]["labels"]["app.kubernetes.io/part-of"]
    assert chartlib.label_problems(docs)


@pytest.mark.parametrize(
    "extra_doc, text",
    [
        ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"a": "b"}}, ""),
        (None, 'DATABASE_URL: "postgresql://user:pass@host:5432/db"'),
        (None, "TS_SECRET_KEY: your-secret-key"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"REDIS_URL": "x"}}, ""),
    ],
)
def test_secret_check_catches(renders, extra_doc, text):
    r = renders["prod"]
    assert not chartlib.secret_problems(r.stdout, r.docs)
    docs = r.docs + ([extra_doc] if extra_doc else [])
    assert chartlib.secret_problems(r.stdout + text, docs)


def test_kubernetes_schema_check_catches(docs):
    deploy = _deploy(docs)
    assert not chartlib.object_problems(deploy)
    deploy["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True  # typo
    assert chartlib.object_problems(deploy)
    svc = next(d for d in docs if d["kind"] == "Service")
    svc["spec"]["ports"][0]["port"] = "http"
    assert chartlib.object_problems(svc)


@pytest.mark.parametrize(
    "kind, breakage",
    [
        ("ScaledObject", lambda o: o["spec"].update(minReplicaCount="three")),
        ("ScaledObject", lambda o: o["spec"].update(pollingIntervall=30)),  # unknown field (strict)
        ("ScaledObject", lambda o: o["spec"]["triggers"][0].pop("type")),
        ("ServiceMonitor", lambda o: o["spec"]["endpoints"][0].update(interval="30 seconds")),
        ("ServiceMonitor", lambda o: o["spec"].pop("selector")),
    ],
)
def test_crd_schema_check_catches(docs, kind, breakage):
    obj = next(d for d in docs if d["kind"] == kind)
    assert not chartlib.object_problems(obj)
    breakage(obj)
    assert chartlib.object_problems(obj)


def test_external_secret_schema_check_catches(renders):
    es = copy.deepcopy(renders["prod-external-secrets"].one("ExternalSecret"))
    assert not chartlib.object_problems(es)
    es["spec"]["data"][0]["remoteRef"].pop("key")
    assert chartlib.object_problems(es)
    old = copy.deepcopy(renders["prod-external-secrets"].one("ExternalSecret"))
    old["apiVersion"] = "external-secrets.io/v1alpha1"
    assert chartlib.object_problems(old), "an unserved API version is rejected"


def test_policy_exception_comparison():
    exceptions = {("CKV_K8S_43", "Deployment.ns.a"): "r"}
    assert chartlib.compare_findings({("CKV_K8S_43", "Deployment.ns.a")}, exceptions) == ([], [])
    assert chartlib.compare_findings({("CKV_K8S_43", "Deployment.ns.a"), ("CKV_K8S_20", "Deployment.ns.a")}, exceptions)[0]
    assert chartlib.compare_findings(set(), exceptions)[1] == [("CKV_K8S_43", "Deployment.ns.a")]
