"""The hermetic cluster network (hack/cluster/cluster-network.py) on the real kube-apiserver of the hermetic cluster.

A small local HTTPS server (certificate from a throwaway CA, names `<service>.<namespace>.svc` as the apiserver
checks them) stands in for the process that serves an aggregated API and a validating webhook. The apiserver reaches
it only through its egress selector, i.e. the proxy's Unix socket, and only for a Service that has a route:

- (a) APIService backed by a Service without selector (plus an EndpointSlice, as the availability check wants):
  Available, and `kubectl get --raw /apis/<group>/<version>` answers with the server's document;
- (b) a validating webhook rejects a labelled ConfigMap with its own message, admits the others;
- (c) a webhook whose Service has no route fails as on a real cluster: failurePolicy Fail refuses naming the
  webhook (and the proxy says why), Ignore admits; adding the route makes the same webhook answer;
- (d) a CONNECT to anything that is not a routed Service's ClusterIP:port is refused with a reason and a log line.

Each test fails when the proxy does not run (`CLUSTER_NETWORK=0 hack/cluster-up.sh` after stopping it): the socket is
missing, so the APIService stays unavailable, webhooks fail with `dial unix ...`, and (d) cannot connect.
Everything the tests create is removed at the end (an APIService left unavailable would break discovery).
"""
import base64
import contextlib
import http.server
import json
import os
import pathlib
import re
import secrets
import socket
import ssl
import subprocess
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLUSTER_DIR = pathlib.Path(os.environ.get("CLUSTER_DIR", ROOT / ".cluster"))
if not CLUSTER_DIR.is_absolute():
    CLUSTER_DIR = ROOT / CLUSTER_DIR
SOCKET = CLUSTER_DIR / "network/cluster-network.sock"
PROXY_LOG = CLUSTER_DIR / "logs/cluster-network.log"
ROUTE = [str(ROOT / "hack/cluster/route.sh")]
ENV = dict(os.environ, KUBECONFIG=str(CLUSTER_DIR / "kubeconfig"),
           PATH=f"{ROOT / 'bin'}:{os.environ['PATH']}", CLUSTER_DIR=str(CLUSTER_DIR))

NS = f"cluster-net-{secrets.token_hex(3)}"
GROUP = "cluster-network.hermetic.test"
VERSION = "v1alpha1"
APISERVICE = f"{VERSION}.{GROUP}"
WEBHOOKS = {  # ValidatingWebhookConfiguration name -> (Service, failurePolicy, objectSelector value)
    "cluster-network-test-reject": ("webhook", "Fail", "reject-case"),
    "cluster-network-test-noroute-fail": ("noroute-fail", "Fail", "fail-case"),
    "cluster-network-test-noroute-ignore": ("noroute-ignore", "Ignore", "ignore-case"),
}
REJECT_LABEL = "hermetic.test/reject"
DENY_MESSAGE = "objects labelled hermetic.test/reject are refused by the cluster-network test webhook"
ENDPOINT_IP = "10.244.250.1"  # a pod-network address no one serves: never routed
TIMEOUT = 30


def sh(*cmd, check=True, stdin=None):
    res = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, input=stdin, timeout=120)
    if check and res.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


def kubectl(*args, **kw):
    return sh("kubectl", *args, **kw)


def apply(*objs):
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=cluster-network-test", "-f", "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def until(what, fn, timeout=TIMEOUT):
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def log_mark():
    """Where the proxy's log ends now: proxy_log(mark) is what it wrote since (earlier runs' lines do not count)."""
    return PROXY_LOG.stat().st_size if PROXY_LOG.exists() else 0


def proxy_log(mark):
    if not PROXY_LOG.exists():
        return ""
    with PROXY_LOG.open("rb") as f:
        f.seek(mark)
        return f.read().decode()


