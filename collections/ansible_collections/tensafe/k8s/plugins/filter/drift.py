# Copyright (c) 2026 TenSafe platform team
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The drift report: what an inventory would deploy against what runs.

drift_objects turns a rendered manifest (or a list of definitions) into the objects to compare, each with what to
ignore (replicas an HPA or a KEDA ScaledObject of the same plan owns). drift_report reads the results of a server-side
dry-run apply of each object (kubernetes.core.k8s, check mode, diff) and keeps only the fields the inventory sets and
the cluster holds otherwise. Secret data and the objects of releases whose values are secret are compared by hash.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

# Kinds without a namespace: a namespace in their definition is not theirs.
CLUSTER_SCOPED = frozenset([
    "APIService", "ClusterIssuer", "ClusterRole", "ClusterRoleBinding", "ClusterSecretStore", "CSIDriver",
    "CustomResourceDefinition", "IngressClass", "MutatingWebhookConfiguration", "Namespace", "PersistentVolume",
    "PriorityClass", "RuntimeClass", "StorageClass", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration", "VolumeAttachment",
])
# Written by the API server or by the dry-run apply itself (its field manager), never by an inventory.
SERVER_OWNED = ("metadata.managedFields", "metadata.resourceVersion", "metadata.generation", "metadata.uid",
                "metadata.creationTimestamp", "status")
SECRET_PATHS = ("data", "stringData")


def _fail(message):
    raise AnsibleFilterError("drift: " + message)


def _scaled_targets(objects):
    """(namespace, kind, name) of every workload an HPA or a KEDA ScaledObject of these objects scales."""
    targets = set()
    for obj in objects:
        if obj.get("kind") not in ("HorizontalPodAutoscaler", "ScaledObject"):
            continue
        ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
        if ref.get("name"):
            targets.add(((obj.get("metadata") or {}).get("namespace"), ref.get("kind") or "Deployment", ref["name"]))
    return targets


def drift_objects(manifest, component, source, namespace="", secret=False, ignore=None):
    """The objects of a manifest (YAML text, a definition or a list of them) with where they come from.

    ignore: paths (dotted, as the report names them) another party owns in every object, e.g. an annotation a
    rotation sets.

    Helm hooks (tests, jobs run around an install) are not kept: they are not meant to stay in the cluster.
    """
    import yaml

    if isinstance(manifest, string_types):
        try:
            documents = list(yaml.safe_load_all(manifest))
        except yaml.YAMLError as error:
            _fail("the manifest of %s does not parse: %s" % (source, error))
    elif isinstance(manifest, dict):
        documents = [manifest]
    else:
        documents = list(manifest or [])
    objects = []
    for document in documents:
        if not isinstance(document, dict) or not document.get("kind"):
            continue
        document = json.loads(json.dumps(document))  # a copy, plain types only
        metadata = document.setdefault("metadata", {})
        if "helm.sh/hook" in (metadata.get("annotations") or {}):
            continue
        if document["kind"] in CLUSTER_SCOPED:
            metadata.pop("namespace", None)
        elif not metadata.get("namespace"):
            if not namespace:
                _fail("%s %s of %s has no namespace and none was given" % (document["kind"], metadata.get("name"), source))
            metadata["namespace"] = namespace
        objects.append(document)
    scaled = _scaled_targets(objects)
    return [{
        "component": component,
        "source": source,
        "kind": obj["kind"],
        "name": obj["metadata"].get("name", ""),
        "namespace": obj["metadata"].get("namespace", ""),
        "secret": bool(secret) or obj["kind"] == "Secret",
        "secret_paths": [] if secret else (list(SECRET_PATHS) if obj["kind"] == "Secret" else []),
        "ignore": list(ignore or []) + (
            ["spec.replicas"] if (obj["metadata"].get("namespace"), obj["kind"], obj["metadata"].get("name")) in scaled
            else []),
        "definition": obj,
    } for obj in objects]


def _flatten(value, prefix, out):
    if isinstance(value, dict) and value:
        for key, child in value.items():
            _flatten(child, "%s.%s" % (prefix, key) if prefix else str(key), out)
    elif isinstance(value, list) and value:
        for index, child in enumerate(value):
            _flatten(child, "%s[%d]" % (prefix, index), out)
    else:
        out[prefix] = value
    return out


def _under(path, prefixes):
    return any(path == p or path.startswith(p + ".") or path.startswith(p + "[") for p in prefixes)


