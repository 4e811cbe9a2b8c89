#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 TenSafe platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: durable_file
short_description: Write a file that must not be lost, durably, never overwriting one
version_added: 1.0.0
description:
  - Writes O(content) to a temporary file next to the destination (mode O(mode) from its creation), flushes it to
    disk (fsync), links it into place atomically (the destination appears whole or not at all), flushes the
    directory, reads the destination back and compares it byte for byte.
  - Never overwrites an existing destination that holds other content (it fails); one with the same content is left
    alone (idempotent).
  - When the destination cannot be written (for example C(No space left on device)), tries each of
    O(fallback_paths) in turn and returns the path it wrote. Temporary files are always removed.
  - With O(probe=true) it only proves that a file of this size can be written in each location, without creating
    any destination; in check mode it compares the free space of each directory with the size instead.
  - M(ansible.builtin.copy) also renames a temporary file into place, but it does not fsync the file or its
    directory, does not read the result back, and with O(ansible.builtin.copy#module:force=false) does not tell an
    existing file with other content from a successful write.
author:
  - TenSafe platform team
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
  probe:
    description:
      - Only prove that O(content) fits in each location (temporary file written, fsynced, read back, removed).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: In check mode nothing is written; free space and permissions are compared with the size instead.
  diff_mode:
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

import errno
import os
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native


class DestinationExists(Exception):
    pass


def _fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(directory, name, data, mode):
    """A fsynced temporary file next to the destination; the caller removes or links it."""
    fd, tmp = tempfile.mkstemp(prefix=".%s." % name, suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def write_one(path, data, mode, probe):
    """Write data to path durably; returns True when it changed something. Raises OSError or DestinationExists."""
    directory, name = os.path.split(path)
    if not probe and os.path.lexists(path):
        if _read(path) == data:
            return False
        raise DestinationExists("%s exists with other content: it is never overwritten" % path)
    tmp = _write_temp(directory, name, data, mode)
    try:
        if _read(tmp) != data:
            raise IOError(errno.EIO, "read back differs from what was written", tmp)
        if probe:
            return False
        try:
            # link() fails when the destination appeared meanwhile: nothing is ever replaced.
            os.link(tmp, path)
        except OSError as error:
            if error.errno == errno.EEXIST:
                raise DestinationExists("%s appeared while writing: it is never overwritten" % path)
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            if os.path.lexists(path):
                raise DestinationExists("%s exists: it is never overwritten" % path)
            os.rename(tmp, path)
        _fsync_dir(directory)
        if _read(path) != data or stat.S_IMODE(os.stat(path).st_mode) != mode:
            raise IOError(errno.EIO, "read back of the destination differs from what was written", path)
        return True
    finally:
        _unlink_quietly(tmp)
        if not probe:
            try:
                _fsync_dir(directory)
            except OSError:
                pass


def check_one(path, data, probe):
    """Check mode: would data fit at path?"""
    directory = os.path.dirname(path)
    if not probe and os.path.lexists(path):
        if _read(path) == data:
            return False
        raise DestinationExists("%s exists with other content: it is never overwritten" % path)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES), directory)
    vfs = os.statvfs(directory)
    if vfs.f_bavail * vfs.f_frsize < len(data):
        raise OSError(errno.ENOSPC, "%s (%d bytes free, %d needed)" % (os.strerror(errno.ENOSPC),
                                                                      vfs.f_bavail * vfs.f_frsize, len(data)), directory)
    return not probe


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            content=dict(type="str", required=True, no_log=True),
            fallback_paths=dict(type="list", elements="path", default=[]),
            mode=dict(type="str", default="0600"),
            probe=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        mode = int(params["mode"], 8)
    except ValueError:
        module.fail_json(msg="mode must be octal, e.g. 0600, got %s" % params["mode"])
    data = to_bytes(params["content"], errors="surrogate_or_strict")
    paths = [params["path"]] + params["fallback_paths"]
    for path in paths:
        if not os.path.isabs(path):
            module.fail_json(msg="%s is not an absolute path" % path)
    result = dict(path=params["path"], size=len(data), stored=False, fallback=False, errors=[], changed=False)

    if params["probe"]:
        for path in paths:
            try:
                if module.check_mode:
                    check_one(path, data, True)
                else:
                    write_one(path, data, mode, True)
            except (OSError, IOError, DestinationExists) as error:
                result["errors"].append(dict(path=path, error=to_native(error)))
        if result["errors"]:
            module.fail_json(msg="; ".join("%s cannot hold %d bytes: %s" % (e["path"], len(data), e["error"])
                                           for e in result["errors"]), **result)
        module.exit_json(**result)

    for index, path in enumerate(paths):
        try:
            changed = check_one(path, data, False) if module.check_mode else write_one(path, data, mode, False)
        except (OSError, IOError, DestinationExists) as error:
            result["errors"].append(dict(path=path, error=to_native(error)))
            continue
        result.update(path=path, stored=True, fallback=index > 0, changed=changed)
        module.exit_json(**result)
    module.fail_json(msg="could not write %s" % "; ".join("%s (%s)" % (e["path"], e["error"]) for e in result["errors"]),
                     **result)


if __name__ == "__main__":
    main()
