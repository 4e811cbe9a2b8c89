# Copyright (c) 2026 TenSafe platform team
# Apache-2.0 OR GNU General Public License v3.0+ (see https://www.apache.org/licenses/LICENSE-2.0 or
# https://www.gnu.org/licenses/gpl-3.0.txt); ansible-test requires the GPLv3 notice on plugin files.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: converge_holder
short_description: Who is running this playbook, to name the holder of the converge lock
version_added: 1.0.0
description:
  - Returns the controller's user and host name, the process ID of C(ansible-playbook) and the playbook file(s) of
    its command line, for the C(holderIdentity) of the converge lock (tensafe.k8s.common's lock entry point).
  - With I(pid), also says whether that process runs on this host (a lock held by a process of this host that is gone
    is stale).
options:
  pid:
    description: A process ID to check on this host.
    type: int
"""

EXAMPLES = r"""
- name: Show who holds the lock
  ansible.builtin.debug:
    msg: "{{ lookup('tensafe.k8s.converge_holder') }}"
"""

RETURN = r"""
_raw:
  description: One dict with C(user), C(host), C(pid), C(playbook) and, with I(pid), C(pid_running).
  type: list
  elements: dict
"""

import getpass
import multiprocessing
import os
import socket
import sys

from ansible.plugins.lookup import LookupBase


def _running(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        # Task workers are forked from ansible-playbook: its PID is the worker's parent.
        main = multiprocessing.current_process().name == "MainProcess"
        holder = {
            "user": getpass.getuser(),
            "host": socket.gethostname(),
            "pid": os.getpid() if main else os.getppid(),
            "playbook": " ".join(os.path.basename(arg) for arg in sys.argv[1:] if arg.endswith((".yml", ".yaml"))),
        }
        if self.get_option("pid") is not None:
            holder["pid_running"] = _running(self.get_option("pid"))
        return [holder]
