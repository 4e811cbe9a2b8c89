"""site.yml against clusters it cannot use: each run stops at the one reachability check (after the validate phase,
before the first write), exits non-zero within the bound tensafe_api_timeout sets, and names the kubeconfig, the
context, the server and the error class; the stand-in servers record what reached them (reads only, or nothing).

Also: the kubeconfig's CA in its three forms (certificate-authority-data, a certificate-authority file,
insecure-skip-tls-verify), read by inventories/local (external Vault trusts the cluster CA) and by the check against
the real hermetic apiserver (skipped, saying so, when `make cluster-up` has not run in this checkout; CI starts it).
"""
import base64
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest
import yaml

from badinput import COMPONENTS, ROOT, SITE, run
from recording_api import Recorder

API_TIMEOUT = 3  # tensafe_api_timeout of these runs (seconds)
RUN_BOUND = 150  # a run that does not end within this is a hang (the check itself is bounded by ~2 x API_TIMEOUT)
HERMETIC_KUBECONFIG = ROOT / ".cluster/kubeconfig"


def write_kubeconfig(path, server, cluster=None, user=None, context="ctx"):
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "target", "cluster": {"server": server, **(cluster or {})}}],
        "contexts": [{"name": context, "context": {"cluster": "target", "user": "deployer"}}],
        "users": [{"name": "deployer", "user": user or {"token": "not-a-real-token"}}],
    }))
    return path


def use_cluster(inv, kubeconfig, context="", **extra):
    """Point the inventory at kubeconfig, with every component off (nothing to validate: the check is what runs)."""
    cluster = {"tensafe_kubeconfig": str(kubeconfig), "tensafe_kube_context": context, "tensafe_no_log": True,
               "tensafe_api_timeout": API_TIMEOUT, **extra}
    (inv / "group_vars/all/cluster.yml").write_text(yaml.safe_dump(cluster))
    (inv / "group_vars/all/components.yml").write_text(
        yaml.safe_dump({f"tensafe_{c}_enabled": False for c in COMPONENTS}))


def check(inv, args=()):
    start = time.monotonic()
    result = run(SITE, inv, args, timeout=RUN_BOUND)
    return result, result.stdout + result.stderr, time.monotonic() - start


def assert_refused(inv, kubeconfig, server, error_class, context="ctx"):
    result, output, seconds = check(inv)
    assert result.returncode != 0, output[-3000:]
    msg = output[output.find("Kubernetes cluster access"):]
    for part in (str(kubeconfig), f"context '{context}'", server, error_class):
        assert part in msg, f"the failure does not name {part!r}:\n{output[-3000:]}"
    assert "Max retries" not in output and "HTTPSConnectionPool" not in output, output[-3000:]
    # The check is the first task that calls the cluster; nothing after it ran.
    assert "tensafe.k8s.prerequisites" not in output and "tensafe.k8s.app" not in output
    return seconds, output


# Stand-in servers -------------------------------------------------------------------------------------------------


class _Answer(http.server.BaseHTTPRequestHandler):
    """Answers every request with the server's status and Status body, recording "<METHOD> <path>"."""

    def _answer(self):
        self.server.seen.append(f"{self.command} {self.path}")
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "message": self.server.message, "code": self.server.status}).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture()
def answering():
    servers = []

    def start(status, message, tls=None):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
        server.status, server.message, server.seen = status, message, []
        scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            scheme = "https"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server, f"{scheme}://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """Two self-signed certificates for 127.0.0.1 (as a CA each): the server's and another one."""
    out = tmp_path_factory.mktemp("certs")
    for name in ("server", "other"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-days", "1", "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-addext", "basicConstraints=critical,CA:TRUE",
                        "-keyout", str(out / f"{name}.key"), "-out", str(out / f"{name}.crt")],
                       check=True, capture_output=True)
    return out


def ca_data(path):
    return base64.b64encode(path.read_bytes()).decode()


# The failures -----------------------------------------------------------------------------------------------------


def test_closed_port(tmp_path, inventory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = f"https://127.0.0.1:{port}"
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server, {"insecure-skip-tls-verify": True})
    use_cluster(inventory, kubeconfig)
    assert_refused(inventory, kubeconfig, server, "connection refused")