# ---------------------------------------------------------------------------------------------- the backend
class Backend(http.server.BaseHTTPRequestHandler):
    """Aggregated API discovery document and a validating webhook."""
    seen = []

    def log_message(self, *args):
        pass

    def reply(self, code, doc):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        Backend.seen.append(("GET", self.path))
        if self.path.split("?")[0] == f"/apis/{GROUP}/{VERSION}":
            self.reply(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{GROUP}/{VERSION}",
                             "resources": [{"name": "pings", "singularName": "ping", "namespaced": False,
                                            "kind": "Ping", "verbs": ["get"]}]})
        else:
            self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})

    def do_POST(self):
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        req = review["request"]
        labels = (req.get("object") or {}).get("metadata", {}).get("labels") or {}
        Backend.seen.append(("POST", self.path, req["name"] if "name" in req else ""))
        response = {"uid": req["uid"], "allowed": labels.get(REJECT_LABEL) != "yes"}
        if not response["allowed"]:
            response["status"] = {"code": 403, "message": DENY_MESSAGE}
        self.reply(200, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    """HTTPS server on a free loopback port; certificate for every test Service's DNS name."""
    d = tmp_path_factory.mktemp("backend")
    ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    openssl("genpkey", *ec, "-out", d / "ca.key")
    openssl("req", "-x509", "-new", "-key", d / "ca.key", "-subj", "/CN=cluster-network-test-ca", "-days", "1",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
            "-out", d / "ca.crt")
    openssl("genpkey", *ec, "-out", d / "tls.key")
    openssl("req", "-new", "-key", d / "tls.key", "-subj", "/CN=cluster-network-test", "-out", d / "tls.csr")
    sans = ",".join(f"DNS:{svc}.{NS}.svc" for svc in ["apisvc", "webhook", "noroute-fail", "noroute-ignore"])
    (d / "ext").write_text(f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", d / "tls.csr", "-CA", d / "ca.crt", "-CAkey", d / "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", d / "ext", "-out", d / "tls.crt")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "tls.crt", d / "tls.key")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"port": server.server_address[1], "ca": base64.b64encode((d / "ca.crt").read_bytes()).decode()}
    server.shutdown()


def service(name, selectorless_endpoint=False):
    objs = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
             "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 8443}]}}]
    if selectorless_endpoint:
        objs.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                     "metadata": {"name": f"{name}-1", "namespace": NS,
                                  "labels": {"kubernetes.io/service-name": name}},
                     "endpoints": [{"addresses": [ENDPOINT_IP], "conditions": {"ready": True}}],
                     "ports": [{"name": "https", "port": 8443, "protocol": "TCP"}]})
    return objs


