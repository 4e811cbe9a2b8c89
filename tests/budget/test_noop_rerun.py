"""What a no-op rerun of site.yml costs, counted, not timed (issue 8): a budget that fails when a change adds work
to every run.

On the hermetic cluster, with inventories/local and the real upstream charts of the chart mirror (the whole stack:
7 upstream releases, the app, Vault configuration against the cluster's OpenBao): a converge, then a rerun that
must change nothing. The rerun is counted two ways:
- tasks: hack/callback_plugins/task_count.py records every task result; the ones not skipped are the work a run
  repeats every time (budget: TASK_BUDGET);
- Kubernetes API reads: the API server's audit log (hack/cluster-up.sh logs the admin user's requests) between the
  rerun's start and end. A read the run already made is waste: every GET/LIST of the playbook's own API client
  (kubernetes.core k8s, k8s_info, lookups) must be made once at most. Helm's reads of its release records belong to
  kubernetes.core.helm: a no-op call lists the release's records once (helm_info: 4 times), so they are budgeted
  per release (HELM_READS_PER_RELEASE = 1): a second Helm call for a release (a helm_info next to the upgrade) fails.
The stack is removed afterwards when the test created it. Counts and per-role seconds are printed (pytest -s).
"""
import collections
import contextlib
import json
import os
import pathlib
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))
import run_stats  # noqa: E402  (hack/ is not a package)

sys.path.insert(0, str(ROOT / "tests"))
import chart_mirror  # noqa: E402  (tests/ is not a package)
from stack_as_found import AsFound, stack_namespaces  # noqa: E402

# Issue 8's targets are 60 tasks, no API read twice and one Helm read per release; the budgets are the targets (a
# change that adds work to every run fails here; one that needs more says why in its review). Measured: 241 tasks
# before issue 8, 102 after its structural merge, 59 after the speed work (0 repeated client reads, 0 Helm over-reads).
TASK_TARGET, TASK_BUDGET = 60, int(os.environ.get("BUDGET_TASKS", "60"))
# Reads the playbook's own client repeats: distinct URIs read more than once (target 0).
REPEATED_READ_BUDGET = int(os.environ.get("BUDGET_REPEATED_READS", "0"))
HELM_READS_PER_RELEASE = int(os.environ.get("BUDGET_HELM_READS_PER_RELEASE", "1"))
# Releases and namespaces whose Helm reads exceed one kubernetes.core.helm call's (target 0).
HELM_OVER_BUDGET = int(os.environ.get("BUDGET_HELM_OVER", "0"))

CLUSTER = ROOT / ".cluster"
KUBECONFIG = CLUSTER / "kubeconfig"
ENV = dict(os.environ, PATH=f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{os.environ['PATH']}",
           ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), KUBECONFIG=str(KUBECONFIG), TENSAFE_LOCAL_GPUS="1",
           ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
VAULT_PATHS = ["secret/metadata/tensafe", "sys/policies/acl/tensafe", "sys/auth/kubernetes"]


def sh(*cmd, check=True, **kwargs):
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, check=check, **kwargs)


