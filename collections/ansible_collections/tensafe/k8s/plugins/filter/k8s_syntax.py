# Copyright (c) 2026 TenSafe platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Check role inputs against Kubernetes and Helm syntax before anything is written; one message format for every role.

Each check is a dict: var (the variable the user set), value, rule, and optionally source (the variable a derived value
came from), secret (redact the value), skip (the input does not apply), allow_empty, min/max (numbers), schemes (URLs), ok/text/fix (a rule the caller
evaluated itself). The filter returns the failures as messages ``<var>: <value> — <rule>; fix: <how>``: a role asserts
the list is empty, in one task.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
from decimal import Decimal, InvalidOperation

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.validation import check_type_float, check_type_int
from ansible.module_utils.six import string_types

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
QUANTITY = re.compile(r"(?P<num>[0-9]+(\.[0-9]*)?|\.[0-9]+)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?")
SUFFIX = {"": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10 ** 3, "M": 10 ** 6,
          "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30,
          "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
DURATION = re.compile(r"([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|ms|s|m|h)")
IMAGE_COMPONENT = r"[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*"
IMAGE_REPOSITORY = re.compile(r"(([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(:[0-9]+)?/)?%s(/%s)*" % (
    IMAGE_COMPONENT, IMAGE_COMPONENT))
IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
IMAGE_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
CHART_VERSION = re.compile(r"v?[0-9]+(\.[0-9]+){0,2}(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_SHOWN = 120


def _full(pattern, value):
    """fullmatch: unlike re.match with '$', a trailing newline does not pass."""
    return isinstance(value, string_types) and pattern.fullmatch(value) is not None


def quantity(value):
    """A Kubernetes resource quantity as a Decimal, or None when the value is not one (negative quantities included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, string_types):
        return None
    found = QUANTITY.fullmatch(value)
    if not found:
        return None
    try:
        number = Decimal(found.group("num"))
    except InvalidOperation:
        return None
    suffix = found.group("suffix") or ""
    if suffix[:1] in ("e", "E"):
        return number * Decimal(10) ** int(suffix[1:])
    return number * SUFFIX[suffix]


def duration(value):
    """Seconds of a Go duration (Helm's --timeout): '5m', '300s', '1h30m'; None when it is not one."""
    if not isinstance(value, string_types) or not value:
        return None
    total, pos = Decimal(0), 0
    units = {"ns": Decimal("1e-9"), "us": Decimal("1e-6"), u"\u00b5s": Decimal("1e-6"), "ms": Decimal("1e-3"), "s": 1,
             "m": 60, "h": 3600}
    for found in DURATION.finditer(value):
        if found.start() != pos:
            return None
        total += Decimal(found.group(1)) * units[found.group(3)]
        pos = found.end()
    return total if pos == len(value) else None


def _label_key(key):
    if not isinstance(key, string_types) or not key:
        return False
    prefix, name = key.rpartition("/")[::2]
    if "/" in key and (not prefix or len(prefix) > 253 or not _full(DNS1123_SUBDOMAIN, prefix)):
        return False
    return len(name) <= 63 and _full(LABEL_NAME, name)


def _number(value, kind):
    check = check_type_int if kind == "int" else check_type_float
    if isinstance(value, bool):
        return None
    try:
        return check(value)
    except (TypeError, ValueError):
        return None


def _string_of(text):
    return lambda value: None if isinstance(value, string_types) else "must be a string (%s)" % text


def _check_mapping(value, what, key_ok, value_ok):
    if not isinstance(value, dict):
        return "must be a mapping of %s" % what
    for key, item in value.items():
        if not key_ok(key):
            return "key %s is not a valid label key (optional DNS-1123 prefix/, then a name of at most 63 letters, " \
                   "digits, '-', '_', '.', starting and ending alphanumeric)" % _show(key)
        problem = value_ok(item)
        if problem:
            return "value of %s %s" % (_show(key), problem)
    return None


def _label_value(item):
    if not isinstance(item, string_types):
        return "must be a string: quote it (e.g. \"true\", \"1\")"
    if len(item) > 63 or not (item == "" or _full(LABEL_NAME, item)):
        return "must be at most 63 ASCII letters, digits, '-', '_' or '.', starting and ending alphanumeric " \
               "(no spaces, newlines or non-ASCII characters)"
    return None


def _annotation_value(item):
    if not isinstance(item, string_types):
        return "must be a string: quote it"
    if CONTROL.search(item):
        return "contains control characters"
    return None


def _url(value, schemes):
    if not isinstance(value, string_types) or not value:
        return "must be a URL"
    if re.search(r"\s", value):
        return "must not contain whitespace"
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]+)", value)
    if not match:
        return "needs a scheme and a host (e.g. %s://host:port)" % (schemes or ["https"])[0]
    if schemes and match.group(1).lower() not in schemes:
        return "scheme must be one of %s" % ", ".join(schemes)
    return None


def _resources(value):
    if not isinstance(value, dict):
        return "must be a mapping with requests and limits"
    for side in ("requests", "limits"):
        part = value.get(side) or {}
        if not isinstance(part, dict):
            return "%s must be a mapping of resource: quantity" % side
        for name, amount in part.items():
            if quantity(amount) is None:
                return "%s.%s %s is not a non-negative Kubernetes quantity (e.g. 500m, 2, 8Gi; no space, no sign)" % (
                    side, name, _show(amount))
    requests, limits = value.get("requests") or {}, value.get("limits") or {}
    for name in sorted(set(requests) & set(limits)):
        if quantity(limits[name]) < quantity(requests[name]):
            return "limits.%s (%s) is below requests.%s (%s)" % (name, limits[name], name, requests[name])
    return None


def _rule_problem(check):
    """(rule text, fix) of a failed check, or None when the value passes."""
    rule = check.get("rule")
    value = check.get("value")
    if check.get("skip"):
        return None
    if rule == "custom":
        return None if check.get("ok") else (check.get("text", "is not valid"), check.get("fix", "see the role's README"))
    if check.get("allow_empty") and value in ("", None):
        return None
    if rule == "quantity":
        if quantity(value) is None:
            return ("is not a non-negative Kubernetes quantity", "a number with an optional suffix and no space: 500m, 2, 8Gi")
        return None
    if rule == "resources":
        problem = _resources(value)
        return (problem, "requests and limits of cpu/memory as quantities, each limit at least its request") if problem else None
    if rule == "dns_label":
        if not (_full(DNS1123_LABEL, value) and len(value) <= 63):
            return ("is not a DNS-1123 label (at most 63 lowercase letters, digits and '-', starting and ending alphanumeric)",
                    "use a name such as %s" % (check.get("example") or "tensafe"))
        return None
    if rule == "dns_subdomain":
        if not (_full(DNS1123_SUBDOMAIN, value) and len(value) <= 253):
            return ("is not a DNS-1123 name (lowercase letters, digits, '-' and '.', at most 253, starting and ending "
                    "alphanumeric)", "use a name such as %s" % (check.get("example") or "tensafe-tls"))
        return None
    if rule == "hostname":
        host = value[2:] if isinstance(value, string_types) and value.startswith("*.") else value
        if not (_full(DNS1123_SUBDOMAIN, host) and len(host) <= 253 and all(len(p) <= 63 for p in host.split("."))):
            return ("is not a DNS host name", "a lowercase name without scheme, port or path, e.g. tensafe.example.com")
        return None
    if rule == "release_name":
        if not (_full(DNS1123_SUBDOMAIN, value) and len(value) <= 53):
            return ("is not a Helm release name (at most 53 lowercase letters, digits, '-' and '.', starting and ending "
                    "alphanumeric)", "use a shorter lowercase name such as tensafe")
        return None
    if rule == "labels":
        problem = _check_mapping(value, "label keys to string values", _label_key, _label_value)
        return (problem, "valid label keys and quoted label values, e.g. {release: kube-prometheus-stack}") if problem else None
    if rule == "label_keys":
        problem = _check_mapping(value, "label keys to values", _label_key, lambda item: None)
        return (problem, "valid label keys, e.g. nvidia.com/gpu.present") if problem else None
    if rule == "annotations":
        problem = _check_mapping(value, "annotation keys to string values", _label_key, _annotation_value)
        if not problem and len(json.dumps(value)) > 262144:
            problem = "is larger than the 256 KiB Kubernetes allows for annotations"
        return (problem, "valid annotation keys and string values") if problem else None
    if rule == "duration":
        seconds = duration(value)
        if seconds is None or seconds <= 0:
            return ("is not a positive Go duration (Helm --timeout)", "a number and unit with nothing else, e.g. 300s, 5m, 1h30m")
        return None
    if rule == "url":
        problem = _url(value, check.get("schemes"))
        return (problem, "a full URL, e.g. %s" % (check.get("example") or "https://host:port")) if problem else None
    if rule == "chart_repo":
        # What tensafe.k8s.chart_source takes: a chart repository or OCI URL, or a local directory of unpacked charts.
        if isinstance(value, string_types) and os.path.isdir(value):
            return None
        problem = _url(value, ["https", "http", "oci"])
        return ("%s, and is not an existing directory of unpacked charts" % problem,
                "a repository URL (https://charts.example.com, oci://registry/path) or a local chart directory") if problem else None
    if rule == "image_repository":
        if not _full(IMAGE_REPOSITORY, value):
            return ("is not an image repository (lowercase path, optional registry host[:port]/, no tag or digest)",
                    "e.g. registry.example.com/tensafe/tensafe; put the tag in the *_tag variable")
        return None
    if rule == "image_tag":
        if not _full(IMAGE_TAG, value):
            return ("is not an image tag (letters, digits, '_', '.', '-', at most 128, no whitespace or newline)", "e.g. 4.0.0")
        return None
    if rule == "image_digest":
        if not _full(IMAGE_DIGEST, value):
            return ("is not an image digest", "sha256: followed by 64 lowercase hex digits, or empty")
        return None
    if rule == "chart_version":
        if not _full(CHART_VERSION, value):
            return ("is not an exact chart version", "a version such as 1.2.3 (no range, no spaces)")
        return None
    if rule == "registry":
        if not _full(re.compile(r"([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(:[0-9]+)?(/%s)*" % IMAGE_COMPONENT), value):
            return ("is not a registry host", "a host[:port], e.g. registry.example.com:5000")
        return None
    if rule == "directory":
        if not (isinstance(value, string_types) and os.path.isdir(value)):
            return ("is not an existing directory on the control host", "create it with the charts from helm pull, or leave it empty")
        return None
    if rule == "path":
        if not isinstance(value, string_types) or not value or re.search(r"\s", value) or value.startswith("/") or value.endswith("/"):
            return ("is not a path (no whitespace, no leading or trailing '/')", "e.g. %s" % (check.get("example") or "secret/data/tensafe"))
        return None
    if rule in ("int", "float"):
        number = _number(value, rule)
        low, high = check.get("min"), check.get("max")
        if number is None or (low is not None and number < low) or (high is not None and number > high):
            bounds = " ".join(part for part in (
                "at least %s" % low if low is not None else "", "at most %s" % high if high is not None else "") if part)
            kind = "a whole number" if rule == "int" else "a number"
            return ("must be %s%s" % (kind, " " + bounds if bounds else ""), check.get("fix") or "e.g. %s" % (low if low is not None else 1))
        return None
    raise AnsibleFilterError("k8s_syntax: unknown rule %r for %s" % (rule, check.get("var")))


def _show(value):
    text = json.dumps(value, ensure_ascii=True, default=str, sort_keys=True)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."


def message(check, rule, fix):
    """`<var>: <value, or <redacted>> — <rule>; fix: <how>`, naming the source of a derived value."""
    name = check["var"]
    if check.get("source"):
        name = "%s (from %s)" % (name, check["source"])
    shown = "<redacted>" if check.get("secret") else _show(check.get("value"))
    return u"%s: %s \u2014 %s; fix: %s" % (name, shown, rule, check.get("fix") or fix)


def k8s_syntax(checks):
    """The failed checks as messages (empty when every value passes)."""
    if not isinstance(checks, list):
        raise AnsibleFilterError("k8s_syntax: expects a list of checks, got %s" % type(checks).__name__)
    failures = []
    for check in checks:
        if not isinstance(check, dict) or "var" not in check or "rule" not in check:
            raise AnsibleFilterError("k8s_syntax: each check needs var and rule, got %r" % (check,))
        problem = _rule_problem(check)
        if problem:
            failures.append(message(check, problem[0], problem[1]))
    return failures


def _schema_paths(error):
    """The values keys a Helm values.schema.json refusal names: "at '/a/b'" (Helm 3.18+) or "- a.b: " (older)."""
    paths = [found.split("/")[1:] for found in re.findall(r"at '(/[^']*)'", error or "")]
    paths += [found.split(".") for found in re.findall(r"^- ([A-Za-z0-9_.]+): ", error or "", re.M)]
    return [[part for part in path if part] for path in paths]


def chart_value_sources(error, overrides, defaults_text, defaults_name, overrides_name):
    """For each values key a chart's schema refused, the inventory variable that set it.

    overrides: the *_values_overrides mapping (its keys win); defaults_text: the role's defaults/main.yml as text, whose
    *_values_defaults entry maps chart keys to templates such as "{{ app_keda_prometheus_url }}". Returns messages
    "<variable> (chart key <a.b>)"; a key neither sets is named as "<defaults_name>.<a.b>".
    """
    import yaml

    try:
        defaults = (yaml.safe_load(defaults_text or "") or {}).get(defaults_name) or {}
    except yaml.YAMLError:
        defaults = {}
    prefix = defaults_name.split("_")[0] + "_"
    sources = []
    for path in _schema_paths(error):
        dotted = ".".join(path)
        node, found = overrides if isinstance(overrides, dict) else {}, True
        for part in path:
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                found = False
                break
        if found:
            sources.append("%s.%s (chart key %s)" % (overrides_name, dotted, dotted))
            continue
        node, name = defaults, None
        for part in path:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                break
            if isinstance(node, string_types):
                variables = re.findall(r"\b(%s[a-z0-9_]+)" % re.escape(prefix), node)
                name = variables[0] if variables else None
                break
        sources.append("%s (chart key %s)" % (name or "%s.%s" % (defaults_name, dotted), dotted))
    return sources


class FilterModule(object):
    def filters(self):
        return {"k8s_syntax": k8s_syntax, "chart_value_sources": chart_value_sources}
