# Copyright (c) 2026 TenSafe platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Resolve where a Helm chart comes from: repository, OCI registry, local archive or directory."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os.path

from ansible.errors import AnsibleFilterError


# The roles of this collection, for charts bundled in a role's files/ directory.
ROLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "roles")


def chart_source(name, version, repo="", archive_dir="", bundled_in=""):
    """Return the kubernetes.core.helm arguments chart_ref, chart_repo_url and chart_version.

    archive_dir wins: air-gapped installs read <archive_dir>/<name>-<version>.tgz (from `helm pull`).
    bundled_in: without repo and archive_dir, the archive packaged in that role of this collection (roles/<role>/files),
    an absolute path that does not depend on which role evaluates it.
    """
    if not name or not version:
        raise AnsibleFilterError("chart_source needs a chart name and an exact version, got %r %r" % (name, version))
    repo = (repo or "").strip()
    if not repo and not archive_dir and bundled_in:
        archive_dir = os.path.join(ROLES_DIR, bundled_in, "files")
    if archive_dir:
        return {"chart_ref": os.path.join(archive_dir, "%s-%s.tgz" % (name, version)), "chart_repo_url": None, "chart_version": None}
    if repo.startswith("oci://"):
        return {"chart_ref": "%s/%s" % (repo.rstrip("/"), name), "chart_repo_url": None, "chart_version": version}
    if repo.startswith(("https://", "http://")):
        return {"chart_ref": name, "chart_repo_url": repo, "chart_version": version}
    if repo:
        # A local directory holding the unpacked chart <repo>/<name>; its Chart.yaml carries the version.
        return {"chart_ref": os.path.join(repo, name), "chart_repo_url": None, "chart_version": None}
    raise AnsibleFilterError("chart_source: chart %s has no source; set its *_chart_repo or *_chart_archive_dir" % name)


class FilterModule(object):
    def filters(self):
        return {"chart_source": chart_source}