def bao(path, method="GET"):
    addr = (CLUSTER / "openbao/addr").read_text().strip()
    token = (CLUSTER / "openbao/token").read_text().strip()
    request = urllib.request.Request(f"{addr}/v1/{path}", method=method, headers={"X-Vault-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        if error.code in (400, 404):
            return None
        raise


class Rerun:
    def __init__(self, recap, tasks, requests):
        self.recap, self.tasks, self.requests = recap, tasks, requests

    def __repr__(self):
        return f"<no-op rerun: {len(self.tasks)} task results, {len(self.requests)} API requests>"


@pytest.fixture(scope="module")
def rerun(tmp_path_factory):
    sh("hack/cluster-up.sh")
    if not run_stats.AUDIT_LOG.exists():
        pytest.fail(f"{run_stats.AUDIT_LOG} missing: the cluster was started before hack/cluster-up.sh logged "
                    "API requests; restart it (hack/cluster-down.sh && hack/cluster-up.sh)")
    work = tmp_path_factory.mktemp("budget")
    varfile = work / "vars.yml"
    varfile.write_text(yaml.safe_dump(chart_mirror.archive_vars()))
    keep = os.environ.get("BUDGET_KEEP_STACK")  # iterating on the budget: the next converge is then a rerun too
    vault_absent = [] if keep else [path for path in VAULT_PATHS if bao(path) is None]
    site = ("ansible-playbook", "playbooks/site.yml", "-i", "inventories/local", "-e", f"@{varfile}")
    try:
        with contextlib.nullcontext() if keep else AsFound(sh, stack_namespaces()):
            start = time.monotonic()
            converge = sh(*site, check=False, timeout=1800)
            (work / "converge.log").write_text(converge.stdout + converge.stderr)
            assert converge.returncode == 0, f"site.yml converge failed (log {work}):\n{converge.stdout[-5000:]}"
            print(f"\nconverge: {time.monotonic() - start:.0f}s")
            mark = run_stats.AuditMark()
            tasks_file = work / "rerun-tasks.json"
            start = time.monotonic()
            result = subprocess.run(site, cwd=ROOT, env=dict(ENV, **run_stats.callback_env(tasks_file)),
                                    capture_output=True, text=True, timeout=1800)
            (work / "rerun.log").write_text(result.stdout + result.stderr)
            assert result.returncode == 0, f"site.yml rerun failed (log {work}):\n{result.stdout[-5000:]}"
            seconds = time.monotonic() - start
            tasks, requests = run_stats.load_tasks(tasks_file), mark.requests()
            print(f"no-op rerun: {seconds:.0f}s\n{run_stats.summary(tasks, requests)}")
            yield Rerun(re.findall(r"^localhost\s+:.*$", result.stdout, re.M), tasks, requests)
    finally:
        for path in vault_absent:
            bao(path, method="DELETE")


def test_the_rerun_changes_nothing(rerun):
    assert rerun.recap and all(re.search(r"changed=0\b", line) for line in rerun.recap), rerun.recap
    changed = [f"{t['role']}: {t['task']}" for t in rerun.tasks if t["status"] == "changed"]
    assert not changed, changed


def test_the_audit_log_sees_the_run(rerun):
    """Control: the read counts below mean something only if the rerun's requests reach the log."""
    agents = {r["agent"] for r in rerun.requests}
    assert {"Helm", "OpenAPI-Generator"} <= agents, f"requests seen from {agents or 'nobody'}"


def test_tasks_within_budget(rerun):
    executed = run_stats.executed(rerun.tasks)
    by_role = run_stats.per_role(rerun.tasks)
    assert len(executed) <= TASK_BUDGET, (
        f"a no-op rerun of site.yml executed {len(executed)} tasks (budget {TASK_BUDGET}, target {TASK_TARGET}): "
        + ", ".join(f"{role} {count}" for role, (count, _) in sorted(by_role.items()))
        + "\n" + "\n".join(f"  {t['role'] or '(play)'}: {t['task']} ({t['path']})" for t in executed))


# The converge lock (issue 13) is a protocol, not a read to cache: kubernetes.core.k8s reads its Lease before each
# write, so the deciding read, the take (a patch with the resourceVersion read) and the give-back (a delete with a
# resourceVersion precondition) each GET it. Budgeted apart, like Helm's reads of its release records.
LOCK_LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/tensafe-converge"
LOCK_READS_BUDGET = 3


def test_api_reads_repeated_within_budget(rerun):
    client = [r for r in rerun.requests if r["agent"] != "Helm" and not r["uri"].startswith(LOCK_LEASE)]
    lock_reads = [r for r in rerun.requests if r["uri"].startswith(LOCK_LEASE) and r["verb"] in run_stats.READ_VERBS]
    print(f"converge lock: {len(lock_reads)} reads of its Lease (budget {LOCK_READS_BUDGET})")
    assert len(lock_reads) <= LOCK_READS_BUDGET, f"the converge lock read its Lease {len(lock_reads)} times"
    repeated = run_stats.duplicate_reads(client)
    print(f"client URIs read more than once: {len(repeated)} (budget {REPEATED_READ_BUDGET}, target 0)")
    assert len(repeated) <= REPEATED_READ_BUDGET, "the no-op rerun read these more than once:\n" + "\n".join(
        f"  {n}x {uri}" for uri, n in sorted(repeated.items()))


def test_helm_reads_within_budget(rerun):
    """A no-op kubernetes.core.helm lists the release's records once and the namespace's releases once (measured on
    the hermetic cluster); helm_info lists the records 4 times. So: one records read per release, and per namespace
    no more release listings than releases."""
    records, listings = collections.Counter(), collections.Counter()
    for r in rerun.requests:
        if r["agent"] != "Helm" or r["verb"] not in run_stats.READ_VERBS or "/secrets" not in r["uri"]:
            continue
        namespace = r["uri"].split("/")[4]
        selector = urllib.parse.parse_qs(urllib.parse.urlsplit(r["uri"]).query).get("labelSelector", [""])[0]
        labels = dict(item.split("=", 1) for item in selector.split(",") if "=" in item)
        if "name" in labels:
            records[(namespace, labels["name"])] += 1
        else:
            listings[namespace] += 1
    releases = collections.Counter(namespace for namespace, _ in records)
    over = [f"  {n}x the records of {ns}/{name}" for (ns, name), n in sorted(records.items())
            if n > HELM_READS_PER_RELEASE]
    over += [f"  {n}x the releases of {ns} ({releases[ns]} release(s) there)" for ns, n in sorted(listings.items())
             if n > max(releases[ns], 1) * HELM_READS_PER_RELEASE]
    print(f"Helm reads over one kubernetes.core.helm call's: {len(over)} (budget {HELM_OVER_BUDGET}, target 0)")
    assert len(over) <= HELM_OVER_BUDGET, "Helm read more than one kubernetes.core.helm call per release does:\n" + "\n".join(over)
