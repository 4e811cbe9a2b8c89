#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 TenSafe platform team
# Apache-2.0 OR GNU General Public License v3.0+ (see https://www.apache.org/licenses/LICENSE-2.0 or
# https://www.gnu.org/licenses/gpl-3.0.txt); ansible-test requires the GPLv3 notice on module files.
# Documentation only: the action plugin plugins/action/durable_file.py does the work, on the controller.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: durable_file
short_description: Write a file that must not be lost, durably, never overwriting one
version_added: 1.0.0
description:
  - Runs on the Ansible controller (an action plugin; this file holds only its documentation), so the file is
    written on the control host, whatever host the play targets.
  - Writes O(content) to a temporary file next to the destination (mode O(mode) from its creation), flushes it to
    disk (fsync), links it into place atomically (the destination appears whole or not at all), flushes the
    directory, reads the destination back and compares it byte for byte.
  - Never overwrites an existing destination that holds other content (it fails); one with the same content is left
    alone (idempotent).
  - When the destination cannot be written (for example C(No space left on device)), tries each of
    O(fallback_paths) in turn and returns the path it wrote. Temporary files are always removed.
  - With O(probe=true) it only proves that a file of this size can be written in each location, without creating
    any destination; in check mode it compares the free space of each directory with the size instead.
  - With O(vault_password), the file read back must also decrypt with it (ansible-vault format).
  - M(ansible.builtin.copy) also renames a temporary file into place, but it does not fsync the file or its
    directory, does not read the result back, and with O(ansible.builtin.copy#module:force=false) does not tell an
    existing file with other content from a successful write.
author:
  - TenSafe platform team (@tensafe)
options:
  path:
    description:
      - Absolute path of the destination.
    type: path
    required: true
  content:
    description:
      - What to write. Never logged.
    type: str
    required: true
  fallback_paths:
    description:
      - Destinations to try, in order, when O(path) cannot be written.
    type: list
    elements: path
    default: []
  mode:
    description:
      - Permissions of the file, octal, set on the temporary file when it is created.
    type: str
    default: "0600"
  vault_password:
    description:
      - When set, O(content) is ansible-vault encrypted and the file read back must decrypt with this password.
    type: str
  probe:
    description:
      - Only prove that O(content) fits in each location (temporary file written, fsynced, read back, removed).
    type: bool
    default: false
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: In check mode nothing is written; free space and permissions are compared with the size instead.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: none
notes:
  - The read-back reads the file the kernel has flushed; it does not bypass the page cache.
"""

EXAMPLES = r"""
- name: Store the unseal keys, or fall back to a second disk
  tensafe.k8s.durable_file:
    path: /secure/vault-init.yml
    fallback_paths: [/mnt/usb/vault-init.yml]
    content: "{{ init_document | to_nice_yaml | ansible.builtin.vault(password) }}"
  register: stored
  no_log: true

- name: Prove beforehand that a file of that size fits
  tensafe.k8s.durable_file:
    path: /secure/vault-init.yml
    content: "{{ placeholder_of_the_same_size }}"
    probe: true
"""

RETURN = r"""
path:
  description: The destination written (O(path) or one of O(fallback_paths)); with O(probe=true), O(path).
  returned: always
  type: str
  sample: /secure/vault-init.yml
size:
  description: Bytes of O(content).
  returned: always
  type: int
  sample: 1605
stored:
  description: Whether O(content) is now in RV(path) (false with O(probe=true)).
  returned: always
  type: bool
  sample: true
fallback:
  description: Whether the content went to one of O(fallback_paths) because O(path) could not be written.
  returned: always
  type: bool
  sample: false
errors:
  description: Each location that could not be written, with the reason (no content).
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/secure/vault-init.yml", "error": "[Errno 28] No space left on device"}]
"""
