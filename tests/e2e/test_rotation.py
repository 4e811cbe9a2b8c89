"""Issue 10, item 3: a rotation of the app's keys reaches the Kubernetes Secret and the app's pods roll to it.

The vault role writes the app's secret in the cluster's OpenBao (`vault_rotate_app_keys`); what the app sees depends on
the delivery mode:
- kubernetes: the vault role writes the Secret; the app role puts the checksum of its data in the pod template
  (`checksum/secret`), so the upgrade rolls the pods to the new values;
- external-secrets: the real External Secrets Operator syncs the Secret from OpenBao. The chart's refreshInterval is
  1h, so a Secret holding the new value minutes later proves the role's forced refresh (`force-sync`), not the schedule.
  Then back to kubernetes delivery: the Secret must survive the removal of the ExternalSecret that owned it;
- vault-agent: not here (no injector, README "what the hermetic cluster cannot do"): the agent renders the file when a
  pod starts (agent-pre-populate-only), so the app sees new values in new pods only; see the vault role's README.
Each run is `site.yml --tags vault,app` on the stack of conftest.stack.
"""
import base64
import hashlib
import json
import time
import urllib.request

import pytest

from conftest import APP, APP_NAMESPACE, CLUSTER, kubectl_json, sh

SECRET = "tensafe-secrets"  # inventories/local: vault_app_secret_name
KV = "secret/data/tensafe"  # vault_kv_mount/data/vault_kv_path


def openbao():
    """The app's secret as the cluster's OpenBao holds it: (data, version)."""
    addr = (CLUSTER / "openbao/addr").read_text().strip()
    request = urllib.request.Request(f"{addr}/v1/{KV}",
                                     headers={"X-Vault-Token": (CLUSTER / "openbao/token").read_text().strip()})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.load(response)["data"]
    return body["data"], body["metadata"]["version"]


def secret():
    got = sh("kubectl", "get", "secret", SECRET, "-n", APP_NAMESPACE, "-o", "json", check=False)
    assert got.returncode == 0, f"Secret {APP_NAMESPACE}/{SECRET} is not there: {got.stderr.strip()}"
    return json.loads(got.stdout)


def decoded(item):
    return {key: base64.b64decode(value).decode() for key, value in item["data"].items()}


def checksum(item):
    """What the app role puts in the pod template: sha256 of the Secret's data (base64 values) as sorted JSON."""
    return hashlib.sha256(json.dumps(item["data"], sort_keys=True).encode()).hexdigest()


def rollout():
    """The Deployment's pod template checksum and the set of (pod, its checksum) of the app's live pods."""
    template = kubectl_json("get", "deployment", APP, "-n", APP_NAMESPACE)["spec"]["template"]["metadata"]
    pods = kubectl_json("get", "pods", "-n", APP_NAMESPACE, "-l", f"app.kubernetes.io/instance={APP}")["items"]
    return (template.get("annotations", {}).get("checksum/secret"),
            {(p["metadata"]["name"], p["metadata"].get("annotations", {}).get("checksum/secret"))
             for p in pods if not p["metadata"].get("deletionTimestamp")})


def assert_rotated(before_kv, before_pods, output):
    after_kv, _ = openbao()
    live = secret()
    assert after_kv["TS_SECRET_KEY"] != before_kv["TS_SECRET_KEY"], "TS_SECRET_KEY was not rotated in OpenBao"
    assert after_kv["TS_KEY_MASTER"] != before_kv["TS_KEY_MASTER"], "TS_KEY_MASTER was not rotated in OpenBao"
    assert decoded(live) == after_kv, "the Kubernetes Secret does not hold the rotated values OpenBao holds"
    template_checksum, pods = rollout()
    assert template_checksum == checksum(live), "the pod template does not carry the checksum of the Secret's data"
    assert pods and {c for _, c in pods} == {template_checksum}, f"pods not rolled to the new Secret: {pods}"
    assert not {name for name, _ in pods} & {name for name, _ in before_pods}, "no pod was replaced"
    for value in after_kv.values():
        assert value not in output, "a secret value is in the playbook's output"


@pytest.mark.usefixtures("app_at_minimum")
def test_rotation_in_kubernetes_delivery_rolls_the_pods(stack):
    before_kv, _ = openbao()
    live = secret()
    assert decoded(live) == before_kv
    template_checksum, before_pods = rollout()
    assert template_checksum == checksum(live), "the converge did not put the Secret's checksum in the pod template"

    output = stack.site("--tags", "vault,app", "-e", "vault_rotate_app_keys=true")
    assert "TS_SECRET_KEY rotated, TS_KEY_MASTER rotated" in output, output[-3000:]
    assert_rotated(before_kv, before_pods, output)


@pytest.mark.usefixtures("app_at_minimum")
def test_rotation_in_external_secrets_delivery_reaches_the_secret_and_the_pods_and_back(stack):
    es = ("-e", "vault_delivery_mode=external-secrets")
    stack.site("--tags", "vault,app", *es)
    live = secret()
    owners = [(o["kind"], o["name"]) for o in live["metadata"].get("ownerReferences", [])]
    assert owners == [("ExternalSecret", APP)], f"the Secret is not External Secrets': owners {owners}"
    before_kv, version = openbao()
    assert decoded(live) == before_kv
    refresh = kubectl_json("get", "externalsecret", APP, "-n", APP_NAMESPACE)["spec"]["refreshInterval"]
    assert refresh == "1h", f"refreshInterval {refresh}: a scheduled refresh could pass for the forced one"
    template_checksum, before_pods = rollout()
    assert template_checksum == checksum(live)

    output = stack.site("--tags", "vault,app", *es, "-e", "vault_rotate_app_keys=true")
    assert_rotated(before_kv, before_pods, output)
    annotations = kubectl_json("get", "externalsecret", APP, "-n", APP_NAMESPACE)["metadata"]["annotations"]
    assert annotations.get("force-sync") == str(openbao()[1]) != str(version), annotations

    # No change, no write: the rerun leaves the app and the ExternalSecret alone.
    rerun = stack.site("--tags", "vault,app", *es)
    recap = [line for line in rerun.splitlines() if line.startswith("localhost")]
    assert recap and " changed=0 " in recap[0], recap

    # Back to kubernetes delivery: the ExternalSecret goes, its Secret stays (not garbage-collected with its owner) and
    # holds the same values, so the pods are not rolled.
    template_checksum, pods = rollout()
    stack.site("--tags", "vault,app")
    time.sleep(5)  # the garbage collector acts within a second or two of the owner's deletion
    assert not kubectl_json("get", "externalsecrets", "-n", APP_NAMESPACE)["items"]
    live = secret()
    assert not live["metadata"].get("ownerReferences"), live["metadata"].get("ownerReferences")
    assert decoded(live) == openbao()[0]
    assert rollout() == (template_checksum, pods), "switching the delivery back rolled the pods for the same values"
