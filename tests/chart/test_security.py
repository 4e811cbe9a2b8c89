"""Restricted Pod Security for every container, tokens, NetworkPolicy, labels and selectors."""

from __future__ import annotations

import chartlib


def test_every_container_is_restricted(variation):
    name, r = variation
    pods = chartlib.pod_specs(r.docs)
    assert {owner.split("/")[0] for owner, _, _ in pods} == {"Deployment", "Pod"}, "the app and the helm test pod"
    problems = []
    for owner, spec, _ in pods:
        problems += chartlib.pod_security_problems(owner, spec)
        if owner.startswith("Deployment/"):
            problems += chartlib.writable_dir_problems(owner, spec)
    assert not problems, f"{name}: {problems}"


def test_service_account_token(variation, plans):
    name, r = variation
    # Only the Vault agent needs the token (inventories/prod: vault_delivery_mode vault-agent).
    want = name in ("prod", "prod-hpa")
    assert want == (name in plans and plans[name].values["vault"]["agentInject"]["enabled"] is True), name
    for owner, spec, _ in chartlib.pod_specs(r.docs):
        mounted = spec.get("automountServiceAccountToken")
        if owner.startswith("Pod/"):
            assert mounted is False, f"{name}: the test pod never needs a token"
        else:
            assert mounted is want, f"{name}: automountServiceAccountToken {mounted}"
    for sa in r.of_kind("ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False


def test_network_policy_default_deny(variation):
    name, r = variation
    policies = {p["metadata"]["name"]: p for p in r.of_kind("NetworkPolicy")}
    app = policies[r.one("Deployment")["metadata"]["name"]]
    spec = app["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    # Named ports resolve to the container ports 8000 and 9090.
    ports = {p["name"]: p["containerPort"] for p in r.one("Deployment")["spec"]["template"]["spec"]["containers"][0]["ports"]}
    allowed_in = {ports.get(p["port"], p["port"]) for rule in spec["ingress"] for p in rule["ports"]}
    assert {8000, 9090} <= allowed_in
    assert allowed_in <= {8000, 9090}
    for rule in spec["ingress"]:
        assert rule.get("from"), "every ingress rule names its peers (no allow-all)"
    for rule in spec["egress"]:
        assert rule.get("to"), "every egress rule names its peers (no allow-all)"
    dns = [r_ for r_ in spec["egress"] if {(p["port"], p["protocol"]) for p in r_["ports"]} == {(53, "UDP"), (53, "TCP")}]
    assert len(dns) == 1
    assert dns[0]["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
    ]
    # The test pod is locked down too.
    test_np = policies[app["metadata"]["name"] + "-test"]
    assert test_np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in test_np["spec"]


def test_network_policy_peers(renders):
    spec = next(p for p in renders["prod"].of_kind("NetworkPolicy") if p["metadata"]["name"] == "tensafe")["spec"]
    egress_ports = {(p["port"], p["protocol"]) for rule in spec["egress"] for p in rule["ports"]}
    assert {(5432, "TCP"), (6379, "TCP"), (8200, "TCP"), (6831, "UDP")} <= egress_ports
    ingress = {}
    for rule in spec["ingress"]:
        ingress.setdefault(rule["ports"][0]["port"], []).extend(rule["from"])
    assert ingress["http"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "tensafe-test", "app.kubernetes.io/instance": "tensafe"}}},
    ]
    assert ingress["metrics"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    # Jaeger egress only when tracing is on.
    default = next(p for p in renders["default"].of_kind("NetworkPolicy") if p["metadata"]["name"] == "tensafe")["spec"]
    assert (6831, "UDP") not in {(p["port"], p["protocol"]) for rule in default["egress"] for p in rule["ports"]}


def test_selectors_are_name_and_instance_only(variation):
    name, r = variation
    assert not chartlib.selector_problems(r.docs, r.release), name


def test_recommended_labels_everywhere(variation):
    name, r = variation
    assert not chartlib.label_problems(r.docs), name


def test_every_namespaced_object_has_the_release_namespace(variation):
    name, r = variation
    for d in r.docs:
        want = "monitoring" if (name == "dev-extras" and d["kind"] == "ServiceMonitor") else r.namespace
        assert d["metadata"].get("namespace") == want, chartlib.name_of(d)
