"""The drift filters (playbooks/drift.yml): what counts as drift in a server-side dry-run apply's diff, and that secret
values never reach the report. The real dry run against the API server is tests/drift."""
import importlib.util
import json
import pathlib

import pytest
from ansible.errors import AnsibleFilterError

PLUGIN = pathlib.Path(__file__).resolve().parents[2] / "collections/ansible_collections/tensafe/k8s/plugins/filter/drift.py"
spec = importlib.util.spec_from_file_location("drift", PLUGIN)
drift = importlib.util.module_from_spec(spec)
spec.loader.exec_module(drift)

MANIFEST = """
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {replicas: 1, template: {spec: {containers: [{name: web, image: web:1}]}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}, minReplicas: 1, maxReplicas: 3}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
data: {password: c2VjcmV0}
---
apiVersion: v1
kind: Pod
metadata: {name: web-test, annotations: {helm.sh/hook: test}}
---
apiVersion: v1
kind: Namespace
metadata: {name: web, namespace: oops}
"""


def planned():
    return drift.drift_objects(MANIFEST, "app", "release web/web", "web")


def applied(*diffs):
    """A kubernetes.core.k8s result over several definitions: one diff (or error, continue_on_error) per object."""
    return {"result": {"results": [{"changed": False, "result": {}, "error": diff["error"]} if "error" in diff
                                   else {"changed": False, "method": "apply", "diff": diff} for diff in diffs]}}


def live_and_desired(before, after):
    meta = {"managedFields": [{"manager": "helm"}], "resourceVersion": "7"}
    return {"before": dict(before, metadata=meta), "after": dict(after, metadata=dict(meta, managedFields=[{}, {}]))}


def test_objects_get_namespaces_hooks_go_and_hpa_targets_ignore_replicas():
    objects = planned()
    assert [(o["kind"], o["namespace"]) for o in objects] == [
        ("Deployment", "web"), ("HorizontalPodAutoscaler", "web"), ("Secret", "web"), ("Namespace", "")]
    assert objects[0]["ignore"] == ["spec.replicas"] and objects[1]["ignore"] == []
    assert objects[2]["secret"] and objects[2]["secret_paths"] == ["data", "stringData"]


def test_a_namespaced_object_without_namespace_is_refused():
    with pytest.raises(AnsibleFilterError, match="has no namespace"):
        drift.drift_objects({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}, "app", "here")


def test_in_sync_drifted_missing_and_replicas_under_hpa():
    report = drift.drift_report(applied(
        live_and_desired({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}},
                         {"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web", "image": "web:1"}]}}}}),
        live_and_desired({"status": {"currentReplicas": 3}}, {"status": {"currentReplicas": 1}}),
        {"before": {}, "after": {"kind": "Secret", "metadata": {"name": "creds"}}},
        {},
    ), planned())
    states = [o["state"] for o in report["objects"]]
    assert states == ["drifted", "in-sync", "missing", "in-sync"]
    assert report["objects"][0]["fields"] == [
        {"path": "spec.template.spec.containers[0].image", "live": "web:2", "desired": "web:1"}]
    assert report["drifted"] and report["drifted_objects"] == [
        "Deployment web/web (app, drifted)", "Secret web/creds (app, missing)"]
    assert report["components"] == {"app": {"in-sync": 2, "drifted": 1, "missing": 1, "error": 0}}


def test_secret_values_are_compared_by_hash_only():
    report = drift.drift_report(applied(
        {}, {},
        live_and_desired({"data": {"password": "bGl2ZS1zZWNyZXQ="}, "type": "Opaque"},
                         {"data": {"password": "c2VjcmV0"}, "type": "Opaque"}),
        {},
    ), planned())
    field = report["objects"][2]["fields"][0]
    assert field["path"] == "data.password" and field["live"].startswith("sha256:") and field["live"] != field["desired"]
    text = json.dumps(report) + "\n".join(drift.drift_summary(report))
    assert "c2VjcmV0" not in text and "bGl2ZS1zZWNyZXQ=" not in text


def test_every_field_of_a_secret_release_is_hashed_and_its_errors_hidden():
    objects = drift.drift_objects(MANIFEST, "vault_server", "release vault/vault", "vault", True)
    report = drift.drift_report(applied(
        live_and_desired({"spec": {"template": {"spec": {"containers": [{"image": "root-token-in-args"}]}}}},
                         {"spec": {"template": {"spec": {"containers": [{"image": "other"}]}}}}),
        {"error": {"msg": "admission refused root-token-in-args"}}, {}, {}), objects)
    assert "root-token-in-args" not in json.dumps(report)
    assert report["objects"][1]["state"] == "error"


def test_a_missing_namespace_is_missing_and_counts_must_match():
    report = drift.drift_report(applied({}, {}, {"error": {"msg": 'namespaces "web" not found'}}, {}), planned())
    assert report["objects"][2]["state"] == "missing"
    with pytest.raises(AnsibleFilterError, match="4 planned"):
        drift.drift_report(applied({}), planned())
