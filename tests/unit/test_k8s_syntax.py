"""The k8s_syntax filter: Kubernetes/Helm syntax of role inputs and the one message format (issue 13)."""
import importlib.util
import pathlib

import pytest
from ansible.errors import AnsibleFilterError

PLUGIN = pathlib.Path(__file__).resolve().parents[2] / "collections/ansible_collections/tensafe/k8s/plugins/filter/k8s_syntax.py"
spec = importlib.util.spec_from_file_location("k8s_syntax", PLUGIN)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
k8s_syntax = module.k8s_syntax


def errors(rule, value, **extra):
    return k8s_syntax([dict(var="x_var", value=value, rule=rule, **extra)])


GOOD = [
    ("quantity", "500m"), ("quantity", "2"), ("quantity", 2), ("quantity", "8Gi"), ("quantity", "1.5"), ("quantity", "1e3"),
    ("quantity", "0"), ("resources", {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "1024Mi"}}),
    ("dns_label", "tensafe"), ("dns_label", "a" * 63), ("dns_subdomain", "tensafe-tls.v1"), ("hostname", "tensafe.example.com"),
    ("hostname", "*.example.com"), ("release_name", "a" * 53), ("release_name", "kube-prometheus-stack"),
    ("labels", {"release": "kps", "app.kubernetes.io/name": "x", "empty": ""}), ("label_keys", {"nvidia.com/gpu.present": "true"}),
    ("annotations", {"vault.hashicorp.com/agent-inject-template-db": "{{ with secret }}\n{{ end }}"}),
    ("duration", "5m"), ("duration", "300s"), ("duration", "1h30m"), ("duration", "1.5h"),
    ("url", "http://prometheus.monitoring.svc:9090"), ("url", "https://vault.example.com"),
    ("image_repository", "registry.example.com:5000/tensafe/tensafe"), ("image_repository", "tensafe/tensafe"),
    ("image_repository", "Registry.Example.com/tensafe"), ("image_tag", "4.0.0"), ("image_tag", "17.6.0-debian-12-r4"),
    ("image_digest", "sha256:" + "a" * 64), ("chart_version", "88.3.0"), ("chart_version", "v1.2.3-rc.1"),
    ("registry", "docker.io"), ("registry", "registry.local:5000"), ("path", "secret/data/tensafe"),
    ("int", 0, {"min": 0}), ("int", "3", {"min": 1}), ("float", "0.05", {"min": 0, "max": 1}),
    ("custom", "x", {"ok": True, "text": "t"}), ("dns_subdomain", "", {"allow_empty": True}),
    ("chart_repo", "https://kedacore.github.io/charts"), ("chart_repo", "oci://registry-1.docker.io/bitnamicharts"),
    ("chart_repo", str(pathlib.Path(__file__).parent)),  # a local directory of unpacked charts (chart_source takes it)
]

BAD = [
    ("chart_repo", "/no/such/chart/directory"), ("chart_repo", "kedacore.github.io/charts"), ("chart_repo", "ftp://host/c"),
    ("quantity", "2 Gi"), ("quantity", "-1"), ("quantity", "1.5.0"), ("quantity", "lots"), ("quantity", True), ("quantity", "8GB"),
    ("quantity", "8Gi\n"),
    ("resources", {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "1", "memory": "8Gi"}}),
    ("resources", {"requests": {"memory": "8Gi"}, "limits": {"memory": "512Mi"}}),
    ("resources", {"requests": {"cpu": "2 cores"}}), ("resources", "2"),
    ("dns_label", "TenSafe"), ("dns_label", "a" * 64), ("dns_label", "-x"), ("dns_label", "tensafe\n"), ("dns_label", "a.b"),
    ("dns_subdomain", "Tls_Secret"), ("dns_subdomain", ""), ("hostname", "https://tensafe.example.com"),
    ("hostname", "tensafe.example.com:443"), ("hostname", "a" * 64 + ".com"), ("release_name", "a" * 54),
    ("release_name", "TenSafe"), ("labels", {"team": "ml\nops"}), ("labels", {"team": "équipe"}), ("labels", {"team": "a" * 64}),
    ("labels", {"team": 1}), ("labels", {"bad key": "x"}), ("labels", {"Example.com/x": "y"}), ("labels", ["release"]),
    ("label_keys", {"-x": "y"}), ("annotations", {"a": "b\x00"}), ("annotations", {"a": 1}),
    ("duration", "five minutes"), ("duration", "5m --set replicaCount=3"), ("duration", "300"), ("duration", "-5m"),
    ("duration", "0s"), ("duration", "5m\n"), ("duration", 300), ("duration", ""),
    ("url", "prometheus.monitoring.svc:9090"), ("url", "http://"), ("url", "http://a b"), ("url", "ftp://x", {"schemes": ["http", "https"]}),
    ("image_repository", "tensafe/TenSafe"), ("image_repository", "tensafe/tensafe:4.0.0"), ("image_repository", ""),
    ("image_tag", "4.0.0\n"), ("image_tag", "4.0.0 beta"), ("image_tag", "a" * 129), ("image_tag", ".x"),
    ("image_digest", "sha256:1234"), ("image_digest", "sha256:" + "A" * 64), ("chart_version", "88.x"), ("chart_version", ">=1.0"),
    ("registry", "https://docker.io"), ("directory", "/nonexistent/charts"), ("path", "/secret/"), ("path", "a b"),
    ("int", -1, {"min": 0}), ("int", "three", {"min": 0}), ("int", True, {}), ("int", 70000, {"min": 1, "max": 65535}),
    ("float", "1.5", {"max": 1}), ("custom", "x", {"ok": False, "text": "t"}),
]