def _digest(value):
    text = value if isinstance(value, string_types) else json.dumps(value, sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _shown(value, hidden):
    if value is None:
        return "(absent)"
    return _digest(value) if hidden else value


def _outcome(item, result):
    """The state and the differing fields of one planned object from its dry-run apply result."""
    entry = {key: item[key] for key in ("component", "source", "kind", "namespace", "name")}
    entry["compared_by_hash"] = bool(item.get("secret"))
    error = result.get("error")
    if error or result.get("failed"):
        message = str((error or {}).get("msg") if isinstance(error, dict) else error or result.get("msg")
                      or "the dry-run apply failed")
        if "not found" in message.lower() or "404" in message:
            entry.update(state="missing", fields=[])
        else:
            # An error message can quote the object: never for a secret one.
            entry.update(state="error", fields=[], error="(hidden: secret object)" if item.get("secret") else message[:500])
        return entry
    diff = result.get("diff") or {}
    before, after = diff.get("before") or {}, diff.get("after") or {}
    # A live object always differs from the dry run at least in the dry run's managedFields entry: nothing before and
    # something after is an object that is not there.
    if after and not before:
        entry.update(state="missing", fields=[])
        return entry
    live, desired = _flatten(before, "", {}), _flatten(after, "", {})
    ignored = list(SERVER_OWNED) + list(item.get("ignore") or [])
    hide_all = bool(item.get("secret")) and not item.get("secret_paths")
    fields = []
    for path in sorted(set(live) | set(desired)):
        if _under(path, ignored) or live.get(path) == desired.get(path):
            continue
        hidden = hide_all or _under(path, item.get("secret_paths") or [])
        fields.append({"path": path, "live": _shown(live.get(path), hidden), "desired": _shown(desired.get(path), hidden)})
    entry.update(state="drifted" if fields else "in-sync", fields=fields)
    return entry


def drift_report(compared, planned):
    """The report of one kubernetes.core.k8s dry-run apply of the planned objects (drift_objects), in their order:
    per object its state (in-sync, drifted, missing, error) and fields, per component the counts, the drifted named."""
    planned = list(planned or [])
    compared = compared or {}
    if len(planned) == 1 and "results" not in (compared.get("result") or {}):
        results = [compared]  # one definition: the module returns its result alone
    else:
        results = list((compared.get("result") or {}).get("results") or [])
    if compared.get("failed") and not results:
        _fail("the dry-run apply failed as a whole: %s" % str(compared.get("msg"))[:300])
    if len(results) != len(planned):
        _fail("%d results for %d planned objects" % (len(results), len(planned)))
    objects = [_outcome(item, result) for item, result in zip(planned, results)]
    components = {}
    for entry in objects:
        counts = components.setdefault(entry["component"], {"in-sync": 0, "drifted": 0, "missing": 0, "error": 0})
        counts[entry["state"]] += 1
    drifted = ["%s %s%s (%s, %s)" % (e["kind"], e["namespace"] + "/" if e["namespace"] else "", e["name"], e["component"],
                                     e["state"]) for e in objects if e["state"] != "in-sync"]
    return {"drifted": bool(drifted), "drifted_objects": drifted, "components": components, "objects": objects}


def drift_summary(report):
    """Readable lines per component: counts, then each object not in sync with its fields (hashes for secrets)."""
    lines = []
    for component in sorted(report.get("components") or {}):
        counts = report["components"][component]
        lines.append("%s: %d in sync, %d drifted, %d missing, %d errors" % (
            component, counts["in-sync"], counts["drifted"], counts["missing"], counts["error"]))
        for entry in report.get("objects") or []:
            if entry["component"] != component or entry["state"] == "in-sync":
                continue
            where = entry["namespace"] + "/" if entry["namespace"] else ""
            error = ": " + entry["error"] if entry.get("error") else ""
            lines.append("  %s %s%s [%s] from %s%s" % (entry["kind"], where, entry["name"], entry["state"], entry["source"], error))
            for field in entry.get("fields") or []:
                live, desired = json.dumps(field["live"]), json.dumps(field["desired"])
                lines.append("    %s: live %s, inventory %s" % (field["path"], live, desired))
    return lines


class FilterModule(object):
    def filters(self):
        return {"drift_objects": drift_objects, "drift_report": drift_report, "drift_summary": drift_summary}
