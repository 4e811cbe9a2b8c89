"""Issue 13: Kubernetes/Helm syntax of every role's inputs, refused before any cluster call and named as the user wrote it.

Each case is one bad value, thought up as a hurried operator or an attacker would write it. Every bad value of a role
is refused by that role's one syntax check (tensafe.k8s.k8s_syntax), which lists all of them at once; so the cases of a
role share one site.yml run (about 15 s each) with only that role enabled, and each case asserts on that run: exit
non-zero, its own line in the refusal (`<variable>: ...` or `<variable> (from <the variable the user set>): ...`),
and no request at the recording API server. Values derived from another role's variable, chart schema refusals and
the unknown-variable check run alone.
"""
import functools
import shutil
import tempfile
import pathlib
import re

import pytest
import yaml

import recording_api
from badinput import COMPONENTS, ROLES, ROOT, run
from recording_api import Recorder

LONG = "tensafe-" + "x" * 50  # 58 characters: over Helm's 53
# role -> [(case id, variable, bad value, the name the refusal must carry)]; one variable once per role.
BATCHES = {
    "app": [
        ("helm-timeout-in-words", "app_tensafe_helm_timeout", "five minutes", "app_tensafe_helm_timeout"),
        ("memory-limit-below-request", "app_resources",
         {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}, "app_resources"),
        ("release-name-over-53", "app_tensafe_release_name", LONG, "app_tensafe_release_name"),
        ("namespace-with-space", "app_tensafe_release_namespace", "tensafe prod", "app_tensafe_release_namespace"),
        ("image-tag-trailing-newline", "app_image_tag", "4.0.0\n", "app_image_tag"),
        ("image-repository-with-tag", "app_image_repository", "tensafe/tensafe:4.0.0", "app_image_repository"),
        ("image-digest-not-hex", "app_image_digest", "sha256:" + "g" * 64, "app_image_digest"),
        ("node-selector-value-newline", "app_node_selector", {"nvidia.com/gpu.present": "true\nfalse"}, "app_node_selector"),
        ("ingress-host-with-scheme", "app_ingress_host", "https://tensafe.example.com", "app_ingress_host"),
        ("ingress-class-capitals", "app_ingress_class", "Nginx", "app_ingress_class"),
        ("keda-url-without-scheme", "app_keda_prometheus_url", "prometheus.monitoring.svc:9090", "app_keda_prometheus_url"),
        ("negative-verify-timeout", "app_verify_timeout", -1, "app_verify_timeout"),
        ("service-monitor-label-non-ascii", "app_service_monitor_labels", {"team": "équipe"}, "app_service_monitor_labels"),
        ("agent-annotation-not-a-string", "app_vault_agent_annotations", {"vault.hashicorp.com/agent-inject": True},
         "app_vault_agent_annotations"),
        ("jaeger-port-out-of-range", "app_jaeger_agent_port", 70000, "app_jaeger_agent_port"),
        ("chart-archive-dir-missing", "app_tensafe_chart_archive_dir", "/nonexistent/charts", "app_tensafe_chart_archive_dir"),
        ("secret-name-underscore", "app_secret_name", "TenSafe_Secrets", "app_secret_name"),
        ("blue-green-tag-injected-flag", "app_blue_green_image_tag", "latest --force", "app_blue_green_image_tag"),
        ("secret-store-with-space", "app_external_secret_store", "vault backend", "app_external_secret_store"),
        ("tls-on-without-secret-name", "app_ingress_tls_secret", "", "app_ingress_tls_secret"),
    ],
    "datastores": [
        ("helm-timeout-injected-set", "datastores_helm_timeout", "5m --set replicaCount=3", "datastores_helm_timeout"),
        ("postgresql-size-with-space", "datastores_postgresql_persistence_size", "2 Gi", "datastores_postgresql_persistence_size"),
        ("redis-size-negative", "datastores_redis_persistence_size", "-1", "datastores_redis_persistence_size"),
        ("namespace-capitals", "datastores_namespace", "Tensafe-Data", "datastores_namespace"),
        ("postgresql-release-over-53", "datastores_postgresql_release_name", LONG, "datastores_postgresql_release_name"),
        ("postgresql-tag-with-space", "datastores_postgresql_image_tag", "17.6.0 debian", "datastores_postgresql_image_tag"),
        ("redis-registry-with-scheme", "datastores_redis_image_registry", "https://docker.io", "datastores_redis_image_registry"),
        ("storage-class-with-space", "datastores_storage_class", "fast ssd", "datastores_storage_class"),
        ("negative-verify-timeout", "datastores_verify_timeout", -30, "datastores_verify_timeout"),
        ("redis-database-16", "datastores_redis_database", 16, "datastores_redis_database"),
        ("postgresql-chart-version-range", "datastores_postgresql_chart_version", "~17.1", "datastores_postgresql_chart_version"),
        ("redis-chart-repo-without-scheme", "datastores_redis_chart_repo", "registry-1.docker.io/bitnamicharts",
         "datastores_redis_chart_repo"),
    ],
    "prerequisites": [
        ("helm-timeout-newline-flag", "prerequisites_helm_timeout", "5m\n--set x=1", "prerequisites_helm_timeout"),
        ("keda-release-capitals", "prerequisites_keda_release_name", "KEDA", "prerequisites_keda_release_name"),
        ("keda-repo-without-scheme", "prerequisites_keda_chart_repo", "kedacore.github.io/charts", "prerequisites_keda_chart_repo"),
        ("device-plugin-selector-unquoted-bool", "prerequisites_nvidia_device_plugin_node_selector",
         {"nvidia.com/gpu.present": True}, "prerequisites_nvidia_device_plugin_node_selector"),
        ("device-plugin-namespace-with-space", "prerequisites_nvidia_device_plugin_release_namespace", "kube system",
         "prerequisites_nvidia_device_plugin_release_namespace"),
        ("zero-verify-timeout", "prerequisites_verify_timeout", 0, "prerequisites_verify_timeout"),
        ("registry-trailing-slash", "prerequisites_nvidia_device_plugin_image_registry", "nvcr.io/",
         "prerequisites_nvidia_device_plugin_image_registry"),
        ("keda-archive-dir-missing", "prerequisites_keda_chart_archive_dir", "/nonexistent/charts",
         "prerequisites_keda_chart_archive_dir"),
        ("keda-chart-version-wildcard", "prerequisites_keda_chart_version", "2.x", "prerequisites_keda_chart_version"),
    ],
    "observability": [
        ("jaeger-timeout-shell", "observability_jaeger_helm_timeout", "10m; rm -rf /", "observability_jaeger_helm_timeout"),
        ("prometheus-url-without-scheme", "observability_prometheus_url", "kube-prometheus-stack-prometheus.monitoring.svc:9090",
         "observability_prometheus_url"),
        ("service-monitor-label-newline", "observability_service_monitor_labels", {"release": "kube-prometheus-stack\n"},
         "observability_service_monitor_labels"),
        ("dashboard-label-unquoted-number", "observability_dashboard_labels", {"grafana_dashboard": 1},
         "observability_dashboard_labels"),
        ("rule-label-bad-key", "observability_prometheus_rule_labels", {"bad key!": "x"}, "observability_prometheus_rule_labels"),
        ("error-ratio-above-one", "observability_alert_error_ratio", 1.5, "observability_alert_error_ratio"),
        ("gpu-idle-negative", "observability_alert_gpu_idle_percent", -5, "observability_alert_gpu_idle_percent"),
        ("jaeger-release-capitals", "observability_jaeger_release_name", "Jaeger", "observability_jaeger_release_name"),
        ("prometheus-namespace-capitals", "observability_prometheus_release_namespace", "Monitoring",
         "observability_prometheus_release_namespace"),
        ("image-registry-with-space", "observability_image_registry", "registry.example.com/ mirror", "observability_image_registry"),
        ("negative-verify-timeout", "observability_verify_timeout", -1, "observability_verify_timeout"),
        ("jaeger-host-with-space", "observability_jaeger_agent_host", "jaeger collector", "observability_jaeger_agent_host"),
    ],
    "vault": [
        ("workload-addr-without-scheme", "vault_workload_addr", "vault.vault.svc:8200", "vault_workload_addr"),
        ("database-url-wrong-scheme", "vault_database_url", "mysql://tensafe:hunter2@db:3306/tensafe", "vault_database_url"),
        ("redis-url-http", "vault_redis_url", "http://redis:6379", "vault_redis_url"),
        ("token-ttl-negative", "vault_kubernetes_role_token_ttl", -1, "vault_kubernetes_role_token_ttl"),
        ("app-service-account-capitals", "vault_app_service_account", "TenSafe", "vault_app_service_account"),
        ("reviewer-account-with-space", "vault_token_reviewer_service_account", "token reviewer",
         "vault_token_reviewer_service_account"),
        ("secret-store-underscore", "vault_cluster_secret_store_name", "Vault_Backend", "vault_cluster_secret_store_name"),
        ("app-secret-with-space", "vault_app_secret_name", "tensafe secrets", "vault_app_secret_name"),
    ],
    "vault_server": [
        ("storage-size-with-space", "vault_server_storage_size", "10 Gi", "vault_server_storage_size"),
        ("helm-timeout-injected-flag", "vault_server_helm_timeout", "10m --atomic=false", "vault_server_helm_timeout"),
        ("release-capitals", "vault_server_release_name", "Vault", "vault_server_release_name"),
        ("image-tag-trailing-newline", "vault_server_image_tag", "2.0.4\n", "vault_server_image_tag"),
        ("image-repository-capitals", "vault_server_image_repository", "hashicorp/Vault", "vault_server_image_repository"),
        ("app-namespace-capitals", "vault_app_namespace", "Tensafe", "(from vault_app_namespace)"),
        ("node-port-outside-range", "vault_server_node_port", 80, "vault_server_node_port"),
        ("access-host-with-scheme", "vault_server_access_host", "https://vault.local", "vault_server_access_host"),
    ],
}
# Set with a role's cases (not cases themselves): the Ingress on, so that its TLS Secret is required.
BATCH_EXTRA = {"app": {"app_ingress_enabled": True}}
CASES = [(role, *case) for role, cases in BATCHES.items() for case in cases]
# The component switch that enables each role (vault_server and vault are both tensafe_vault_enabled).
SWITCH = {"prerequisites": "prerequisites", "datastores": "datastores", "vault": "vault", "vault_server": "vault",
          "observability": "observability", "app": "app"}