def webhook_config(name, backend):
    svc, policy, case = WEBHOOKS[name]
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{"name": f"{svc}.{GROUP}", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                          "failurePolicy": policy, "timeoutSeconds": 5,
                          "clientConfig": {"service": {"namespace": NS, "name": svc, "port": 443, "path": "/validate"},
                                           "caBundle": backend["ca"]},
                          "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NS}},
                          "objectSelector": {"matchLabels": {"hermetic.test/case": case}},
                          "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                     "resources": ["configmaps"], "scope": "Namespaced"}]}]}


@pytest.fixture(scope="module")
def cluster(backend):
    """The hermetic cluster (started if needed), a test namespace with the Services, routes to the backend."""
    sh(str(ROOT / "hack/cluster-up.sh"))
    # Left over by an interrupted run: its status must not count for this one.
    kubectl("delete", "apiservice", APISERVICE, *[f"validatingwebhookconfiguration/{w}" for w in WEBHOOKS],
            "--ignore-not-found", check=False)
    kubectl("create", "namespace", NS)
    apply(*service("apisvc", selectorless_endpoint=True), *service("webhook"), *service("noroute-fail"),
          *service("noroute-ignore"))
    for svc in ["apisvc", "webhook"]:
        sh(*ROUTE, "add", f"{NS}/{svc}:443", str(backend["port"]))
    try:
        yield
    finally:
        kubectl("delete", f"apiservice/{APISERVICE}", *[f"validatingwebhookconfiguration/{w}" for w in WEBHOOKS],
                f"namespace/{NS}", "--ignore-not-found", "--wait=false", check=False)
        for svc in ["apisvc", "webhook", "noroute-fail"]:
            sh(*ROUTE, "remove", f"{NS}/{svc}:443", check=False)


def cluster_ip(svc):
    return kubectl("-n", NS, "get", "service", svc, "-o", "jsonpath={.spec.clusterIP}").stdout


def create_configmap(name, case, labels=None):
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": name, "namespace": NS, "labels": {"hermetic.test/case": case, **(labels or {})}}}
    return kubectl("create", "-f", "-", stdin=json.dumps(cm), check=False)


def admission_result(name, case, labels=None, want=None):
    """Create a ConfigMap until the webhook configuration is in force (the apiserver loads it asynchronously):
    `want` is a regex the error must match; created objects on the way are deleted again."""
    attempt = [0]

    def once():
        attempt[0] += 1
        res = create_configmap(f"{name}-{attempt[0]}", case, labels)
        if res.returncode == 0:
            kubectl("-n", NS, "delete", "configmap", f"{name}-{attempt[0]}", check=False)
            return None
        return res.stderr if re.search(want, res.stderr) else f"other error: {res.stderr}"
    return until(f"ConfigMap {name} to be refused with /{want}/", once, timeout=15)


# -------------------------------------------------------------------------------------------------- (a)
def test_apiservice_becomes_available_and_answers_through_the_network(cluster, backend):
    before, mark = len(Backend.seen), log_mark()
    apply({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": APISERVICE},
           "spec": {"group": GROUP, "version": VERSION, "groupPriorityMinimum": 1000, "versionPriority": 15,
                    "caBundle": backend["ca"], "service": {"namespace": NS, "name": "apisvc", "port": 443}}})

    def available():
        st = json.loads(kubectl("get", "apiservice", APISERVICE, "-o", "json").stdout).get("status", {})
        cond = {c["type"]: c for c in st.get("conditions", [])}.get("Available", {})
        return cond if cond.get("status") == "True" else None
    try:
        until(f"APIService {APISERVICE} Available=True", available)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{kubectl('get', 'apiservice', APISERVICE, '-o', 'yaml').stdout}") from None
    doc = json.loads(kubectl("get", "--raw", f"/apis/{GROUP}/{VERSION}").stdout)
    assert doc["groupVersion"] == f"{GROUP}/{VERSION}"
    assert [r["name"] for r in doc["resources"]] == ["pings"]
    assert ("GET", f"/apis/{GROUP}/{VERSION}") in Backend.seen[before:]
    # The apiserver dialed the Service's ClusterIP and Service port (not the EndpointSlice's pod address).
    assert f"ACCEPT {cluster_ip('apisvc')}:443 = {NS}/apisvc:443 -> 127.0.0.1:{backend['port']}" in proxy_log(mark)
    assert f"{ENDPOINT_IP}:8443" not in proxy_log(mark)


# -------------------------------------------------------------------------------------------------- (b)
def test_validating_webhook_rejects_through_the_network(cluster, backend):
    apply(webhook_config("cluster-network-test-reject", backend))
    err = admission_result("rejected", "reject-case", {REJECT_LABEL: "yes"}, want="denied the request")
    assert f'admission webhook "webhook.{GROUP}" denied the request: {DENY_MESSAGE}' in err, err
    # The same webhook admits an object without the label (so it answered, rather than failed).
    res = create_configmap("admitted", "reject-case")
    assert res.returncode == 0, res.stderr
    assert any(s[0] == "POST" and s[2] == "admitted" for s in Backend.seen)


# -------------------------------------------------------------------------------------------------- (c)
def test_webhook_without_route_fails_like_a_real_cluster(cluster, backend):
    ip, mark = cluster_ip("noroute-fail"), log_mark()
    apply(webhook_config("cluster-network-test-noroute-fail", backend))
    err = admission_result("noroute-fail", "fail-case", want="failed calling webhook")
    # failurePolicy Fail: refused, naming the webhook; the reason is the proxy's (no route), not a missing network.
    assert f'failed calling webhook "noroute-fail.{GROUP}"' in err, err
    assert f"cluster-network refused {ip}:443: Service {NS}/noroute-fail:443 has no route" in err, err
    assert f"REFUSE {ip}:443: Service {NS}/noroute-fail:443 has no route" in proxy_log(mark)

    # failurePolicy Ignore: admitted, though the call was made and refused.
    ip_ignore = cluster_ip("noroute-ignore")
    apply(webhook_config("cluster-network-test-noroute-ignore", backend))
    n = [0]

    def admitted_after_refusal():
        n[0] += 1
        res = create_configmap(f"noroute-ignore-{n[0]}", "ignore-case")
        assert res.returncode == 0, res.stderr
        return f"REFUSE {ip_ignore}:443: Service {NS}/noroute-ignore:443 has no route" in proxy_log(mark)
    until("the Ignore webhook's call to be refused by the proxy", admitted_after_refusal, timeout=15)

    # Routing the Service to a process that serves it makes the same webhook answer.
    sh(*ROUTE, "add", f"{NS}/noroute-fail:443", f"127.0.0.1:{backend['port']}")
    err = admission_result("routed", "fail-case", {REJECT_LABEL: "yes"}, want="denied the request")
    assert f'admission webhook "noroute-fail.{GROUP}" denied the request: {DENY_MESSAGE}' in err, err


# -------------------------------------------------------------------------------------------------- (d)
def connect(target):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(SOCKET))
        s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.decode().split("\r\n", 1)[0]


