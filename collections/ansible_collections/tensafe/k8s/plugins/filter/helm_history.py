# Copyright (c) 2026 TenSafe platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""A Helm release's history from its storage Secrets (what `helm history` prints), without the manifest or values."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import gzip
import json

from ansible.errors import AnsibleFilterError

GZIP_MAGIC = b"\x1f\x8b\x08"


def _record(secret):
    """Decode one helm.sh/release.v1 Secret: the API's base64 of Helm's base64 of gzipped JSON."""
    name = (secret.get("metadata") or {}).get("name", "?")
    try:
        data = base64.b64decode((secret.get("data") or {})["release"])
        data = base64.b64decode(data)
        if data[:3] == GZIP_MAGIC:
            data = gzip.decompress(data)
        release = json.loads(data)
    except (KeyError, TypeError, ValueError, OSError) as error:
        raise AnsibleFilterError("helm_history: Secret %s is not a Helm release record: %s" % (name, type(error).__name__))
    info = release.get("info") or {}
    metadata = (release.get("chart") or {}).get("metadata") or {}
    return {
        "revision": int(release.get("version") or 0),
        "status": info.get("status", "unknown"),
        "description": info.get("description", ""),
        "updated": info.get("last_deployed") or info.get("first_deployed") or "",
        "chart": "%s-%s" % (metadata.get("name", "?"), metadata.get("version", "?")),
        "app_version": metadata.get("appVersion", ""),
    }


def helm_history(secrets):
    """Secrets labelled owner=helm,name=<release> (kubernetes.core.k8s_info resources) -> records sorted by revision."""
    if not isinstance(secrets, list):
        raise AnsibleFilterError("helm_history: expected a list of Secrets, got %s" % type(secrets).__name__)
    records = [_record(secret) for secret in secrets if secret.get("type") in (None, "helm.sh/release.v1")]
    return sorted(records, key=lambda record: record["revision"])


class FilterModule(object):
    def filters(self):
        return {"helm_history": helm_history}
