#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 TenSafe platform team
# Apache-2.0 OR GNU General Public License v3.0+ (see https://www.apache.org/licenses/LICENSE-2.0 or
# https://www.gnu.org/licenses/gpl-3.0.txt); ansible-test requires the GPLv3 notice on module files.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cluster_check
short_description: Check once, with a bounded timeout, that the Kubernetes API server answers and accepts the credentials
version_added: 1.0.0
description:
  - Reads O(kubeconfig) with the same client library as the C(kubernetes.core) modules (tokens, client certificates,
    exec plugins, C(certificate-authority-data), C(certificate-authority) files and C(insecure-skip-tls-verify)), and
    makes one authenticated read, C(GET /api) (discovery; allowed to every authenticated user), with a connect and read
    timeout of O(timeout) seconds and no retry.
  - On failure, the message names the kubeconfig, the context, the server URL, the kubeconfig user and the error class
    (context not found, DNS, connection refused, TLS unknown CA, TLS hostname mismatch, 401, 403, timeout), with a fix;
    never the client library's retry trace.
  - Why a module and not M(kubernetes.core.k8s_info) or M(kubernetes.core.k8s_cluster_info) - C(kubernetes.core) 6.x has no request timeout option
    (U(https://github.com/ansible-collections/kubernetes.core/issues/897)), so a server that accepts connections and never
    answers holds those modules for as long as the operating system keeps the connection, and their errors are raw
    C(urllib3) traces.
  - Writes nothing. Returns the fact C(tensafe_cluster_checked) so that the playbooks check once per run.
author:
  - TenSafe platform team (@tensafe)
options:
  kubeconfig:
    description:
      - Path of the kubeconfig (the inventory's C(tensafe_kubeconfig)).
    type: path
    required: true
  context:
    description:
      - Context of the kubeconfig to use; empty for its C(current-context).
    type: str
    default: ""
  timeout:
    description:
      - Seconds to wait for the connection and for the answer (each), the inventory's C(tensafe_api_timeout).
    type: int
    default: 20
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: It only reads, in check mode too.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff mode).
    support: none
requirements:
  - kubernetes (the Python client C(kubernetes.core) requires)
"""

EXAMPLES = r"""
- name: Check that the cluster answers and accepts the credentials
  tensafe.k8s.cluster_check:
    kubeconfig: "{{ tensafe_kubeconfig }}"
    context: "{{ tensafe_kube_context | default('') }}"
    timeout: "{{ tensafe_api_timeout | default(20) }}"
  when: tensafe_cluster_checked is not defined
"""

RETURN = r"""
ansible_facts:
  description: C(tensafe_cluster_checked) with the kubeconfig, context, server and user that answered.
  returned: success
  type: dict
  sample: {"tensafe_cluster_checked": {"kubeconfig": "/home/u/.kube/config", "context": "prod", "server": "https://10.0.0.1:6443", "user": "admin"}}
"""

import json
import socket
import ssl
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import yaml
    import urllib3
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.exceptions import ApiException
    IMPORT_ERROR = None
except ImportError:
    IMPORT_ERROR = traceback.format_exc()


def _describe(kubeconfig, context):
    """(context, server, user, contexts) as the kubeconfig names them; raises ValueError on an unusable file."""
    with open(kubeconfig) as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ValueError("it is not a kubeconfig (no mapping at the top)")
    contexts = {c.get("name"): c.get("context") or {} for c in data.get("contexts") or [] if isinstance(c, dict)}
    name = context or data.get("current-context") or ""
    if not name:
        raise ValueError("it has no current-context and tensafe_kube_context is empty")
    if name not in contexts:
        raise LookupError(name, sorted(str(c) for c in contexts))
    ctx = contexts[name]
    clusters = {c.get("name"): c.get("cluster") or {} for c in data.get("clusters") or [] if isinstance(c, dict)}
    server = clusters.get(ctx.get("cluster"), {}).get("server", "")
    return name, server, ctx.get("user", ""), sorted(contexts)


def _api_message(exc):
    try:
        return json.loads(exc.body).get("message", "")
    except (TypeError, ValueError, AttributeError):
        return (exc.reason or "").strip()


def _classify(exc, timeout, user):
    """(class, detail, fix) of a failed request."""
    if isinstance(exc, ApiException):
        if exc.status == 401:
            return ("401 Unauthorized (credentials)",
                    "the API server refused the credentials of kubeconfig user '%s'" % user,
                    "renew the token or client certificate of that user, or select another context (tensafe_kube_context)")
        if exc.status == 403:
            return ("403 Forbidden (RBAC)",
                    "the API server authenticated the request but refused it: %s" % _api_message(exc),
                    "bind the user to a role that may read the cluster, or use another context (tensafe_kube_context)")
        return ("HTTP %s" % exc.status, "the API server answered %s %s" % (exc.status, _api_message(exc)),
                "check that the server URL is a Kubernetes API server and that it is healthy")
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    cause = getattr(reason, "__cause__", None) or getattr(reason, "__context__", None)
    # urllib3's NewConnectionError (refused, DNS) is a subclass of its ConnectTimeoutError: test those first.
    if isinstance(reason, urllib3.exceptions.NameResolutionError) or isinstance(cause, socket.gaierror) \
            or "Name or service not known" in text or "Temporary failure in name resolution" in text \
            or "nodename nor servname" in text or "getaddrinfo failed" in text:
        return ("DNS", "the server's host name does not resolve",
                "correct the server URL of the cluster in the kubeconfig, or fix this host's DNS")
    if isinstance(cause, ConnectionRefusedError) or "Connection refused" in text:
        return ("connection refused", "nothing listens on the server's address and port",
                "start the API server, or correct the server URL (port) of the cluster in the kubeconfig")
    if "timed out" in text or isinstance(reason, socket.timeout) or (
            isinstance(reason, urllib3.exceptions.TimeoutError)
            and not isinstance(reason, urllib3.exceptions.NewConnectionError)):
        return ("timeout",
                "no answer within %s seconds (tensafe_api_timeout): the server accepts connections but does not answer, "
                "or the network drops them" % timeout,
                "check that the API server is healthy and reachable from here (a firewall, a VPN, a stopped control plane); "
                "raise tensafe_api_timeout only for a slow link")
    if isinstance(reason, (urllib3.exceptions.SSLError, ssl.SSLError)) or "SSL" in text or "certificate" in text:
        if "hostname" in text.lower() or "IP address mismatch" in text or "doesn't match" in text:
            return ("TLS hostname mismatch", "the server certificate is not valid for the server's host name",
                    "use the host name the certificate was issued for in the server URL, or set tls-server-name")
        if "unable to get local issuer" in text or "self-signed" in text or "self signed" in text \
                or "unknown ca" in text.lower() or "certificate verify failed" in text:
            return ("TLS unknown CA",
                    "the server certificate is not signed by the CA the kubeconfig trusts (certificate-authority-data "
                    "or certificate-authority)",
                    "put the cluster's CA in the kubeconfig; the client certificate may also be refused by the server")
        return ("TLS", "the TLS handshake failed: %s" % text.split(": ", 1)[-1][:200],
                "check the CA and the client certificate of the kubeconfig")
    return ("unreachable", "the request failed: %s" % text[:200], "check the server URL and the network")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kubeconfig=dict(type="path", required=True),
            context=dict(type="str", default=""),
            timeout=dict(type="int", default=20),
        ),
        supports_check_mode=True,
    )
    if IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=IMPORT_ERROR)
    kubeconfig = module.params["kubeconfig"]
    timeout = module.params["timeout"]
    if timeout <= 0:
        module.fail_json(msg="tensafe_api_timeout is %s: set it to a positive number of seconds (default 20)" % timeout)

    where = "kubeconfig %s" % kubeconfig
    try:
        context, server, user, contexts = _describe(kubeconfig, module.params["context"])
    except LookupError as e:
        module.fail_json(msg="Kubernetes cluster access: context '%s' does not exist in %s (its contexts: %s). "
                         "Set tensafe_kube_context to one of them, or empty for the kubeconfig's current-context."
                         % (e.args[0], where, ", ".join(e.args[1]) or "none"))
    except (OSError, ValueError, yaml.YAMLError) as e:
        module.fail_json(msg="Kubernetes cluster access: cannot use %s: %s. Point tensafe_kubeconfig at the "
                         "kubeconfig of the target cluster." % (where, str(e).splitlines()[0] if str(e) else type(e).__name__))

    head = "Kubernetes cluster access failed"
    names = "kubeconfig %s, context '%s', server %s, user '%s'" % (kubeconfig, context, server or "(none)", user)
    configuration = k8s_client.Configuration()
    try:
        k8s_config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration,
                                    persist_config=False)
    except Exception as e:  # the loader raises ConfigException, but also OSError/ValueError from files it reads
        module.fail_json(msg="%s (kubeconfig unusable): %s: %s. Fix the cluster or user entry of that context."
                         % (head, names, str(e).splitlines()[0] if str(e) else type(e).__name__))
    configuration.retries = 0
    api = k8s_client.ApiClient(configuration)
    try:
        k8s_client.CoreApi(api).get_api_versions(_request_timeout=(timeout, timeout))
    except (ApiException, urllib3.exceptions.HTTPError, OSError) as e:
        error_class, detail, fix = _classify(e, timeout, user)
        module.fail_json(msg="%s (%s): %s: %s. Fix: %s." % (head, error_class, names, detail, fix),
                         error_class=error_class, kubeconfig=kubeconfig, context=context, server=server, user=user)
    finally:
        api.close()
    module.exit_json(changed=False, ansible_facts={"tensafe_cluster_checked": {
        "kubeconfig": kubeconfig, "context": context, "server": server, "user": user}})


if __name__ == "__main__":
    main()