@pytest.mark.parametrize("target,code,why", [
    (f"{ENDPOINT_IP}:8443", 403, "not the ClusterIP:port of any Service"),  # a pod address (the EndpointSlice's)
    ("127.0.0.1:10250", 403, "not the ClusterIP:port of any Service"),  # a node's kubelet
    ("{apisvc}:8443", 403, "not the ClusterIP:port of any Service"),  # a routed Service's IP, another port
    ("10.96.0.1:443", 503, "Service default/kubernetes:443 has no route"),  # a Service without route
    ("kubernetes.default.svc:443", 403, "not an IP address"),  # host names (ExternalName)
    ("8.8.8.8:443", 403, "not the ClusterIP:port of any Service"),  # off the machine
])
def test_connect_to_anything_else_is_refused(cluster, target, code, why):
    target, mark = target.format(apisvc=cluster_ip("apisvc")), log_mark()
    status = connect(target)
    assert status.startswith(f"HTTP/1.1 {code} cluster-network refused {target}: {why}"), status
    assert f"REFUSE {target}: {why}" in proxy_log(mark)


def test_connect_to_a_routed_service_reaches_its_process(cluster, backend):
    ip = cluster_ip("apisvc")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(SOCKET))
        s.sendall(f"CONNECT {ip}:443 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)  # byte by byte: nothing after the head may be consumed here
        assert head.startswith(b"HTTP/1.1 200 "), head
        ctx = ssl.create_default_context(cadata=base64.b64decode(backend["ca"]).decode())
        with ctx.wrap_socket(s, server_hostname=f"apisvc.{NS}.svc") as tls:
            tls.sendall(f"GET /apis/{GROUP}/{VERSION} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            data = b""
            with contextlib.suppress(ssl.SSLError):
                while chunk := tls.recv(65536):
                    data += chunk
    assert data.startswith(b"HTTP/1.0 200") and b'"pings"' in data, data[:300]


# ------------------------------------------------------------------------------------------- route helper
def test_route_helper_refuses_bad_routes(tmp_path):
    routes = tmp_path / "routes.json"
    tool = ["python3", str(ROOT / "hack/cluster/cluster-network.py"), "route", "--routes", str(routes)]
    res = sh(*tool, "add", "keda/keda-operator-metrics-apiserver:443", "10.0.0.5:6443", check=False)
    assert res.returncode == 2 and "only loopback addresses are routed" in res.stderr, res.stderr
    res = sh(*tool, "add", "keda-metrics:443", "6443", check=False)
    assert res.returncode == 2 and "expected <namespace>/<service>:<service port>" in res.stderr, res.stderr
    assert not routes.exists()
    sh(*tool, "add", "keda/keda-operator-metrics-apiserver:443", "6443")
    assert json.loads(routes.read_text()) == {"keda/keda-operator-metrics-apiserver:443": "127.0.0.1:6443"}
    sh(*tool, "remove", "keda/keda-operator-metrics-apiserver:443")
    assert json.loads(routes.read_text()) == {}
