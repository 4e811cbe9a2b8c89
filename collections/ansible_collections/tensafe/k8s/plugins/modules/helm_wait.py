#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 TenSafe platform team
# Apache-2.0 OR GNU General Public License v3.0+ (see https://www.apache.org/licenses/LICENSE-2.0 or
# https://www.gnu.org/licenses/gpl-3.0.txt); ansible-test requires the GPLv3 notice on module files.
# Documentation only: the action plugin plugins/action/helm_wait.py does the work.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: helm_wait
short_description: Wait for the Helm releases started as async jobs, remove the job records, record the outcome
version_added: 1.0.0
description:
  - The second half of tensafe.k8s.common's parallel rollout (tasks_from helm_releases). The first half starts every
    release as an async job of C(tensafe.k8s.helm_async) (a runtime alias of M(kubernetes.core.helm), C(poll=0)); this waits for all of them in one task.
  - Polls each job with the M(ansible.builtin.async_status) module every O(delay) seconds until all have finished
    or O(timeout) seconds have passed, then removes every job record (they hold the release values).
  - A failed or unfinished release does not stop the wait for the others; they are returned in RV(failed_releases)
    and the task itself does not fail, so the caller explains all failures together.
  - >-
    Returns the outcome of each release that rolled out as the fact C(common_helm_releases), merged into
    O(outcomes), as C({'<namespace>/<name>': {changed, revision}}).
  - Returns no values and no manifests, so its result holds no secret of the releases.
  - Does not run in check mode (the caller predicts releases one by one there).
options:
  jobs:
    description:
      - One item per started job, with keys C(jid) (the C(ansible_job_id) of the async task), C(name), C(namespace),
        and optionally C(title) and C(failure_hint).
    type: list
    elements: dict
    required: true
  timeout:
    description: Seconds to wait for all jobs together.
    type: int
    required: true
  delay:
    description: Seconds between two rounds of polls.
    type: float
    default: 1.0
  outcomes:
    description: The outcomes recorded so far (C(common_helm_releases)); the releases of this call are merged in.
    type: dict
    default: {}
author:
  - TenSafe platform team (@tensafe)
"""

EXAMPLES = r"""
- name: Wait for the releases to roll out
  tensafe.k8s.helm_wait:
    jobs:
      - jid: "{{ started.results[0].ansible_job_id }}"
        name: keda
        namespace: keda
    timeout: 660
    outcomes: "{{ common_helm_releases | default({}) }}"
  register: waited
"""

RETURN = r"""
releases:
  description: Each release with C(name), C(namespace), C(title), C(changed), and C(revision) or C(error).
  returned: always
  type: list
  elements: dict
failed_releases:
  description: The releases that failed or did not finish, with C(name), C(namespace), C(title), C(failure_hint), C(error).
  returned: always
  type: list
  elements: dict
ansible_facts:
  description: C(common_helm_releases), O(outcomes) with the releases that rolled out.
  returned: always
  type: dict
"""
