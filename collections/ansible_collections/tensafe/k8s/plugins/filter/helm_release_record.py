# Copyright (c) 2026 TenSafe platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""tensafe.k8s.helm_release_record: what a Helm 3 release record (a Secret of type helm.sh/release.v1) says.

Documentation: helm_release_record.yml next to this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import gzip
import json

from ansible.errors import AnsibleFilterError

_GZIP_MAGIC = b"\x1f\x8b\x08"


def helm_release_record(secret):
    """Name, namespace, revision, status, chart and user-supplied values of the release a Helm record Secret holds."""
    if not isinstance(secret, dict) or "release" not in (secret.get("data") or {}):
        raise AnsibleFilterError("helm_release_record expects a Secret of type helm.sh/release.v1 (data.release)")
    try:
        # The API returns data base64-encoded; Helm itself stored base64 of the (usually gzipped) JSON release.
        raw = base64.b64decode(base64.b64decode(secret["data"]["release"]))
        if raw[:3] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
        release = json.loads(raw)
    except (ValueError, TypeError, OSError) as error:
        raise AnsibleFilterError("helm_release_record: cannot decode the release of Secret %s: %s"
                                 % ((secret.get("metadata") or {}).get("name"), error))
    chart = (release.get("chart") or {}).get("metadata") or {}
    return {
        "name": release.get("name"),
        "namespace": release.get("namespace"),
        "revision": release.get("version"),
        "status": (release.get("info") or {}).get("status"),
        "chart": {"name": chart.get("name"), "version": chart.get("version")},
        # The values given at install/upgrade (helm get values), not the chart's defaults.
        "values": release.get("config") or {},
    }


class FilterModule(object):
    def filters(self):
        return {"helm_release_record": helm_release_record}
