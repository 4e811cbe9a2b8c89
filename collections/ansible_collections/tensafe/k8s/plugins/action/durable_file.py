# Copyright (c) 2026 TenSafe platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""tensafe.k8s.durable_file: write a file that must not be lost.

An action plugin, so it runs on the controller: the file belongs on the control host, and the read back can be
decrypted with ansible-vault here. Documentation: plugins/modules/durable_file.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import stat
import tempfile

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.parsing.vault import VaultLib, VaultSecret
from ansible.plugins.action import ActionBase


class DestinationExists(Exception):
    pass


def _fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def _write_temp(directory, name, data, mode):
    """A fsynced temporary file next to the destination, mode set before any byte is written."""
    fd, tmp = tempfile.mkstemp(prefix=".%s." % name, suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


def _verify(path, data, mode, vault):
    if _read(path) != data:
        raise IOError(errno.EIO, "read back differs from what was written", path)
    if stat.S_IMODE(os.stat(path).st_mode) != mode:
        raise IOError(errno.EIO, "mode is not %o" % mode, path)
    if vault is not None:
        try:
            vault.decrypt(_read(path))
        except AnsibleError as error:
            raise IOError(errno.EIO, "read back does not decrypt: %s" % to_native(error), path)


def write_one(path, data, mode, probe, vault):
    """Write data to path durably; True when something changed. Raises OSError/IOError or DestinationExists."""
    directory, name = os.path.split(path)
    if not probe and os.path.lexists(path):
        if _read(path) == data:
            return False
        raise DestinationExists("exists with other content, and is never overwritten")
    tmp = _write_temp(directory, name, data, mode)
    try:
        _verify(tmp, data, mode, vault)
        if probe:
            return False
        try:
            # link() fails when the destination appeared meanwhile: nothing is ever replaced.
            os.link(tmp, path)
        except OSError as error:
            if error.errno == errno.EEXIST:
                raise DestinationExists("appeared while writing, and is never overwritten")
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            if os.path.lexists(path):  # no hard links on this filesystem
                raise DestinationExists("exists, and is never overwritten")
            os.rename(tmp, path)
        _fsync_dir(directory)
        _verify(path, data, mode, vault)
        return True
    finally:
        try:
            os.unlink(tmp)
            _fsync_dir(directory)
        except OSError:
            pass


def check_one(path, data, probe):
    """Check mode: would data fit at path?"""
    directory = os.path.dirname(path)
    if not probe and os.path.lexists(path):
        if _read(path) == data:
            return False
        raise DestinationExists("exists with other content, and is never overwritten")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES), directory)
    vfs = os.statvfs(directory)
    free = vfs.f_bavail * vfs.f_frsize
    if free < len(data):
        raise OSError(errno.ENOSPC, "%s (%d bytes free, %d needed)" % (os.strerror(errno.ENOSPC), free, len(data)))
    return not probe


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("path", "content", "fallback_paths", "mode", "probe", "vault_password"))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        check_mode = self._task.check_mode or self._play_context.check_mode
        try:
            path = os.path.expanduser(to_text(args["path"]))
            content = args["content"]
            fallback = [os.path.expanduser(to_text(p)) for p in (args.get("fallback_paths") or [])]
            mode = int(to_text(args.get("mode", "0600")), 8)
            probe = boolean(args.get("probe", False), strict=True)
        except (KeyError, TypeError, ValueError) as error:
            return dict(failed=True, msg="durable_file needs path and content (mode octal, probe a boolean): %s" % error)
        vault = None
        if args.get("vault_password"):
            vault = VaultLib([("default", VaultSecret(to_bytes(args["vault_password"])))])
        data = to_bytes(content, errors="surrogate_or_strict")
        paths = [path] + fallback
        relative = [p for p in paths if not os.path.isabs(p)]
        if relative:
            return dict(failed=True, msg="not absolute paths: %s" % ", ".join(relative))
        result.update(path=path, size=len(data), stored=False, fallback=False, errors=[], changed=False)

        for index, candidate in enumerate(paths):
            try:
                if check_mode:
                    changed = check_one(candidate, data, probe)
                else:
                    changed = write_one(candidate, data, mode, probe, vault)
            except (OSError, IOError, DestinationExists) as error:
                reason = error.strerror if isinstance(error, (OSError, IOError)) and error.strerror else to_native(error)
                if isinstance(error, (OSError, IOError)) and error.errno:
                    reason = "[Errno %d] %s" % (error.errno, reason)
                result["errors"].append(dict(path=candidate, error=reason))
                continue
            if not probe:
                result.update(path=candidate, stored=True, fallback=index > 0, changed=changed)
                return result
        if probe and not result["errors"]:
            return result
        result["failed"] = True
        if probe:
            result["msg"] = "; ".join("%s cannot hold %d bytes: %s" % (e["path"], len(data), e["error"])
                                      for e in result["errors"])
        else:
            result["msg"] = "could not write %s" % "; ".join("%s (%s)" % (e["path"], e["error"]) for e in result["errors"])
        return result
