"""No secret in the output of site.yml at -vvv (inventories/local, default tensafe_no_log: true).

Three runs of playbooks/site.yml against the hermetic cluster and its OpenBao (as an external Vault), each at -vvv:
a converge, a changing run (new app keys, a new Redis password: every Secret the stack writes changes, and the
rotation paths run) and `--check --diff` with another rotation pending (the diff paths run). After each run the test
reads every secret value that exists: the data of every Kubernetes Secret (base64 as stored and decoded), the
passwords inside the datastore URLs, the KV values the vault role wrote to OpenBao, the OpenBao token of the
inventory and the admin client key of the kubeconfig. No output of any run may contain any of them; and no output
may contain a ServiceAccount token at all (a JWT, or its base64), which also covers the tokens the run created and
deleted again (the verification login's), which no later read can collect.

Charts are the real upstream ones from the chart mirror (tests/chart_mirror.py), with the KEDA and Prometheus
Operator processes of the hermetic cluster doing their work; the stack's own tasks, modules and callbacks are the real ones. The run leaves the cluster as it found it.
"""
import base64
import binascii
import json
import os
import pathlib
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
import chart_mirror  # noqa: E402  (tests/ is not a package)
from stack_as_found import AsFound, stack_namespaces  # noqa: E402

CLUSTER = ROOT / ".cluster"
KUBECONFIG = CLUSTER / "kubeconfig"
ENV = dict(os.environ, PATH=f"{ROOT / 'bin'}:{ROOT / '.venv/bin'}:{os.environ['PATH']}",
           ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), KUBECONFIG=str(KUBECONFIG), TENSAFE_LOCAL_GPUS="1",
           ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
# The runs: (label, extra ansible-playbook arguments, extra vars).
RUNS = [
    ("converge", [], {}),
    ("changing run", [], {"vault_rotate_app_keys": True, "datastores_redis_rotate_password": True}),
    ("check --diff", ["--check", "--diff"], {"vault_rotate_app_keys": True, "datastores_redis_rotate_password": True}),
]
# Shorter values are not matched. Every credential this stack makes or reads is far longer (datastore passwords 32
# characters, app keys 64 hex, OpenBao tokens 28, JWTs hundreds), while the short values in these Secrets are
# identifiers that the output names on purpose (usernames, database names, ports, "true"): at 16, none of those
# matches, and a secret of 16+ random characters never appears by chance.
MIN_SECRET_LENGTH = 16
# Public by definition, though stored in Secrets: certificates (the cluster CA of every ServiceAccount token Secret
# is also the inventory's vault_kubernetes_ca_cert) and the namespace name.
PUBLIC_KEYS = {"ca.crt", "tls.crt", "namespace"}
# A JWT (header.payload.), and the base64 of one (base64 of '{"' starts every JWT, 'eyJ' starts every base64 of one).
TOKEN_PATTERNS = {
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*"),
    "base64 of a JWT": re.compile(r"ZXlK[A-Za-z0-9+/]{30,}"),
}


def sh(*cmd, check=True, **kwargs):
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, check=check, **kwargs)


def kubectl_json(*args):
    return json.loads(sh("kubectl", *args, "-o", "json").stdout)


def openbao():
    addr = (CLUSTER / "openbao/addr").read_text().strip()
    token = (CLUSTER / "openbao/token").read_text().strip()
    return addr, token