@pytest.mark.parametrize("case", GOOD, ids=[f"{c[0]}-{c[1]!r}"[:60] for c in GOOD])
def test_valid_values_pass(case):
    rule, value, extra = (*case, {})[:3]
    assert errors(rule, value, **extra) == []


@pytest.mark.parametrize("case", BAD, ids=[f"{c[0]}-{c[1]!r}"[:60] for c in BAD])
def test_invalid_values_are_refused_in_the_one_format(case):
    rule, value, extra = (*case, {})[:3]
    found = errors(rule, value, **extra)
    assert len(found) == 1, found
    assert found[0].startswith("x_var: "), found
    assert " \u2014 " in found[0] and "; fix: " in found[0], found


def test_quantities_compare_across_suffixes():
    assert module.quantity("1Gi") == module.quantity("1024Mi")
    assert module.quantity("500m") == module.quantity("0.5")
    assert module.quantity("1e3") == module.quantity("1k")


def test_durations_in_seconds():
    assert module.duration("1h30m") == 5400
    assert module.duration("300s") == 300
    assert module.duration("5m ") is None


def test_secret_values_are_redacted_and_newlines_are_shown_escaped():
    secret = k8s_syntax([{"var": "p", "value": "hunter2\n", "rule": "custom", "ok": False, "text": "t", "secret": True}])
    assert secret == ["p: <redacted> \u2014 t; fix: see the role's README"]
    shown = errors("image_tag", "4.0.0\n")[0]
    assert shown.startswith('x_var: "4.0.0\\n" \u2014 ')


def test_a_derived_value_names_its_source():
    found = k8s_syntax([{"var": "vault_app_namespace", "source": "app_tensafe_release_namespace", "value": "Bad", "rule": "dns_label"}])
    assert found[0].startswith('vault_app_namespace (from app_tensafe_release_namespace): "Bad" \u2014 ')


def test_a_given_fix_replaces_the_rule_advice():
    assert errors("int", -1, min=0, fix="use 0 to disable")[0].endswith("; fix: use 0 to disable")


def test_only_the_failures_are_returned_in_order():
    found = k8s_syntax([
        {"var": "a", "value": "5m", "rule": "duration"}, {"var": "b", "value": "x y", "rule": "duration"},
        {"var": "c", "value": "-1", "rule": "quantity"}])
    assert [f.split(":")[0] for f in found] == ["b", "c"]


@pytest.mark.parametrize("bad", [{"var": "a", "value": 1, "rule": "nope"}, {"value": 1, "rule": "int"}, "a"])
def test_a_malformed_check_is_a_programming_error(bad):
    with pytest.raises(AnsibleFilterError):
        k8s_syntax([bad])
    with pytest.raises(AnsibleFilterError):
        k8s_syntax({"var": "a"})


DEFAULTS_TEXT = (PLUGIN.parents[2] / "roles/app/defaults/main.yml").read_text()


@pytest.mark.parametrize("error,overrides,expected", [
    ("tensafe: - at '/autoscaling/keda/prometheusServerAddress': 'nohost' is not valid 'uri'", {},
     ["app_keda_prometheus_url (chart key autoscaling.keda.prometheusServerAddress)"]),
    ("tensafe: - at '/gpu/count': got string, want integer", {"gpu": {"count": "lots"}},
     ["app_tensafe_values_overrides.gpu.count (chart key gpu.count)"]),
    ("tensafe: - at '/ingress/hosts/0/host': bad", {}, ["app_ingress_host (chart key ingress.hosts.0.host)"]),
    ("- image.tag: Invalid type", {}, ["app_image_tag (chart key image.tag)"]),
    ("tensafe: - at '/nothere': bad", {}, ["app_tensafe_values_defaults.nothere (chart key nothere)"]),
    ("Error: chart not found", {}, []),
])
def test_chart_schema_refusals_name_the_inventory_variable(error, overrides, expected):
    found = module.chart_value_sources(error, overrides, DEFAULTS_TEXT, "app_tensafe_values_defaults", "app_tensafe_values_overrides")
    assert found == expected
