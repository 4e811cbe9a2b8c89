"""Helm and cluster faults on the hermetic cluster (issue 13 item 5, issue 11 item 2): a release left pending by an
interrupted run, and the kube-apiserver stopped in the middle of a converge.

Cheap on purpose: tests/faults/chart (one Deployment and a ConfigMap) rolled out through tensafe.k8s.common, the
mechanism every role's releases go through (helm_release for one release, helm_releases' parallel jobs for several),
rather than whole site.yml runs. The test makes the chart's rollout never finish (a nodeSelector no node has) so that
`helm upgrade --wait` is still running when it kills the run with SIGKILL.
"""
import re
import time

from conftest import (ROOT, helm_history, helm_records, kill_hard, playbook, resource_versions, start_playbook,
                      wait_for)

RELEASE_PLAYBOOK = ROOT / "tests/faults/playbooks/release.yml"
CHART = ROOT / "tests/faults/chart"


def release_vars(namespace, name, revision, **more):
    return {"tensafe_kubeconfig": str(ROOT / ".cluster/kubeconfig"), "faults_name": name,
            "faults_namespace": namespace, "faults_chart": str(CHART), "faults_revision": str(revision),
            "faults_timeout": "2m", **more}


def converge(namespace, name, revision, **more):
    return playbook(RELEASE_PLAYBOOK, extra=release_vars(namespace, name, revision, **more))


def interrupt(namespace, name, revision, pending, releases=1, tmp_path=None):
    """Start a rollout that never finishes and kill -9 it once Helm has recorded every release as `pending`."""
    names = [name] + [f"{name}-{index}" for index in range(1, releases)]
    before = {n: len(helm_history(n, namespace)) for n in names}
    run = start_playbook(RELEASE_PLAYBOOK, extra=release_vars(namespace, name, revision, faults_unschedulable=True,
                                                              faults_releases=releases),
                         log=tmp_path / "interrupted.log" if tmp_path else None)
    start = time.monotonic()
    try:
        wait_for(lambda: all(len(helm_history(n, namespace)) > before[n] and helm_history(n, namespace)[-1]["status"]
                             == pending for n in names), f"Helm to record {names} as {pending}")
    finally:
        kill_hard(run, name)
    print(f"interrupted {pending} after {time.monotonic() - start:.1f}s")
    for n in names:
        assert helm_history(n, namespace)[-1]["status"] == pending, helm_history(n, namespace)


def configmap_revision(namespace, name):
    from conftest import sh
    return sh("kubectl", "get", "configmap", name, "-n", namespace, "-o", "jsonpath={.data.revision}").stdout


def test_an_upgrade_interrupted_is_reported_then_recovered(namespace, tmp_path):
    name = namespace  # unique: the processes the interrupted run leaves are found by it
    assert converge(namespace, name, 1).rc == 0
    interrupt(namespace, name, 2, "pending-upgrade", tmp_path=tmp_path)
    records = helm_records(namespace)
    objects = resource_versions(namespace, "deployments", "configmaps")

    plain = converge(namespace, name, 3)
    assert plain.rc != 0, plain
    message = re.sub(r"\s+", " ", plain.out)
    assert f"Helm release {name} in {namespace}) is pending-upgrade at revision 2" in message, plain
    assert '"Preparing upgrade"' in message, plain
    assert f"helm rollback {name} 1 --namespace {namespace} --kubeconfig" in message, plain
    assert "tensafe_recover_stuck_releases=true" in message, plain
    assert helm_records(namespace) == records, "the refused run wrote a Helm release record"
    assert resource_versions(namespace, "deployments", "configmaps") == objects, "the refused run changed objects"

    recovered = converge(namespace, name, 3, tensafe_recover_stuck_releases=True)
    assert recovered.rc == 0, recovered
    assert "rolled back to revision 1" in re.sub(r"\s+", " ", recovered.out), recovered
    history = helm_history(name, namespace)
    assert [h["status"] for h in history[-2:]] == ["superseded", "deployed"], history
    assert history[-2]["description"] == "Rollback to 1", history
    assert configmap_revision(namespace, name) == "3"

    again = converge(namespace, name, 3)
    assert again.rc == 0 and again.recap()["changed"] == 0, again


def test_installs_interrupted_in_parallel_are_reported_then_uninstalled_and_installed(namespace, tmp_path):
    """Two releases: helm_releases runs them as parallel jobs, which outlive a killed playbook (killed too here)."""
    name = namespace
    interrupt(namespace, name, 1, "pending-install", releases=2, tmp_path=tmp_path)
    records = helm_records(namespace)

    plain = converge(namespace, name, 1, faults_releases=2)
    assert plain.rc != 0, plain
    message = re.sub(r"\s+", " ", plain.out)
    for release in (name, f"{name}-1"):
        assert f"Helm release {release} in {namespace}) is pending-install at revision 1" in message, plain
        assert f"helm uninstall {release} --namespace {namespace}" in message, plain
    assert "it was never deployed" in message, plain
    assert helm_records(namespace) == records, "the refused run wrote a Helm release record"

    recovered = converge(namespace, name, 1, faults_releases=2, tensafe_recover_stuck_releases=True)
    assert recovered.rc == 0, recovered
    for release in (name, f"{name}-1"):
        history = helm_history(release, namespace)
        assert [(h["revision"], h["status"]) for h in history] == [(1, "deployed")], history

    again = converge(namespace, name, 1, faults_releases=2)
    assert again.rc == 0 and again.recap()["changed"] == 0, again


def test_the_recovery_switch_is_validated_before_any_write(namespace):
    run = converge(namespace, namespace, 1, tensafe_recover_stuck_releases="maybe")
    assert run.rc != 0, run
    assert "tensafe_recover_stuck_releases" in run.out, run
    assert helm_records(namespace) == {}, "a release was written"
