"""Ansible callback: which tasks a run executed, and how long each role took (make bench, tests/budget).

Not part of the collection. Enable it next to the normal output with
    ANSIBLE_CALLBACK_PLUGINS=hack/callback_plugins ANSIBLE_CALLBACKS_ENABLED=task_count TASK_COUNT_FILE=out.json
and it writes one JSON document at the end of the run:
    {"tasks": [{"role", "task", "path", "action", "status", "seconds"}...],   # one per task and host, includes too
     "includes": <number of files included>}
status is ok, changed, failed, unreachable or skipped (a loop whose items were all skipped is skipped).
"""
import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: task_count
type: aggregate
short_description: records every task result (role, status, seconds) as JSON for the budget test and make bench
description: Writes the file named by the TASK_COUNT_FILE environment variable at the end of the playbook.
requirements: [enable it in callbacks_enabled]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_count"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._tasks = []
        self._includes = 0
        self._started = {}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._started[task._uuid] = time.monotonic()

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    def v2_playbook_on_include(self, included_file):
        self._includes += 1

    def _record(self, result, status):
        task = result._task
        role = task._role.get_name(include_role_fqcn=False) if task._role else ""
        start = self._started.get(task._uuid)
        self._tasks.append({
            "role": role,
            "task": task.get_name(),
            "path": task.get_path() or "",
            "action": task.action,
            "status": status,
            "seconds": round(time.monotonic() - start, 3) if start else 0.0,
        })

    def v2_runner_on_ok(self, result):
        self._record(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("TASK_COUNT_FILE")
        if path:
            with open(path, "w", encoding="utf-8") as out:
                json.dump({"tasks": self._tasks, "includes": self._includes}, out, indent=1)
