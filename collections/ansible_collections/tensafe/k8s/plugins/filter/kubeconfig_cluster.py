# Copyright (c) 2026 TenSafe platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The cluster a kubeconfig context points at: server URL and CA, whichever form the kubeconfig gives the CA in."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import os

from ansible.errors import AnsibleFilterError

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None


def kubeconfig_cluster(path, context=""):
    """{server, ca_cert, insecure, context} of the context (empty: the current-context) of the kubeconfig at path."""
    path = os.path.expanduser(str(path))
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise AnsibleFilterError("kubeconfig_cluster: cannot read the kubeconfig %s: %s" % (path, e))
    if not isinstance(data, dict):
        raise AnsibleFilterError("kubeconfig_cluster: %s is not a kubeconfig" % path)
    name = context or data.get("current-context") or ""
    contexts = {c.get("name"): c.get("context") or {} for c in data.get("contexts") or [] if isinstance(c, dict)}
    if name not in contexts:
        raise AnsibleFilterError("kubeconfig_cluster: context %r is not in the kubeconfig %s (its contexts: %s); set "
                                 "tensafe_kube_context" % (name, path, ", ".join(sorted(map(str, contexts))) or "none"))
    clusters = {c.get("name"): c.get("cluster") or {} for c in data.get("clusters") or [] if isinstance(c, dict)}
    cluster = clusters.get(contexts[name].get("cluster"))
    if cluster is None:
        raise AnsibleFilterError("kubeconfig_cluster: context %r of %s names cluster %r, which is not in its clusters"
                                 % (name, path, contexts[name].get("cluster")))
    ca_cert = ""
    if cluster.get("certificate-authority-data"):
        try:
            ca_cert = base64.b64decode(cluster["certificate-authority-data"], validate=True).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError) as e:
            raise AnsibleFilterError("kubeconfig_cluster: certificate-authority-data of cluster %r in %s is not base64 "
                                     "PEM: %s" % (contexts[name].get("cluster"), path, e))
    elif cluster.get("certificate-authority"):
        # As kubectl does: a relative path is relative to the kubeconfig's directory.
        ca_path = os.path.join(os.path.dirname(path), os.path.expanduser(cluster["certificate-authority"]))
        try:
            with open(ca_path) as f:
                ca_cert = f.read()
        except OSError as e:
            raise AnsibleFilterError("kubeconfig_cluster: the certificate-authority file of cluster %r in %s cannot be "
                                     "read: %s" % (contexts[name].get("cluster"), path, e))
    return {"context": name, "server": cluster.get("server", ""), "ca_cert": ca_cert,
            "insecure": bool(cluster.get("insecure-skip-tls-verify", False))}


class FilterModule(object):
    def filters(self):
        return {"kubeconfig_cluster": kubeconfig_cluster}
