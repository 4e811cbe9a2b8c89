"""Helpers for the TenSafe chart tests: rendering, and checks that return lists of problems.

Every check returns a list of human-readable problems (empty = good) so that the tests can assert
both that real renders are clean and that a deliberately broken object is caught.
"""

from __future__ import annotations

import copy
import functools
import glob
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = Path(os.environ.get("TENSAFE_CHART_DIR") or (REPO / "charts/tensafe"))
# ci/*-values.yaml: lint coverage only. What is rendered, scanned and asserted on comes from the app role's plan
# of the inventories (tests/app_plan.py, tests/chart/scenarios.yml).
CI_DIR = CHART / "ci"
HELM = os.environ.get("HELM") or str(REPO / "bin/helm")
# Upstream CRDs live in the shared folder beside the repository; never copied into it.
CRDS_DIR = Path(os.environ.get("TENSAFE_CRDS_DIR") or (REPO / "../shared/crds")).resolve()
CHECKOV = os.environ.get("CHECKOV") or str(REPO / ".venv-scan/bin/checkov")

RELEASE = "tensafe"
NAMESPACE = "tensafe"
# 1.34 is the target; 1.25 is the oldest schema kubernetes-validate ships (the chart claims >=1.24).
K8S_VERSIONS = ("1.34", "1.25")
SELECTOR_KEYS = {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
RECOMMENDED_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "helm.sh/chart",
}
CUSTOM_KINDS = {"ScaledObject", "ServiceMonitor", "ExternalSecret"}
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def variations() -> dict[str, list[str]]:
    """Name -> values files, for helm lint. 'default' is the chart's values.yaml alone."""
    out = {"default": []}
    for path in sorted(CI_DIR.glob("*-values.yaml")):
        out[path.name[: -len("-values.yaml")]] = [str(path)]
    return out


@dataclass
class Render:
    rc: int
    stdout: str
    stderr: str
    docs: list = field(default_factory=list)
    release: str = RELEASE
    namespace: str = NAMESPACE

    def of_kind(self, kind):
        return [d for d in self.docs if d.get("kind") == kind]

    def one(self, kind):
        objs = self.of_kind(kind)
        assert len(objs) == 1, f"expected one {kind}, got {len(objs)}"
        return objs[0]


def helm(*args, cwd=None) -> subprocess.CompletedProcess:
    if not os.access(HELM, os.X_OK):
        raise RuntimeError(f"helm not found at {HELM}: run `make tools` or set HELM")
    return subprocess.run([HELM, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def render(values_files=(), set_args=(), chart=CHART, release=RELEASE, namespace=NAMESPACE) -> Render:
    args = ["template", release, str(chart), "--namespace", namespace]
    for f in values_files:
        args += ["-f", str(f)]
    for s in set_args:
        args += ["--set", s]
    proc = helm(*args)
    docs = []
    if proc.returncode == 0:
        docs = [d for d in yaml.load_all(proc.stdout, Loader=LOADER) if d]
    return Render(proc.returncode, proc.stdout, proc.stderr, docs, release, namespace)


@functools.lru_cache(maxsize=None)
def render_cached(values_files: tuple = (), set_args: tuple = (), release: str = RELEASE, namespace: str = NAMESPACE) -> Render:
    return render(values_files, set_args, release=release, namespace=namespace)


def render_plan(plan, set_args: tuple = ()) -> Render:
    """The chart rendered with what the app role composed (an app_plan.Plan), as the role's release."""
    return render_cached((str(plan.values_file),), tuple(set_args), plan.release, plan.namespace)


def name_of(obj) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


# --- workload helpers ---------------------------------------------------------------------------

def pod_specs(docs):
    """(owner name, pod spec, pod metadata) of every pod the manifests create (Deployment templates, Pods)."""
    out = []
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
            tpl = d["spec"]["template"]
            out.append((name_of(d), tpl["spec"], tpl.get("metadata", {})))
        elif d["kind"] == "Pod":
            out.append((name_of(d), d["spec"], d["metadata"]))
    return out


def all_containers(spec):
    return [("initContainer", c) for c in spec.get("initContainers", [])] + [
        ("container", c) for c in spec.get("containers", [])
    ]


RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}


def pod_security_problems(owner, spec):
    """Pod Security Standard 'restricted' plus this chart's rules (UID 1000, read-only root filesystem)."""
    problems = []
    psc = spec.get("securityContext") or {}
    if psc.get("runAsUser") != 1000:
        problems.append(f"{owner}: pod runAsUser is {psc.get('runAsUser')!r}, want 1000")
    if psc.get("runAsNonRoot") is not True:
        problems.append(f"{owner}: pod runAsNonRoot is not true")
    if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(f"{owner}: pod seccompProfile is not RuntimeDefault")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            problems.append(f"{owner}: {key} is set")
    for vol in spec.get("volumes", []):
        kinds = set(vol) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"{owner}: volume {vol['name']} uses {sorted(kinds - RESTRICTED_VOLUME_TYPES)}")
    for role, c in all_containers(spec):
        where = f"{owner} {role} {c['name']}"
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{where}: capabilities.drop lacks ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where}: capabilities.add {caps.get('add')}")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem is not true")
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            problems.append(f"{where}: runAsNonRoot is not true")
        if sc.get("runAsUser", psc.get("runAsUser")) != 1000:
            problems.append(f"{where}: runAsUser is not 1000")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile {seccomp!r}")
        for p in c.get("ports", []):
            if p.get("hostPort"):
                problems.append(f"{where}: hostPort {p['hostPort']}")
    return problems


