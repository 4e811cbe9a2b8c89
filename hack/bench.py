#!/usr/bin/env python3
"""make bench: site.yml against plain helm on the hermetic cluster, in one run.

Per run: a full converge of playbooks/site.yml with inventories/local on a clean slate, an idempotent rerun
(must report changed=0), then the same Helm releases (same charts, same values, same order) uninstalled and
applied with plain `helm upgrade --install --wait` back-to-back, twice (fresh, then no-op). Both sides install the
real upstream charts from the chart mirror (tests/chart_mirror.py), with the cluster's KEDA and Prometheus Operator.

Printed: the four timings (mean ± stdev over BENCH_RUNS runs), the ratios against issue 8's targets (no-op rerun
<= 2.0x the plain helm no-op loop, converge <= 1.5x the plain helm install loop), and where the time goes: the tasks
executed (not skipped) and the seconds per role of the converge and of the rerun (hack/callback_plugins/task_count.py),
and the rerun's Kubernetes API requests (the hermetic cluster's audit log, hack/run_stats.py).
"""
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time

import yaml

import run_stats

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import chart_mirror  # noqa: E402  (tests/ is not a package)

TARGETS = {"converge / helm": 1.5, "rerun / helm no-op": 2.0}  # issue 8
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
KUBECONFIG = ROOT / ".cluster/kubeconfig"
BUNDLED = ROOT / "charts"
ENV = dict(os.environ, PATH=f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{os.environ['PATH']}",
           ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), KUBECONFIG=str(KUBECONFIG), TENSAFE_LOCAL_GPUS="1",
           ANSIBLE_NOCOLOR="1")


def sh(*cmd, check=True):
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, check=check)