def bao(path, method="GET"):
    addr, token = openbao()
    request = urllib.request.Request(f"{addr}/v1/{path}", method=method, headers={"X-Vault-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return json.loads(raw) if raw else {}
    except urllib.error.HTTPError as error:
        if error.code in (400, 404):  # absent (sys/auth/<path> answers 400 for a mount that does not exist)
            return None
        raise


def b64(text):
    return base64.b64encode(text.encode()).decode()


def add(found, origin, value):
    """Record value, and the forms it takes in the output: as is, base64, each line of a multi-line one."""
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        return
    found.setdefault(value, set()).add(origin)
    found.setdefault(b64(value), set()).add(f"{origin} (base64)")
    for line in value.splitlines():
        # PEM armour lines (-----BEGIN EC PRIVATE KEY-----) are the same in every key, and in CRD descriptions.
        if len(line.strip()) >= MIN_SECRET_LENGTH and not line.startswith("-----"):
            found.setdefault(line.strip(), set()).add(f"{origin} (a line)")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme and parts.password:
        add(found, f"{origin} (password in the URL)", urllib.parse.unquote(parts.password))


def collect_secrets():
    """{needle: {where it comes from}} for every secret value that exists now."""
    found = {}
    for secret in kubectl_json("get", "secrets", "--all-namespaces")["items"]:
        meta = secret["metadata"]
        where = f"Secret {meta['namespace']}/{meta['name']}"
        for key, encoded in (secret.get("data") or {}).items():
            if key in PUBLIC_KEYS:
                continue
            add(found, f"{where} .data.{key}", encoded)
            try:
                add(found, f"{where} .data.{key} decoded", base64.b64decode(encoded).decode())
            except (binascii.Error, UnicodeDecodeError):
                pass  # binary (Helm's release records): the stored base64 is what could be printed
    kv = bao("secret/data/tensafe")
    for key, value in ((kv or {}).get("data", {}).get("data") or {}).items():
        add(found, f"OpenBao secret/tensafe {key}", value)
    add(found, "OpenBao token of the inventory (vault_token)", openbao()[1])
    kubeconfig = yaml.safe_load(KUBECONFIG.read_text())
    for user in kubeconfig.get("users", []):
        key = user["user"].get("client-key-data")
        if key:
            add(found, f"kubeconfig {user['name']} client-key-data", key)
            add(found, f"kubeconfig {user['name']} client key", base64.b64decode(key).decode())
    return found




# What the vault role writes to OpenBao with inventories/local; removed afterwards when it was not there before.
VAULT_PATHS = ["secret/metadata/tensafe", "sys/policies/acl/tensafe", "sys/auth/kubernetes"]


class Runs:
    """The outputs and the secrets, with a repr that shows neither (pytest prints fixture values on failure)."""

    def __init__(self, outputs, secrets):
        self.outputs, self.secrets = outputs, secrets

    def __repr__(self):
        return f"<{len(self.outputs)} site.yml runs, {len(self.secrets)} secret values>"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Runs the three site.yml runs once; yields [(label, output)] and the secrets seen after each run."""
    sh("hack/cluster-up.sh")
    work = tmp_path_factory.mktemp("leaks")
    varfile = work / "vars.yml"
    varfile.write_text(yaml.safe_dump(chart_mirror.archive_vars()))
    vault_absent = [path for path in VAULT_PATHS if bao(path) is None]
    outputs, secrets = [], {}
    try:
        with AsFound(sh, stack_namespaces()):
            for label, args, extra in RUNS:
                start = time.monotonic()
                result = sh("ansible-playbook", "playbooks/site.yml", "-i", "inventories/local", "-vvv",
                            "-e", f"@{varfile}", "-e", json.dumps(extra), *args, check=False, timeout=1800)
                output = result.stdout + result.stderr
                (work / f"{label.replace(' ', '-')}.log").write_text(output)
                recap = re.findall(r"^localhost\s+:.*$", result.stdout, re.M)
                print(f"{label}: rc {result.returncode}, {time.monotonic() - start:.0f}s, {len(output)} characters,"
                      f" {recap}")
                assert result.returncode == 0, f"site.yml {label} failed (log: {work}):\n{result.stdout[-6000:]}"
                outputs.append((label, output))
                for needle, origins in collect_secrets().items():
                    secrets.setdefault(needle, set()).update(origins)
            yield Runs(outputs, secrets)
    finally:
        for path in vault_absent:
            bao(path, method="DELETE")


def test_the_collection_sees_every_kind_of_secret(site):
    """Control: the matcher below is only as good as what it looks for."""
    secrets = site.secrets
    origins = " | ".join(origin for found in secrets.values() for origin in found)
    for expected in ["vault-token-reviewer-token .data.token",      # the issue's leak
                     "OpenBao secret/tensafe TS_SECRET_KEY", "OpenBao secret/tensafe TS_KEY_MASTER",
                     "tensafe-secrets .data.DATABASE_URL decoded (password in the URL)",
                     "tensafe-datastores .data.REDIS_URL decoded (password in the URL)",
                     "OpenBao token of the inventory", "client key"]:
        assert expected in origins, f"no secret collected from {expected!r}; collected: {origins}"


@pytest.mark.parametrize("run", [label for label, _, _ in RUNS])
def test_no_secret_in_the_vvv_output(site, run):
    secrets, output = site.secrets, dict(site.outputs)[run]
    leaks = sorted({" = ".join(sorted(origins)) for needle, origins in secrets.items() if needle in output})
    for name, pattern in TOKEN_PATTERNS.items():
        leaks += [f"a {name} in {_context(output, match.group(0))}" for match in pattern.finditer(output)]
    assert not leaks, (f"site.yml {run} -vvv printed {len(leaks)} secret(s):\n  " + "\n  ".join(leaks[:40])
                       + "\n".join(f"\n  in: …{_context(output, needle)}…" for needle in secrets if needle in output)[:3000])


def _context(output, needle):
    """The task the needle was printed in, and the needle's first characters (6 of at least 16)."""
    index = output.index(needle)
    task = output.rfind("TASK [", 0, index)
    head = output[task:output.index("\n", task)] if task >= 0 else ""
    return f"{head} … {needle[:6]}"