def writable_dir_problems(owner, spec):
    """With a read-only root filesystem, /tmp and the cache dir must be emptyDir mounts."""
    problems = []
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    for _, c in all_containers(spec):
        if c["name"] != "tensafe":
            continue
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        for path in ("/tmp", "/home/tensafe/.cache"):
            vol = vols.get(mounts.get(path, ""), {})
            if "emptyDir" not in vol:
                problems.append(f"{owner}: {path} is not an emptyDir mount")
    return problems


# --- labels and selectors -----------------------------------------------------------------------

def selectors(docs):
    """(object, selector dict) for every label selector that targets the app's pods."""
    out = []
    for d in docs:
        kind, spec = d["kind"], d.get("spec", {})
        if kind == "Deployment":
            out.append((name_of(d), spec["selector"]["matchLabels"]))
        elif kind == "Service":
            out.append((name_of(d), spec["selector"]))
        elif kind in ("PodDisruptionBudget", "ServiceMonitor"):
            out.append((name_of(d), spec["selector"]["matchLabels"]))
        elif kind == "NetworkPolicy":
            out.append((name_of(d), spec["podSelector"]["matchLabels"]))
    return out


def selector_problems(docs, release=RELEASE):
    problems = []
    for owner, sel in selectors(docs):
        if set(sel) != SELECTOR_KEYS:
            problems.append(f"{owner}: selector keys {sorted(sel)}, want only {sorted(SELECTOR_KEYS)}")
        if sel.get("app.kubernetes.io/instance") != release:
            problems.append(f"{owner}: selector instance {sel.get('app.kubernetes.io/instance')!r}")
    for owner, spec, meta in pod_specs(docs):
        labels = meta.get("labels", {})
        if owner.startswith("Deployment/"):
            dep = next(d for d in docs if name_of(d) == owner)
            for k, v in dep["spec"]["selector"]["matchLabels"].items():
                if labels.get(k) != v:
                    problems.append(f"{owner}: pod template label {k} does not match the selector")
    # The helm test pod must not carry the app's selector labels (ReplicaSet adoption, Service endpoints).
    app_sel = [sel for owner, sel in selectors(docs) if owner.startswith("Service/")]
    for d in docs:
        if d["kind"] == "Pod" and app_sel:
            labels = d["metadata"].get("labels", {})
            if all(labels.get(k) == v for k, v in app_sel[0].items()):
                problems.append(f"{name_of(d)}: a standalone pod matches the Service selector")
    return problems


def label_problems(docs):
    problems = []
    for d in docs:
        labels = d.get("metadata", {}).get("labels") or {}
        missing = RECOMMENDED_LABELS - set(labels)
        if missing:
            problems.append(f"{name_of(d)}: missing labels {sorted(missing)}")
    for owner, _, meta in pod_specs(docs):
        missing = RECOMMENDED_LABELS - set(meta.get("labels") or {})
        if missing:
            problems.append(f"{owner} pod template: missing labels {sorted(missing)}")
    return problems


# --- secrets ------------------------------------------------------------------------------------

SUSPICIOUS = [
    (re.compile(r"(?i)password\s*[:=]"), "a password assignment"),
    (re.compile(r"(?i)\bpassword\b"), "the word password"),
    (re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@\"']+:[^@\s\"']+@"), "credentials in a URL"),
    (re.compile(r"postgresql://user:pass"), "the guide's example DATABASE_URL"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"(?i)your-(secret|master)-key"), "the guide's example secret values"),
    (re.compile(r"\b(hvs|s)\.[A-Za-z0-9]{20,}"), "a Vault token"),
]