def timed(*cmd, tasks_file=None):
    start = time.monotonic()
    extra = run_stats.callback_env(tasks_file) if tasks_file else {}
    result = subprocess.run(cmd, cwd=ROOT, env=dict(ENV, **extra), capture_output=True, text=True, check=False)
    if result.returncode:
        sys.exit(f"bench: {' '.join(cmd[:3])} failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
    return time.monotonic() - start, result.stdout


def bench_vars():
    """Every upstream chart from the chart mirror; everything else as inventories/local says."""
    sh(sys.executable, "hack/package-chart.py")  # the app role installs the packaged chart
    out = chart_mirror.archive_vars()
    path = ROOT / ".cluster/bench-vars.yml"
    path.write_text(yaml.safe_dump(out))
    return path


def stack_namespaces():
    """Namespaces inventories/local deploys into; the bench touches nothing else on a shared cluster."""
    sys.path.insert(0, str(ROOT / "hack"))
    chart_sources = __import__("chart-sources")
    variables = chart_sources.load_vars(ROOT / "inventories/local")
    keys = [k for k in variables if k.endswith("_release_namespace")] + ["datastores_namespace"]
    return {variables[k] for k in keys if isinstance(variables.get(k), str) and "{{" not in variables[k]}


NAMESPACES = stack_namespaces()


def releases():
    items = json.loads(sh("helm", "list", "-A", "-o", "json").stdout)
    return sorted((r for r in items if r["namespace"] in NAMESPACES), key=lambda r: r["updated"])


def chart_path(chart):
    """The chart a release was installed from: the mirror's archive (<name>-<version>.tgz), or the app's own chart."""
    archive = chart_mirror.MIRROR / f"{chart}.tgz"
    if archive.is_file():
        return archive
    name = re.sub(r"-v?\d+\.\d+\.\d+.*$", "", chart)
    if (BUNDLED / name).is_dir():
        return BUNDLED / name
    sys.exit(f"bench: no local chart for {chart}")


def clean_slate():
    for rel in releases():
        sh("helm", "uninstall", rel["name"], "-n", rel["namespace"], "--wait", check=False)
    for ns in sorted(n for n in NAMESPACES if not n.startswith("kube-") and n != "default"):
        sh("kubectl", "delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=180s", check=False)


def plain_helm(plan):
    start = time.monotonic()
    for rel, directory, values in plan:
        sh("helm", "upgrade", "--install", rel["name"], str(directory), "-n", rel["namespace"], "--create-namespace",
           "-f", str(values), "--wait", "--timeout", "10m")
    return time.monotonic() - start


def role_table(label, runs):
    """Per role: tasks executed and mean seconds over the runs' task records."""
    roles = sorted({role for tasks in runs for role in run_stats.per_role(tasks)})
    lines = [f"  {label}: {statistics.mean(len(run_stats.executed(t)) for t in runs):.0f} tasks executed "
             f"(not skipped), {statistics.mean(len(t) - len(run_stats.executed(t)) for t in runs):.0f} skipped"]
    rows = []
    for role in roles:
        counts = [run_stats.per_role(t).get(role, (0, 0.0)) for t in runs]
        rows.append((statistics.mean(c[1] for c in counts), role, statistics.mean(c[0] for c in counts)))
    for seconds, role, count in sorted(rows, reverse=True):
        lines.append(f"    {role:16} {count:4.0f} tasks {seconds:7.1f}s")
    return "\n".join(lines)


def main():
    sh("hack/cluster-up.sh")
    varfile = bench_vars()
    site = ("ansible-playbook", "playbooks/site.yml", "-i", "inventories/local", "-e", f"@{varfile}")
    rows, converge_tasks, rerun_tasks, rerun_requests = [], [], [], []
    tasks_file = ROOT / ".cluster/bench-tasks.json"
    for run in range(1, RUNS + 1):
        clean_slate()
        converge, _ = timed(*site, tasks_file=tasks_file)
        converge_tasks.append(run_stats.load_tasks(tasks_file))
        mark = run_stats.AuditMark()
        rerun, out = timed(*site, tasks_file=tasks_file)
        rerun_tasks.append(run_stats.load_tasks(tasks_file))
        rerun_requests.append(mark.requests())
        changed = [int(n) for n in re.findall(r"changed=(\d+)", out)]
        if any(changed):
            sys.exit(f"bench: the rerun reported changed={changed}: not idempotent")
        plan = []
        for rel in releases():
            values = ROOT / f".cluster/bench-values-{rel['namespace']}-{rel['name']}.yaml"
            values.write_text(sh("helm", "get", "values", rel["name"], "-n", rel["namespace"], "-o", "yaml").stdout)
            plan.append((rel, chart_path(rel["chart"]), values))
        for rel, _, _ in plan:
            sh("helm", "uninstall", rel["name"], "-n", rel["namespace"], "--wait")
        helm_fresh = plain_helm(plan)
        helm_rerun = plain_helm(plan)
        rows.append((converge, rerun, helm_fresh, helm_rerun))
        print(f"run {run}: converge {converge:.1f}s  rerun {rerun:.1f}s  helm {helm_fresh:.1f}s  "
              f"helm no-op {helm_rerun:.1f}s  ({len(plan)} releases; load average {os.getloadavg()[0]:.1f})",
              flush=True)

    def stat(values):
        mean = statistics.mean(values)
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{mean:6.1f}s ± {spread:4.1f}"

    cols = list(zip(*rows))
    print(f"\n{RUNS} runs on the hermetic cluster; the real upstream charts of {chart_mirror.MIRROR}")
    for label, col in zip(("site.yml converge", "site.yml rerun", "plain helm install", "plain helm no-op"), cols):
        print(f"  {label:20} {stat(col)}")
    ratios = {
        "converge / helm": [c / h for c, _, h, _ in rows],
        "rerun / helm": [r / h for _, r, h, _ in rows],
        "rerun / helm no-op": [r / n for _, r, _, n in rows],
    }
    for label, values in ratios.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        mean = statistics.mean(values)
        target = TARGETS.get(label)
        verdict = f"  target <= {target:.1f}: {'met' if mean <= target else 'MISSED'}" if target else ""
        print(f"  {label:20} {mean:5.2f} ± {spread:.2f}{verdict}")
    print("\nWhere the time goes (mean per run; seconds are the tasks' own, includes and play overhead aside):")
    print(role_table("converge", converge_tasks))
    print(role_table("no-op rerun", rerun_tasks))
    if all(r is not None for r in rerun_requests):
        print("\nThe last no-op rerun's Kubernetes API requests (audit log):")
        print("\n".join("  " + line for line in run_stats.summary([], rerun_requests[-1]).splitlines()[1:]))


if __name__ == "__main__":
    main()