def test_silent_server_ends_within_the_bound(tmp_path, inventory):
    """The kernel accepts the connection (listen backlog); nothing ever answers, not even the TLS handshake."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        server = f"https://127.0.0.1:{listener.getsockname()[1]}"
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server, {"insecure-skip-tls-verify": True})
        use_cluster(inventory, kubeconfig)
        seconds, output = assert_refused(inventory, kubeconfig, server, "timeout")
    assert f"within {API_TIMEOUT} seconds" in output
    print(f"silent server: run ended after {seconds:.1f}s (tensafe_api_timeout={API_TIMEOUT})")


def test_tls_unknown_ca(tmp_path, inventory, answering, certs):
    httpd, server = answering(200, "", tls=(certs / "server.crt", certs / "server.key"))
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server,
                                  {"certificate-authority-data": ca_data(certs / "other.crt")})
    use_cluster(inventory, kubeconfig)
    assert_refused(inventory, kubeconfig, server, "TLS unknown CA")
    assert httpd.seen == []


def test_tls_hostname_mismatch(tmp_path, inventory, answering, certs):
    """The right CA, but the certificate is for 127.0.0.1 and the kubeconfig says localhost."""
    httpd, server = answering(200, "", tls=(certs / "server.crt", certs / "server.key"))
    server = server.replace("127.0.0.1", "localhost")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server,
                                  {"certificate-authority-data": ca_data(certs / "server.crt")})
    use_cluster(inventory, kubeconfig)
    assert_refused(inventory, kubeconfig, server, "TLS hostname mismatch")
    assert httpd.seen == []


def test_401_names_the_user(tmp_path, inventory, answering):
    httpd, server = answering(401, "Unauthorized")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server)
    use_cluster(inventory, kubeconfig)
    _, output = assert_refused(inventory, kubeconfig, server, "401")
    assert "user 'deployer'" in output and "not-a-real-token" not in output
    assert httpd.seen == ["GET /api/"], httpd.seen  # one read, no write


def test_403_quotes_the_rbac_refusal(tmp_path, inventory, answering):
    httpd, server = answering(403, 'forbidden: User "deployer" cannot get path "/api"')
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server)
    use_cluster(inventory, kubeconfig)
    _, output = assert_refused(inventory, kubeconfig, server, "403")
    assert 'User \\"deployer\\" cannot get path' in output or 'User "deployer" cannot get path' in output
    assert httpd.seen == ["GET /api/"], httpd.seen


def test_context_that_does_not_exist(tmp_path, inventory, fake_api):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake_api)
    use_cluster(inventory, kubeconfig, context="prod-eu")
    result, output, _ = check(inventory)
    assert result.returncode != 0
    assert f"context 'prod-eu' does not exist in kubeconfig {kubeconfig}" in output, output[-3000:]
    assert "its contexts: ctx" in output and "tensafe_kube_context" in output
    assert Recorder.requests == []


def test_dns_name_that_does_not_resolve(tmp_path, inventory):
    server = "https://tensafe-api.invalid:6443"  # .invalid never resolves (RFC 6761)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server, {"insecure-skip-tls-verify": True})
    use_cluster(inventory, kubeconfig)
    assert_refused(inventory, kubeconfig, server, "DNS")


@pytest.mark.parametrize("value", [0, -5, "five", "5 --foo"])
def test_api_timeout_must_be_positive_seconds(tmp_path, inventory, fake_api, value):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake_api)
    use_cluster(inventory, kubeconfig, tensafe_api_timeout=value)
    result, output, _ = check(inventory)
    assert result.returncode != 0
    assert "tensafe_api_timeout:" in output and "positive whole number of seconds" in output, output[-3000:]
    assert Recorder.requests == []


def test_validate_alone_makes_no_call(tmp_path, inventory, fake_api):
    """--tags validate skips the check: the recording server (503 to everything) sees nothing."""
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake_api)
    use_cluster(inventory, kubeconfig)
    result, output, _ = check(inventory, ["--tags", "validate"])
    assert result.returncode == 0, output[-3000:]
    assert Recorder.requests == []


# The kubeconfig's CA in three forms ---------------------------------------------------------------------------------


def ca_forms(tmp_path, server, ca_file):
    """{form: kubeconfig} for certificate-authority-data, a relative certificate-authority file, insecure."""
    shutil.copy(ca_file, tmp_path / "cluster-ca.crt")
    return {
        "data": write_kubeconfig(tmp_path / "kubeconfig-data", server, {"certificate-authority-data": ca_data(ca_file)}),
        "file": write_kubeconfig(tmp_path / "kubeconfig-file", server, {"certificate-authority": "cluster-ca.crt"}),
        "insecure": write_kubeconfig(tmp_path / "kubeconfig-insecure", server, {"insecure-skip-tls-verify": True}),
    }


@pytest.mark.parametrize("form", ["data", "file", "insecure"])
def test_local_inventory_reads_every_ca_form(tmp_path, inventory, answering, certs, form):
    """inventories/local, Vault external: the CA is read from data or file; without one, vault's check names the
    variable to set (it used to fail with "object of type 'dict' has no attribute 'certificate-authority-data'")."""
    httpd, server = answering(200, "", tls=(certs / "server.crt", certs / "server.key"))
    kubeconfig = ca_forms(tmp_path, server, certs / "server.crt")[form]
    (inventory / "group_vars/all/cluster.yml").write_text(yaml.safe_dump(
        {"tensafe_kubeconfig": str(kubeconfig), "tensafe_kube_context": "", "tensafe_no_log": True}))
    (inventory / "group_vars/all/zz_external_vault.yml").write_text(yaml.safe_dump(
        {"vault_addr": "http://127.0.0.1:9", "vault_token": "not-a-real-token"}))
    result = run(SITE, inventory, ["--tags", "validate", "-e", "tensafe_no_log=false"])
    output = result.stdout + result.stderr
    assert "has no attribute" not in output, output[-3000:]
    if form == "insecure":
        assert result.returncode != 0, output[-3000:]
        assert "set vault_kubernetes_ca_cert to the cluster CA" in output, output[-3000:]
    else:
        assert result.returncode == 0, output[-3000:]
    assert httpd.seen == []


def hermetic_answers():
    if not HERMETIC_KUBECONFIG.is_file():
        return False
    return subprocess.run([str(ROOT / "bin" / "kubectl"), "--kubeconfig", str(HERMETIC_KUBECONFIG), "get", "--raw",
                           "/readyz"], capture_output=True, timeout=30, check=False).returncode == 0


@pytest.fixture(scope="module")
def hermetic():
    if not hermetic_answers():
        if not os.environ.get("CI"):
            pytest.skip(f"no hermetic cluster in this checkout ({HERMETIC_KUBECONFIG}): run hack/cluster-up.sh "
                        "(CI starts it)")
        subprocess.run([str(ROOT / "hack" / "cluster-up.sh")], cwd=ROOT, check=True, timeout=900)
    config = yaml.safe_load(HERMETIC_KUBECONFIG.read_text())
    return config


@pytest.mark.parametrize("form", ["data", "file", "insecure"])
def test_the_real_apiserver_passes_with_every_ca_form(tmp_path, inventory, hermetic, form):
    cluster = hermetic["clusters"][0]["cluster"]
    ca = tmp_path / "hermetic-ca.crt"
    ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    kubeconfig = ca_forms(tmp_path, cluster["server"], ca)[form]
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"] = [{"name": "deployer", "user": hermetic["users"][0]["user"]}]
    kubeconfig.write_text(yaml.safe_dump(config))
    use_cluster(inventory, kubeconfig)
    result, output, seconds = check(inventory, ["--tags", "cluster_check"])
    assert result.returncode == 0, output[-3000:]
    assert "Check that the Kubernetes API server answers and accepts the credentials] ***\nok:" in output, output[-3000:]
    print(f"hermetic apiserver, CA form {form}: {seconds:.1f}s")


def test_the_real_apiserver_refuses_a_wrong_token(tmp_path, inventory, hermetic):
    cluster = hermetic["clusters"][0]["cluster"]
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", cluster["server"],
                                  {"certificate-authority-data": cluster["certificate-authority-data"]})
    use_cluster(inventory, kubeconfig)
    assert_refused(inventory, kubeconfig, cluster["server"], "401 Unauthorized")