def secret_problems(text, docs):
    problems = [f"{name_of(d)}: a Secret is rendered" for d in docs if d.get("kind") == "Secret"]
    for d in docs:
        if d.get("kind") == "ConfigMap":
            for k in (d.get("data") or {}):
                if re.search(r"(?i)(SECRET|PASSWORD|TOKEN|KEY_MASTER|^DATABASE_URL$|^REDIS_URL$)", k):
                    problems.append(f"{name_of(d)}: secret-looking key {k} in a ConfigMap")
        for _, spec, _ in pod_specs([d]):
            for _, c in all_containers(spec):
                for env in c.get("env", []):
                    if "value" in env and re.search(r"(?i)(SECRET|PASSWORD|TOKEN|KEY_MASTER|DATABASE_URL|REDIS_URL)", env["name"]):
                        problems.append(f"{name_of(d)}: literal value for {env['name']}")
    for rx, what in SUSPICIOUS:
        for m in rx.finditer(text):
            problems.append(f"rendered output contains {what}: {m.group(0)!r}")
    return problems


# --- schema validation --------------------------------------------------------------------------

def k8s_problems(obj, version):
    import kubernetes_validate

    try:
        kubernetes_validate.validate(copy.deepcopy(obj), version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{name_of(obj)} ({version}): {exc.message} at {list(exc.path)}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{name_of(obj)} ({version}): no Kubernetes schema for {obj.get('apiVersion')}"]
    return []


def _strict(schema):
    """Reject unknown fields like a strict kube-apiserver: additionalProperties false where the CRD
    schema lists properties and does not preserve unknown fields."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.lru_cache(maxsize=None)
def crd_schemas():
    """(apiVersion, kind) -> strict openAPIV3Schema, from the upstream CRDs in ../shared/crds."""
    out = {}
    for path in sorted(glob.glob(str(CRDS_DIR / "*" / "*.yaml"))):
        with open(path, encoding="utf-8") as fh:
            for doc in yaml.load_all(fh, Loader=LOADER):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for ver in spec["versions"]:
                    if ver.get("served"):
                        key = (f"{spec['group']}/{ver['name']}", spec["names"]["kind"])
                        out[key] = (_strict(ver["schema"]["openAPIV3Schema"]), path)
    return out


def crd_problems(obj):
    import jsonschema

    key = (obj.get("apiVersion"), obj.get("kind"))
    schemas = crd_schemas()
    if key not in schemas:
        return [f"{name_of(obj)}: no served CRD version for {key} in {CRDS_DIR}"]
    schema, _ = schemas[key]
    body = copy.deepcopy(obj)
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{name_of(obj)}: {err.message} at {'/'.join(map(str, err.absolute_path))}"
        for err in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    ]


def object_problems(obj):
    """Validate one rendered object: CRD schema for custom kinds, Kubernetes schema otherwise."""
    if obj.get("kind") in CUSTOM_KINDS:
        return crd_problems(obj)
    problems = []
    for version in K8S_VERSIONS:
        problems += k8s_problems(obj, version)
    return problems


# --- autoscaling --------------------------------------------------------------------------------

def autoscaler_problems(docs, mode):
    problems = []
    hpas, sos = len([d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]), len([d for d in docs if d["kind"] == "ScaledObject"])
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    if hpas and sos:
        problems.append("both an HPA and a KEDA ScaledObject target the Deployment")
    want = {"none": (0, 0), "hpa": (1, 0), "keda": (0, 1)}[mode]
    if (hpas, sos) != want:
        problems.append(f"mode {mode}: {hpas} HPA and {sos} ScaledObject, want {want}")
    has_replicas = "replicas" in deploy["spec"]
    if mode == "none" and not has_replicas:
        problems.append("mode none: the Deployment has no replicas")
    if mode != "none" and has_replicas:
        problems.append(f"mode {mode}: the Deployment sets replicas although an autoscaler owns them")
    return problems


# --- checkov ------------------------------------------------------------------------------------

def load_exceptions(path):
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    out = {}
    for entry in data["exceptions"]:
        assert entry.get("reason", "").strip(), f"exception {entry.get('check')} has no reason"
        for res in entry["resources"]:
            out[(entry["check"], res)] = entry["reason"]
    return out


def compare_findings(findings, exceptions):
    """findings: set of (check id, resource). Returns (unjustified, stale)."""
    unjustified = sorted(f for f in findings if f not in exceptions)
    stale = sorted(e for e in exceptions if e not in findings)
    return unjustified, stale
