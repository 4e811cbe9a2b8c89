# Copyright (c) 2026 TenSafe platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""tensafe.k8s.helm_wait: wait for the Helm jobs tensafe.k8s.helm_async started, remove their records, and report
the outcome of each release in one task. Documentation: plugins/modules/helm_wait.py.

One task instead of three (an async_status wait loop, an async_status cleanup loop and a set_fact): every task of a
no-op rerun counts (issue 8). Each poll and each cleanup is the ansible.builtin.async_status module, as before.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("jobs", "timeout", "delay", "outcomes"))

    def _async_status(self, jid, mode, async_dir, task_vars):
        return self._execute_module(module_name="ansible.legacy.async_status", task_vars=task_vars,
                                    module_args={"jid": jid, "mode": mode, "_async_dir": async_dir})

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = self.validate_argument_spec(argument_spec={
            "jobs": {"type": "list", "elements": "dict", "required": True},
            "timeout": {"type": "int", "required": True},
            "delay": {"type": "float", "default": 1.0},
            "outcomes": {"type": "dict", "default": {}},
        })[1]
        if self._task.check_mode:
            raise AnsibleActionFail("helm_wait does not run in check mode: the releases are predicted one by one")
        async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        jobs = args["jobs"]
        for job in jobs:
            for key in ("jid", "name", "namespace"):
                if not job.get(key):
                    raise AnsibleActionFail("every item of jobs needs jid, name and namespace; one lacks %s" % key)
        pending = {job["jid"]: job for job in jobs}
        done = {}
        deadline = time.monotonic() + args["timeout"]
        while pending:
            for jid in list(pending):
                status = self._async_status(jid, "status", async_dir, task_vars)
                if status.get("finished"):
                    done[jid] = status
                    del pending[jid]
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(args["delay"])
        # The job records hold the release values (the module's result): removed whatever the outcome.
        for job in jobs:
            self._async_status(job["jid"], "cleanup", async_dir, task_vars)

        outcomes = dict(args["outcomes"] or {})
        releases, failed = [], []
        for job in jobs:
            title = job.get("title") or job["name"]
            status = done.get(job["jid"])
            if status is None:
                error = "still running after %ss" % args["timeout"]
            elif status.get("failed"):
                error = to_text(status.get("msg") or "no message")
            else:
                error = None
            entry = {"name": job["name"], "namespace": job["namespace"], "title": title,
                     "changed": bool(status and status.get("changed")) and error is None}
            if error is None:
                entry["revision"] = int((status.get("status") or {}).get("revision") or 0)
                outcomes["%s/%s" % (job["namespace"], job["name"])] = {"changed": entry["changed"],
                                                                       "revision": entry["revision"]}
            else:
                entry["error"] = error
                failed.append({"name": job["name"], "namespace": job["namespace"], "title": title,
                               "failure_hint": job.get("failure_hint") or "", "error": error})
            releases.append(entry)
        # Only names, revisions and errors: the values and manifests of the jobs' results stay out of the output.
        result.update(changed=any(r["changed"] for r in releases), releases=releases, failed_releases=failed,
                      ansible_facts={"common_helm_releases": outcomes})
        return result
