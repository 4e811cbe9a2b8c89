"""Leave the shared hermetic cluster as a suite found it (tests/leaks, tests/budget, tests/faults run site.yml on it).

Releases are compared by name, not by namespace: hack/cluster-up.sh creates the `keda` namespace for the KEDA operator,
so a KEDA release installed into it is still the suite's, and left behind it keeps KEDA's external metrics APIService
registered (a later `molecule test -s prerequisites` then rightly refuses a second KEDA).
"""
import json
import pathlib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


class InventoryLoader(yaml.SafeLoader):
    """Ansible's !unsafe and !vault tags in the inventory: plain strings here."""


for _tag in ("!unsafe", "!vault"):
    InventoryLoader.add_constructor(_tag, lambda loader, node: loader.construct_scalar(node))


def stack_namespaces():
    """Namespaces inventories/local deploys into: every `*_namespace` literal of its group_vars and the roles' defaults."""
    files = list((ROOT / "inventories/local/group_vars/all").glob("*.yml"))
    files += [role / "defaults/main.yml" for role in (ROOT / "collections/ansible_collections/tensafe/k8s/roles").iterdir()]
    found = {value for path in files for key, value in (yaml.load(path.read_text(), Loader=InventoryLoader) or {}).items()
             if key.endswith("_namespace") and isinstance(value, str) and "{{" not in value}
    return found - {"default", "kube-system", "kube-public", "kube-node-lease"}


class AsFound:
    """On exit, removes what appeared since entry: Helm releases (with their cluster-scoped objects), then the given
    namespaces, then the roles' own cluster-scoped objects (label app.kubernetes.io/part-of=tensafe).

    `sh(*cmd, check=True)` runs a command against the cluster (the suite's, with its PATH and KUBECONFIG)."""

    CLUSTER_KINDS = ("clusterrolebindings", "runtimeclasses")

    def __init__(self, sh, namespaces):
        self.sh, self.watched_namespaces = sh, set(namespaces)

    def __enter__(self):
        self.releases, self.namespaces, self.cluster_objects = self._releases(), self._namespaces(), self._objects()
        return self

    def __exit__(self, *exc):
        for namespace, name in sorted(self._releases() - self.releases):
            self.sh("helm", "uninstall", name, "-n", namespace, "--wait", check=False)
        created = sorted((self._namespaces() - self.namespaces) & self.watched_namespaces)
        if created:
            self.sh("kubectl", "delete", "namespace", *created, "--ignore-not-found", "--wait=true", "--timeout=180s",
                    check=False)
        for kind, name in sorted(self._objects() - self.cluster_objects):
            self.sh("kubectl", "delete", kind, name, "--ignore-not-found", check=False)

    def _json(self, *cmd):
        return json.loads(self.sh(*cmd, "-o", "json").stdout or "null")

    def _releases(self):
        return {(r["namespace"], r["name"]) for r in self._json("helm", "list", "-A", "-a") or []}

    def _namespaces(self):
        return {item["metadata"]["name"] for item in self._json("kubectl", "get", "namespaces")["items"]}

    def _objects(self):
        return {(kind, item["metadata"]["name"]) for kind in self.CLUSTER_KINDS
                for item in self._json("kubectl", "get", kind, "-l", "app.kubernetes.io/part-of=tensafe")["items"]}