SECRETS = ["hunter2"]


def make_inventory(where, url, broken, only=None):
    """inventories/local, its cluster the recording server, with the broken values; only: the one component enabled."""
    inv = where / "inventory"
    shutil.copytree(ROOT / "inventories" / "local", inv)
    kubeconfig = recording_api.write_kubeconfig(where / "kubeconfig", url)
    (inv / "group_vars/all/cluster.yml").write_text(yaml.safe_dump(
        {"tensafe_kubeconfig": str(kubeconfig), "tensafe_kube_context": "", "tensafe_no_log": True}))
    enabled = {f"tensafe_{c}_enabled": (ROLES / c).is_dir() and (only is None or c == only) for c in COMPONENTS}
    (inv / "group_vars/all/components.yml").write_text(yaml.safe_dump(enabled))
    (inv / "group_vars/all/zz_broken.yml").write_text(yaml.safe_dump(broken, allow_unicode=True))
    return inv


def site(url, broken, only=None, args=()):
    """(exit code, output, requests recorded) of site.yml with the broken values."""
    with tempfile.TemporaryDirectory() as where:
        inv = make_inventory(pathlib.Path(where), url, broken, only)
        Recorder.requests.clear()
        result = run("site.yml", inv, list(args))
        return result.returncode, result.stdout + result.stderr, list(Recorder.requests)


