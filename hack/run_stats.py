#!/usr/bin/env python3
"""What one ansible-playbook run cost: tasks executed (hack/callback_plugins/task_count.py) and Kubernetes API
requests (the hermetic cluster's audit log, .cluster/logs/audit.log). Used by make bench and tests/budget.

    hack/run_stats.py TASKS.json [AUDIT_SLICE.log]     prints the summary of one run
"""
import collections
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CALLBACKS = ROOT / "hack/callback_plugins"
AUDIT_LOG = ROOT / ".cluster/logs/audit.log"
READ_VERBS = {"get", "list"}


def callback_env(tasks_file):
    """Environment entries that make ansible-playbook write its task record to tasks_file."""
    return {"ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS), "ANSIBLE_CALLBACKS_ENABLED": "task_count",
            "TASK_COUNT_FILE": str(tasks_file)}


def load_tasks(path):
    return json.loads(pathlib.Path(path).read_text())["tasks"]


def executed(tasks):
    """Task results that were not skipped."""
    return [t for t in tasks if t["status"] != "skipped"]


def per_role(tasks):
    """{role: (executed tasks, seconds)}, the play's own tasks under "(play)"."""
    out = collections.defaultdict(lambda: [0, 0.0])
    for t in executed(tasks):
        entry = out[t["role"] or "(play)"]
        entry[0] += 1
        entry[1] += t["seconds"]
    return {role: tuple(v) for role, v in out.items()}


class AuditMark:
    """Remember where the audit log ends now; requests() returns what the API server logged since."""

    def __init__(self, path=AUDIT_LOG):
        self.path = pathlib.Path(path)
        self.offset = self.path.stat().st_size if self.path.exists() else None

    def requests(self):
        if self.offset is None:
            return None
        with self.path.open("rb") as log:
            log.seek(self.offset)
            return parse_audit(log.read().decode())


def parse_audit(text):
    """Resource requests (not discovery, not watches) of the admin kubeconfig: helm, the kubernetes.core modules."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        event = json.loads(line)
        ref = event.get("objectRef")
        agent = event.get("userAgent", "")
        if not ref or agent.startswith("kubectl"):  # discovery has no objectRef; kubectl is the harness, not the run
            continue
        out.append({"verb": event["verb"], "uri": event["requestURI"], "agent": agent.split("/")[0],
                    "code": event.get("responseStatus", {}).get("code")})
    return out


def duplicate_reads(requests):
    """{uri: count} of the reads made more than once (same verb, same URI with its query)."""
    counts = collections.Counter(r["verb"] + " " + r["uri"] for r in requests if r["verb"] in READ_VERBS)
    return {uri: n for uri, n in counts.items() if n > 1}


def summary(tasks, requests=None):
    lines = []
    done = executed(tasks)
    lines.append(f"tasks: {len(done)} executed (not skipped), {len(tasks) - len(done)} skipped, "
                 f"{sum(t['status'] == 'changed' for t in tasks)} changed")
    for role, (count, seconds) in sorted(per_role(tasks).items(), key=lambda kv: -kv[1][1]):
        lines.append(f"  {role:16} {count:4d} tasks {seconds:7.1f}s")
    if requests is not None:
        reads = [r for r in requests if r["verb"] in READ_VERBS]
        dups = duplicate_reads(requests)
        by_agent = collections.Counter(r["agent"] for r in reads)
        lines.append(f"API: {len(requests)} requests, {len(reads)} reads "
                     f"({', '.join(f'{a} {n}' for a, n in by_agent.most_common())}), "
                     f"{len(requests) - len(reads)} writes; {sum(dups.values()) - len(dups)} repeated reads of "
                     f"{len(dups)} URIs")
        for uri, n in sorted(dups.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {n}x {uri}")
    return "\n".join(lines)


if __name__ == "__main__":
    audit = parse_audit(pathlib.Path(sys.argv[2]).read_text()) if len(sys.argv) > 2 else None
    print(summary(load_tasks(sys.argv[1]), audit))