@functools.lru_cache(maxsize=None)
def batch(role, url):
    broken = {variable: value for _, variable, value, _ in BATCHES[role]}
    return site(url, {**BATCH_EXTRA.get(role, {}), **broken}, only=SWITCH[role])


def refusal_lines(output):
    """The failure lines Ansible prints on one line each ([ERROR]: Task failed: ...): the syntax check's is the list."""
    return "\n".join(line for line in output.splitlines() if "Task failed" in line)


def one_format(named):
    """`<variable>: ` or `<variable> (from <source>): ` at the start of a message of the list."""
    if named.startswith("(from "):
        return re.escape(named) + ": "
    return r"(^|[\['\" ])" + re.escape(named) + r"(: | \(from [a-z0-9_]+\): )"


@pytest.mark.parametrize("role,case,variable,value,named", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_bad_value_is_refused_by_name_before_any_cluster_call(fake_api, role, case, variable, value, named):
    code, output, requests = batch(role, fake_api)
    assert code != 0, f"{role}: site.yml accepted {BATCHES[role]}"
    assert requests == [], f"{case}: the cluster was called before the refusal: {requests}"
    line = refusal_lines(output)
    # The variable starts its own message in the one format ("<variable>: " or "<variable> (from <source>): ").
    assert re.search(one_format(named), line), f"{case}: {named} is not named:\n{output[-4000:]}"
    for secret in SECRETS:
        assert secret not in output, f"{case}: a secret value was printed"


def test_every_role_with_inputs_has_cases():
    assert sorted(BATCHES) == sorted(["app", "datastores", "prerequisites", "observability", "vault", "vault_server"])
    assert len(CASES) >= 50


# Values derived from another role's variable: the refusal names the variable the user set, even when a role that
# runs earlier is the first to read the derived value.
@pytest.mark.parametrize("broken,only,named", [
    ({"app_tensafe_release_namespace": "TenSafe"}, None, "(from app_tensafe_release_namespace)"),
    ({"observability_prometheus_url": "prometheus:9090"}, "app", "app_keda_prometheus_url (from observability_prometheus_url)"),
    ({"app_tensafe_values_overrides": {"replicaCount": "three"}}, "app", "app_tensafe_values_overrides.replicaCount"),
], ids=["vault-names-the-app-namespace", "app-names-the-observability-url", "chart-schema-names-the-override-key"])
def test_a_derived_or_chart_refusal_names_the_variable_the_user_set(fake_api, broken, only, named):
    code, output, requests = site(fake_api, broken, only)
    assert code != 0
    assert named in output.replace("\n", " ").replace("  ", " "), output[-4000:]
    assert requests == [], requests


def test_unknown_variables_warn_with_the_closest_name_and_validation_passes(fake_api):
    """Not strict: the run passes validation; each typo is one warning (once, though every role validates)."""
    code, output, requests = site(fake_api, {"app_gpus_per_pods": 2, "datastores_postgresql_persistance_size": "10Gi"},
                                  args=["--tags", "validate"])
    assert code == 0, output[-4000:]
    warnings = [line for line in output.splitlines() if "[WARNING]" in line and "no tensafe.k8s role declares" in line]
    assert len(warnings) == 2, warnings  # also: the valid inventory's own variables are all declared
    assert any("app_gpus_per_pods" in w and "did you mean app_gpus_per_pod?" in w for w in warnings), warnings
    assert any("datastores_postgresql_persistance_size" in w and "datastores_postgresql_persistence_size" in w for w in warnings)
    assert requests == []


@pytest.mark.parametrize("args,broken", [
    ([], {"tensafe_strict_variables": True, "app_gpus_per_pods": 2}),
    (["-e", "tensafe_strict_variables=true", "-e", "vault_tokn=s.hunter2"], {}),
], ids=["inventory-typo", "extra-vars-secret-typo"])
def test_strict_mode_refuses_unknown_variables_before_any_cluster_call(fake_api, args, broken):
    code, output, requests = site(fake_api, broken, args=args)
    assert code != 0, output[-3000:]
    typo, closest = ("app_gpus_per_pods", "app_gpus_per_pod") if broken else ("vault_tokn", "vault_token")
    assert f"{typo}: <value not shown>" in output and f"did you mean {closest}?" in output, output[-3000:]
    assert "hunter2" not in output
    assert requests == [], requests
